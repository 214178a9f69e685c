"""``syncmsg consumers ls|info|add|rm|pause|resume|unpin|reset``: JetStream consumers.

As ``nats consumer ...``: the stream comes first, then the consumer. Durations read and
print in human units (``30s``, ``1h30m``), in flags and in ``--config`` files alike; the
commands that change what a consumer delivers (``rm``, ``pause``, ``resume``, ``unpin``,
``reset``) ask first, unless ``--force`` (and refuse without a terminal to ask on).

Threading: runs on the main thread.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from syncmsg._errors import ConsumerNotFoundError, StreamNotFoundError
from syncmsg._subjects import check_token
from syncmsg.cli._app import app, examples, output, settings
from syncmsg.cli._confirm import FORCE_OPTION, confirm
from syncmsg.cli._connect import connected
from syncmsg.cli._exit import EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, CommandFailed, one_line
from syncmsg.cli._output import Column
from syncmsg.cli._units import (
    DURATION,
    CountType,
    UnitError,
    format_count,
    format_duration,
    format_nanos,
    parse_duration,
)
from syncmsg.cli.streams import api_rows, when

if TYPE_CHECKING:
    from syncmsg.jetstream import ConsumerInfo, JetStream

__all__ = ["consumers", "parse_until"]

#: ConsumerConfig fields that are durations, for ``--config`` files.
DURATION_FIELDS = (
    "ack_wait",
    "inactive_threshold",
    "max_expires",
    "idle_heartbeat",
    "pinned_ttl",
    "priority_timeout",
)


@app.group(
    "consumers",
    short_help="JetStream consumers: ls, info, add, rm, pause, resume, unpin, reset.",
    epilog=examples(
        "syncmsg consumers ls ORDERS",
        "syncmsg consumers info ORDERS billing",
        "syncmsg consumers add ORDERS billing --filter 'orders.>' --wait 1m --max-deliver 5",
        "syncmsg consumers pause ORDERS billing 2h --force",
        "syncmsg consumers resume ORDERS billing --force",
        "syncmsg consumers rm ORDERS billing --force",
    ),
)
def consumers() -> None:
    """List, inspect, create, remove, pause and reset the consumers of a stream."""


def _info_or_exit(js: JetStream, stream: str, name: str) -> ConsumerInfo:
    try:
        return js.consumer_info(stream, name)
    except StreamNotFoundError:
        raise CommandFailed(f"no stream named {stream!r}", EXIT_NOT_FOUND) from None
    except ConsumerNotFoundError:
        raise CommandFailed(f"no consumer {name!r} on stream {stream!r}", EXIT_NOT_FOUND) from None


@contextmanager
def _existing(stream: str, name: str) -> Iterator[tuple[JetStream, ConsumerInfo]]:
    """Connected: the JetStream context, and consumer NAME of STREAM as it is before the
    command changes it (a missing one ends the command with EXIT_NOT_FOUND)."""
    with connected(settings()) as client:
        js = client.jetstream()
        yield js, _info_or_exit(js, stream, name)


def _api_json(info: ConsumerInfo) -> dict[str, Any]:
    """The consumer as the server reported it, for ``--json`` (exact numbers)."""
    return {k: v for k, v in info.raw.items() if k != "type"}


def _filters(info: ConsumerInfo) -> list[str]:
    config = info.config
    if config.filter_subjects:
        return list(config.filter_subjects)
    return [config.filter_subject] if config.filter_subject else []


def _state_word(info: ConsumerInfo) -> str:
    if info.paused:
        return "paused"
    pinned = [state.group for state in info.priority_groups if state.pinned_client_id]
    return f"pinned ({', '.join(pinned)})" if pinned else "active"


# ============================================================================ ls


@consumers.command(
    "ls",
    short_help="List a stream's consumers.",
    epilog=examples("syncmsg consumers ls ORDERS", "syncmsg consumers ls ORDERS --json"),
)
@click.argument("stream")
def ls(stream: str) -> int:
    """List the consumers of STREAM: unprocessed and unacknowledged messages, redeliveries,
    waiting pulls, when they last delivered, and their filters.

    JSON: one object per consumer (name, durable, filter_subjects, num_pending,
    num_ack_pending, num_redelivered, num_waiting, last_active, paused, priority_policy).
    """
    out = output()
    with connected(settings()) as client:
        try:
            infos = client.jetstream().consumers(stream)
        except StreamNotFoundError:
            raise CommandFailed(f"no stream named {stream!r}", EXIT_NOT_FOUND) from None
    rows = []
    for info in sorted(infos, key=lambda i: i.name):
        policy = info.config.priority_policy
        rows.append(
            {
                "name": info.name,
                "durable": info.durable is not None,
                "filter_subjects": _filters(info),
                "num_pending": info.num_pending,
                "num_ack_pending": info.num_ack_pending,
                "num_redelivered": info.num_redelivered,
                "num_waiting": info.num_waiting,
                "last_active": when(info.delivered.last_active),
                "paused": info.paused,
                "priority_policy": None if policy is None else policy.value,
                "state": _state_word(info),
            }
        )
    count = format_count
    out.table(
        rows,
        [
            Column("name", "NAME"),
            Column("num_pending", "PENDING", count, "right"),
            Column("num_ack_pending", "ACK PENDING", count, "right"),
            Column("num_redelivered", "REDELIVERED", count, "right"),
            Column("num_waiting", "WAITING", count, "right"),
            Column("last_active", "LAST DELIVERY", lambda v: v or "never"),
            Column("state", "STATE"),
            Column("filter_subjects", "FILTER", lambda v: ", ".join(v) or "-"),
        ],
        empty=f"no consumers on {stream}",
    )
    return EXIT_OK


# ============================================================================ info


def _nanos(value: Any) -> str:
    return format_nanos(int(value), zero="0s")


#: How ``info`` prints the config: (API key, label, formatter), in this order.
_CONFIG_FIELDS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("description", "description", str),
    ("durable_name", "durable", str),
    ("filter_subject", "filter", str),
    ("filter_subjects", "filters", lambda v: ", ".join(v)),
    ("deliver_policy", "deliver", str),
    ("opt_start_seq", "start sequence", str),
    ("opt_start_time", "start time", str),
    ("ack_policy", "ack policy", str),
    ("ack_wait", "ack wait", _nanos),
    ("max_deliver", "max deliveries", lambda v: "unlimited" if v < 0 else format_count(v)),
    ("backoff", "backoff", lambda v: ", ".join(_nanos(step) for step in v)),
    ("max_ack_pending", "max ack pending", lambda v: "unlimited" if v < 0 else format_count(v)),
    ("max_waiting", "max waiting pulls", str),
    ("inactive_threshold", "inactive threshold", _nanos),
    ("priority_policy", "priority policy", str),
    ("priority_groups", "priority groups", lambda v: ", ".join(v)),
    ("priority_timeout", "pinned TTL", _nanos),
    ("pause_until", "paused until", str),
    ("num_replicas", "replicas", lambda v: str(v or "as the stream")),
    ("created", "created", str),
)
_STATE_FIELDS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("delivered", "last delivered", str),
    ("ack_floor", "ack floor", str),
    ("num_pending", "unprocessed", format_count),
    ("num_ack_pending", "unacknowledged", format_count),
    ("num_redelivered", "redelivered", format_count),
    ("num_waiting", "waiting pulls", format_count),
    ("paused", "paused", lambda v: "yes" if v else "no"),
    ("pause_remaining", "pause remaining", _nanos),
    ("priority_groups", "pinned", str),
)


def _position(position: Any) -> str:
    """``stream #12 (consumer #10) at 2024-05-01 12:00:03 UTC``."""
    text = f"stream #{position.stream_seq} (consumer #{position.consumer_seq})"
    stamp = when(position.last_active)
    return f"{text} at {stamp}" if stamp else text


@consumers.command(
    "info",
    short_help="Show a consumer's configuration and state.",
    epilog=examples(
        "syncmsg consumers info ORDERS billing",
        "syncmsg consumers info ORDERS billing --json | jq .num_pending",
    ),
)
@click.argument("stream")
@click.argument("name")
def info(stream: str, name: str) -> int:
    """Show consumer NAME of STREAM: its configuration in human units, where it is in the
    stream, what it holds, whether it is paused and who is pinned.

    JSON: the consumer exactly as the server reports it (durations in nanoseconds).
    Unknown names exit with status 5.
    """
    out = output()
    with connected(settings()) as client:
        consumer = _info_or_exit(client.jetstream(), stream, name)
    if out.json:
        out.emit(_api_json(consumer), None)
        return EXIT_OK
    config = dict(consumer.raw.get("config") or {})
    config["metadata"] = {
        k: v for k, v in (config.get("metadata") or {}).items() if not k.startswith("_nats")
    } or None
    config["name"] = (
        None if config.get("name") == config.get("durable_name") else config.get("name")
    )
    config["created"] = when(consumer.created)
    if consumer.pause_until is not None:
        config["pause_until"] = when(consumer.pause_until)
    pinned = [
        f"{state.group}: {state.pinned_client_id} since {when(state.pinned_ts) or '?'}"
        for state in consumer.priority_groups
        if state.pinned_client_id
    ]
    state = {
        "delivered": _position(consumer.delivered),
        "ack_floor": _position(consumer.ack_floor),
        "num_pending": consumer.num_pending,
        "num_ack_pending": consumer.num_ack_pending,
        "num_redelivered": consumer.num_redelivered,
        "num_waiting": consumer.num_waiting,
        "paused": consumer.paused,
        "pause_remaining": consumer.raw.get("pause_remaining"),
        "priority_groups": "; ".join(pinned) or None,
    }
    out.fields(f"consumer {stream} > {name}", api_rows(config, _CONFIG_FIELDS, set()))
    out.fields("state", api_rows(state, _STATE_FIELDS, set()))
    return EXIT_OK


# ============================================================================ add


def _split(values: tuple[str, ...]) -> list[str]:
    return [part for value in values for part in value.replace(",", " ").split()]


def _deliver(text: str) -> dict[str, Any]:
    """``--deliver``: a policy, a stream sequence (``1000``), or how far back (``1h``)."""
    aliases = {"subject": "last_per_subject", "last-per-subject": "last_per_subject"}
    policy = aliases.get(text, text)
    if policy in ("all", "new", "last", "last_per_subject"):
        return {"deliver_policy": policy}
    if text.isdigit():
        return {"deliver_policy": "by_start_sequence", "opt_start_seq": int(text)}
    try:
        back = parse_duration(text)
    except UnitError:
        raise CommandFailed(
            f"--deliver {text!r}: give all, new, last, last_per_subject, a sequence (1000) "
            "or how far back to start (1h, 7d)",
            EXIT_USAGE,
        ) from None
    return {
        "deliver_policy": "by_start_time",
        "opt_start_time": dt.datetime.now(dt.timezone.utc) - back,
    }


def _load_config(path: str) -> dict[str, Any]:
    """A ConsumerConfig object from a JSON or YAML file, its durations in human units."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandFailed(f"cannot read {path}: {exc.strerror}", EXIT_USAGE) from None
    try:
        if file.suffix.lower() in (".yml", ".yaml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except ValueError as exc:  # yaml.YAMLError is a ValueError too
        raise CommandFailed(f"{path} is not valid: {one_line(exc)}", EXIT_USAGE) from None
    if not isinstance(data, dict):
        raise CommandFailed(f"{path}: expected one consumer configuration object", EXIT_USAGE)
    for key in DURATION_FIELDS:
        if isinstance(data.get(key), str):
            data[key] = _duration(data[key], f"{path}: {key}")
    if isinstance(data.get("backoff"), list):
        data["backoff"] = [_duration(step, f"{path}: backoff") for step in data["backoff"]]
    return data


def _duration(value: Any, where: str) -> dt.timedelta:
    try:
        return parse_duration(value)
    except UnitError as exc:
        raise CommandFailed(f"{where}: {exc}", EXIT_USAGE) from None


@consumers.command(
    "add",
    short_help="Create a durable pull consumer.",
    epilog=examples(
        "syncmsg consumers add ORDERS billing --filter 'orders.>' --wait 1m --max-deliver 5",
        "syncmsg consumers add ORDERS audit --deliver 1h --ack none",
        "syncmsg consumers add ORDERS jobs --pinned-groups jobs --pinned-ttl 30s",
        "syncmsg consumers add ORDERS billing --config billing.yaml",
        notes="A --config file holds the fields of syncmsg.jetstream.ConsumerConfig (the "
        "JetStream API's names: filter_subject, ack_wait, max_deliver, backoff ...), with "
        "durations in units: 'ack_wait: 30s'. Flags override it.",
    ),
)
@click.argument("stream")
@click.argument("name")
@click.option("--config", "config_file", metavar="FILE", help="JSON or YAML configuration.")
@click.option(
    "--filter", "filters", multiple=True, metavar="SUBJECT", help="Only these subjects (repeat)."
)
@click.option(
    "--ack",
    type=click.Choice(["explicit", "all", "none"]),
    help="Acknowledgement policy. [default: explicit]",
)
@click.option(
    "--deliver",
    metavar="POLICY",
    help="Where to start: all, new, last, last_per_subject, a sequence, or 1h (that far back).",
)
@click.option("--wait", "ack_wait", type=DURATION, help="Ack wait before a redelivery, e.g. 30s.")
@click.option(
    "--max-deliver",
    type=click.IntRange(min=-1),
    metavar="N",
    help="Deliveries at most (-1: no limit).",
)
@click.option(
    "--max-pending", "max_ack_pending", type=CountType(minimum=1), help="Unacknowledged at most."
)
@click.option("--backoff", metavar="DURATIONS", help="Redelivery delays, e.g. 1s,10s,1m.")
@click.option("--description", help="What the consumer is for.")
@click.option("--inactive-threshold", type=DURATION, help="Remove it when idle this long, e.g. 1h.")
@click.option("--headers-only", is_flag=True, default=None, help="Deliver headers, no payloads.")
@click.option("--replicas", type=click.IntRange(1, 5), metavar="N", help="Replicas of its state.")
@click.option("--memory", is_flag=True, default=None, help="Keep its state in memory.")
@click.option("--pause", "pause_until", metavar="UNTIL", help="Create it paused: 2h, or a time.")
@click.option("--pinned-groups", metavar="GROUPS", help="Pinned-client priority groups (2.11).")
@click.option("--pinned-ttl", type=DURATION, help="Unpin a client silent this long, e.g. 2m.")
@click.option("--overflow-groups", metavar="GROUPS", help="Overflow priority groups (2.11).")
def add(stream: str, name: str, config_file: str | None, **flags: Any) -> int:
    """Create consumer NAME on STREAM: a durable pull consumer, as syncmsg's subscriptions
    use (``js.subscribe(..., durable=NAME)`` and ``syncmsg sub --durable NAME`` read it).

    Creating one that exists with the same configuration succeeds; with another one it
    fails (use the library's update_consumer to change it). Prints a summary; JSON: the
    consumer as the server reports it.
    """
    from syncmsg.jetstream import ConsumerConfig

    fields: dict[str, Any] = _load_config(config_file) if config_file else {}
    fields["durable_name"] = name
    filters = _split(flags.pop("filters"))
    if len(filters) == 1:
        fields["filter_subject"] = filters[0]
    elif filters:
        fields["filter_subjects"] = filters
    if flags.get("ack"):
        fields["ack_policy"] = flags.pop("ack")
    if flags.get("deliver"):
        fields.update(_deliver(flags.pop("deliver")))
    if flags.get("backoff"):
        fields["backoff"] = [_duration(step, "--backoff") for step in _split((flags["backoff"],))]
    if flags.get("memory"):
        fields["mem_storage"] = True
    if flags.get("replicas"):
        fields["num_replicas"] = flags["replicas"]
    if flags.get("pause_until"):
        fields["pause_until"] = parse_until(flags["pause_until"])
    pinned, overflow = flags.get("pinned_groups"), flags.get("overflow_groups")
    if pinned and overflow:
        raise CommandFailed("give --pinned-groups or --overflow-groups, not both", EXIT_USAGE)
    if pinned or overflow:
        fields["priority_policy"] = "pinned_client" if pinned else "overflow"
        fields["priority_groups"] = _split((str(pinned or overflow),))
    if flags.get("pinned_ttl") is not None:
        fields["pinned_ttl"] = flags["pinned_ttl"]
    for key in ("ack_wait", "max_deliver", "max_ack_pending", "description"):
        if flags.get(key) is not None:
            fields[key] = flags[key]
    for key in ("inactive_threshold", "headers_only"):
        if flags.get(key) is not None:
            fields[key] = flags[key]
    try:
        check_token(name, "consumer name")  # refused here as a usage error, not by the call
        config = ConsumerConfig(**fields)
    except (TypeError, ValueError) as exc:
        raise CommandFailed(f"invalid consumer {name!r}: {one_line(exc)}", EXIT_USAGE) from None
    out = output()
    if flags.get("ack_wait") is not None and config.backoff:
        # nats-server makes a consumer with a backoff wait its first step for every ack.
        first = format_duration(config.backoff[0])
        out.warning(f"--backoff sets the ack wait to its first step ({first}); --wait is unused")
    with connected(settings()) as client:
        try:
            created = client.jetstream().add_consumer(stream, config)
        except StreamNotFoundError:
            raise CommandFailed(f"no stream named {stream!r}", EXIT_NOT_FOUND) from None
    if out.json:
        out.emit(_api_json(created), None)
        return EXIT_OK
    ack = created.config.ack_policy.value
    summary = ", ".join(_filters(created)) or "every subject"
    out.emit(
        {},
        f"consumer {stream} > {name}: {summary}; ack {ack}, "
        f"{format_count(created.num_pending)} messages to deliver",
    )
    return EXIT_OK


# ============================================================================ rm


@consumers.command(
    "rm",
    short_help="Delete a consumer (and its acknowledgement state).",
    epilog=examples(
        "syncmsg consumers rm ORDERS billing", "syncmsg consumers rm ORDERS billing -f"
    ),
)
@click.argument("stream")
@click.argument("name")
@FORCE_OPTION
def rm(stream: str, name: str, force: bool) -> int:
    """Delete consumer NAME of STREAM: where it was in the stream and what it had not yet
    acknowledged are lost (the messages stay in the stream).

    Asks first on a terminal; elsewhere it needs --force. JSON: {"stream", "consumer",
    "deleted": true}.
    """
    out = output()
    with _existing(stream, name) as (js, consumer):
        confirm(
            f"delete consumer {stream} > {name}",
            force=force,
            detail=f" ({format_count(consumer.num_pending)} unprocessed, "
            f"{format_count(consumer.num_ack_pending)} unacknowledged)",
        )
        js.delete_consumer(stream, name)
    out.emit(
        {"stream": stream, "consumer": name, "deleted": True}, f"deleted consumer {stream} > {name}"
    )
    return EXIT_OK


# ============================================================================ pause, resume


def parse_until(text: str) -> dt.datetime:
    """``UNTIL`` of ``pause``: how long (``2h``, ``1h30m``) or a time (``2025-06-01
    12:00``, ``2025-06-01T12:00:00+02:00``; without a zone it is UTC)."""
    try:
        return dt.datetime.now(dt.timezone.utc) + parse_duration(text)
    except UnitError:
        pass
    try:
        stamp = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CommandFailed(
            f"{text!r} is neither a duration (2h, 1h30m) nor a time (2025-06-01 12:00:00)",
            EXIT_USAGE,
        ) from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)


def _pause_line(stream: str, name: str, pause: Any) -> tuple[dict[str, Any], str]:
    remaining = pause.pause_remaining
    obj = {
        "stream": stream,
        "consumer": name,
        "paused": pause.paused,
        "pause_until": pause.pause_until.isoformat() if pause.pause_until else None,
        "pause_remaining": None if remaining is None else round(remaining.total_seconds() * 1e9),
    }
    if not pause.paused:
        return obj, f"consumer {stream} > {name} is not paused"
    left = format_duration(
        dt.timedelta(seconds=round(remaining.total_seconds())) if remaining else None
    )
    return obj, f"paused {stream} > {name} until {when(pause.pause_until)} ({left} from now)"


@consumers.command(
    "pause",
    short_help="Pause a consumer until a time, or for a while (nats-server 2.11).",
    epilog=examples(
        "syncmsg consumers pause ORDERS billing 2h",
        "syncmsg consumers pause ORDERS billing '2025-06-01 12:00' --force",
        "syncmsg consumers pause ORDERS billing 30m -f --json",
    ),
)
@click.argument("stream")
@click.argument("name")
@click.argument("until")
@FORCE_OPTION
def pause(stream: str, name: str, until: str, force: bool) -> int:
    """Pause consumer NAME of STREAM: it delivers nothing until UNTIL, a duration (2h,
    1h30m) or a time (2025-06-01 12:00:00, UTC unless it says otherwise), then resumes
    by itself. Its subscribers stay connected and simply receive nothing meanwhile.

    Asks first on a terminal; elsewhere it needs --force. JSON: {"stream", "consumer",
    "paused", "pause_until", "pause_remaining" (nanoseconds)}.
    """
    stamp = parse_until(until)
    if stamp <= dt.datetime.now(dt.timezone.utc):
        raise CommandFailed(f"{until!r} is not in the future", EXIT_USAGE)
    out = output()
    with _existing(stream, name) as (js, _):
        confirm(f"pause consumer {stream} > {name} until {when(stamp)}", force=force)
        result = js.pause_consumer(stream, name, stamp)
    out.emit(*_pause_line(stream, name, result))
    return EXIT_OK


@consumers.command(
    "resume",
    short_help="Resume a paused consumer now.",
    epilog=examples(
        "syncmsg consumers resume ORDERS billing", "syncmsg consumers resume ORDERS billing -f"
    ),
)
@click.argument("stream")
@click.argument("name")
@FORCE_OPTION
def resume(stream: str, name: str, force: bool) -> int:
    """Resume consumer NAME of STREAM, paused by ``consumers pause``: it delivers again
    at once. Asks first on a terminal; elsewhere it needs --force.

    JSON: {"stream", "consumer", "paused": false, ...}.
    """
    out = output()
    with _existing(stream, name) as (js, consumer):
        if consumer.paused:
            confirm(f"resume consumer {stream} > {name}", force=force)
        result = js.resume_consumer(stream, name)
    obj, _ = _pause_line(stream, name, result)
    out.emit(
        obj,
        f"resumed {stream} > {name}" if consumer.paused else f"{stream} > {name} was not paused",
    )
    return EXIT_OK


# ============================================================================ unpin, reset


@consumers.command(
    "unpin",
    short_help="Unpin the pinned client of a priority group (nats-server 2.11).",
    epilog=examples("syncmsg consumers unpin ORDERS jobs workers --force"),
)
@click.argument("stream")
@click.argument("name")
@click.argument("group")
@FORCE_OPTION
def unpin(stream: str, name: str, group: str, force: bool) -> int:
    """Unpin the client pinned in priority GROUP of consumer NAME: the next client to pull
    from the group is pinned instead. Asks first on a terminal; elsewhere it needs --force.

    JSON: {"stream", "consumer", "group", "unpinned": true}.
    """
    out = output()
    with _existing(stream, name) as (js, _):
        confirm(f"unpin the client of group {group} of {stream} > {name}", force=force)
        js.unpin_consumer(stream, name, group)
    out.emit(
        {"stream": stream, "consumer": name, "group": group, "unpinned": True},
        f"unpinned group {group} of {stream} > {name}",
    )
    return EXIT_OK


@consumers.command(
    "reset",
    short_help="Deliver again from the ack floor or a sequence (nats-server 2.14).",
    epilog=examples(
        "syncmsg consumers reset ORDERS billing",
        "syncmsg consumers reset ORDERS billing --seq 1000 --force",
    ),
)
@click.argument("stream")
@click.argument("name")
@click.option("--seq", type=click.IntRange(min=1), metavar="SEQ", help="Stream sequence to go to.")
@FORCE_OPTION
def reset(stream: str, name: str, seq: int | None, force: bool) -> int:
    """Reset consumer NAME of STREAM: it delivers again from stream sequence --seq, or from
    just after its ack floor; what it had delivered and not seen acknowledged is forgotten.
    Needs nats-server 2.14. Asks first on a terminal; elsewhere it needs --force.

    JSON: the consumer as the server reports it after the reset, with "reset_seq".
    """
    out = output()
    with _existing(stream, name) as (js, consumer):
        target = f"#{seq}" if seq else f"its ack floor (#{consumer.ack_floor.stream_seq})"
        confirm(f"reset consumer {stream} > {name} to {target}", force=force)
        result = js.reset_consumer(stream, name, seq)
    if out.json:
        out.emit(_api_json(result), None)
        return EXIT_OK
    out.emit(
        {},
        f"reset {stream} > {name}: delivering from #{result.reset_seq}, "
        f"{format_count(result.num_pending)} messages to deliver",
    )
    return EXIT_OK

"""``syncmsg streams ensure|ls|info|rm|purge|view|get``: JetStream streams, in human units.

Sizes and durations read the same in flags and in stream files (JSON or YAML): ``1G``,
``512MiB``, ``7d``, ``2m`` (numbers are bytes and seconds), and print in the same units;
``info`` never prints the API's nanoseconds. ``rm`` and ``purge`` ask first, unless
``--force`` (see :mod:`syncmsg.cli._confirm`). ``view`` and ``get`` read stored messages
without a consumer (the stream's message API), as ``nats stream view|get`` show them.

Threading: runs on the main thread.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from syncmsg._errors import MessageNotFoundError, StreamNotFoundError
from syncmsg.cli._app import app, examples, output, settings
from syncmsg.cli._confirm import FORCE_OPTION, confirm
from syncmsg.cli._connect import connected
from syncmsg.cli._exit import EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, CommandFailed, one_line
from syncmsg.cli._messages import payload_fields, show
from syncmsg.cli._output import Column, Output
from syncmsg.cli._units import (
    DURATION,
    SIZE,
    CountType,
    UnitError,
    format_count,
    format_nanos,
    format_size,
    parse_count,
    parse_duration,
    parse_size,
)

if TYPE_CHECKING:
    from syncmsg.jetstream import JetStream, RawStreamMsg

__all__ = ["api_rows", "load_stream_file", "streams", "when"]

#: StreamSpec fields that are sizes, durations and counts, for stream files.
SIZE_FIELDS = ("max_bytes", "max_msg_size")
DURATION_FIELDS = ("max_age", "duplicate_window", "subject_delete_marker_ttl")
COUNT_FIELDS = ("max_msgs", "max_msgs_per_subject", "max_consumers")
_LIMIT = CountType(minimum=0)


@app.group(
    "streams",
    short_help="JetStream streams: ensure, ls, info, rm, purge, view, get.",
    epilog=examples(
        "syncmsg streams ensure ORDERS --subjects 'orders.>' --max-age 7d --max-bytes 1GiB",
        "syncmsg streams ensure --file streams.yaml",
        "syncmsg streams ls",
        "syncmsg streams info ORDERS",
        "syncmsg streams view ORDERS 20 --since 1h",
        "syncmsg streams get ORDERS --last-for orders.42.status",
        "syncmsg streams purge ORDERS --subject 'orders.test.>' --force",
        "syncmsg streams rm ORDERS --force",
    ),
)
def streams() -> None:
    """Create, update, inspect and remove JetStream streams; read their messages."""


# ============================================================================ files


def _convert(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """A stream object of a file with its human units turned into bytes and durations."""
    converters: dict[str, Callable[[Any], Any]] = {}
    converters.update(dict.fromkeys(SIZE_FIELDS, parse_size))
    converters.update(dict.fromkeys(DURATION_FIELDS, parse_duration))
    converters.update(dict.fromkeys(COUNT_FIELDS, parse_count))
    spec = dict(raw)
    for key, convert in converters.items():
        value = spec.get(key)
        if value is None or (isinstance(value, float) and key not in DURATION_FIELDS):
            continue
        try:
            spec[key] = convert(value)
        except UnitError as exc:
            raise CommandFailed(f"{where}: {key}: {exc}", EXIT_USAGE) from None
    return spec


def load_stream_file(path: str) -> list[dict[str, Any]]:
    """The stream objects of a JSON or YAML file (one object or a list), units converted."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandFailed(f"cannot read {path}: {exc.strerror}", EXIT_USAGE) from None
    if file.suffix.lower() in (".yml", ".yaml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CommandFailed(f"{path} is not valid YAML: {one_line(exc)}", EXIT_USAGE) from None
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise CommandFailed(f"{path} is not valid JSON: {one_line(exc)}", EXIT_USAGE) from None
    items = data if isinstance(data, list) else [data]
    if not all(isinstance(item, dict) for item in items):
        raise CommandFailed(f"{path}: expected a stream object or a list of them", EXIT_USAGE)
    return [_convert(item, f"{path}: stream {item.get('name')!r}") for item in items]


# ============================================================================ ensure


def _split_subjects(values: Iterable[str]) -> tuple[str, ...]:
    """``--subjects 'a.>,b.*' --subjects c`` → ``("a.>", "b.*", "c")``."""
    return tuple(part for value in values for part in value.replace(",", " ").split())


@streams.command(
    "ensure",
    short_help="Create a stream, or update it to this configuration.",
    epilog=examples(
        "syncmsg streams ensure ORDERS --subjects 'orders.>' --max-age 7d --max-bytes 1GiB",
        "syncmsg streams ensure DLQ --subjects 'dlq.>' --storage memory --max-msgs 100k",
        "syncmsg streams ensure --file streams.yaml",
        notes="A file holds one stream or a list, with the fields of syncmsg.StreamSpec: "
        "name, subjects, storage, retention, discard, replicas, max_age, max_bytes, "
        "max_msgs, max_msg_size, max_msgs_per_subject, duplicate_window, description ... "
        "Sizes and durations take units there too: 'max_bytes: 1G', 'max_age: 30d'.",
    ),
)
@click.argument("name", required=False)
@click.option("--file", "file_", metavar="FILE", help="JSON or YAML file: one stream or a list.")
@click.option(
    "--subjects",
    multiple=True,
    metavar="SUBJECT",
    help="Subjects to capture: repeat the flag or separate them with commas.",
)
@click.option(
    "--storage",
    type=click.Choice(["file", "memory"]),
    help="Where messages are kept. [default: file]",
)
@click.option(
    "--retention",
    type=click.Choice(["limits", "interest", "workqueue"]),
    help="When messages go. [default: limits]",
)
@click.option(
    "--discard",
    type=click.Choice(["old", "new"]),
    help="At a limit, drop old messages or refuse new ones. [default: old]",
)
@click.option(
    "--replicas", type=click.IntRange(1, 5), metavar="N", help="Copies in a cluster. [default: 1]"
)
@click.option("--max-age", type=DURATION, help="Drop messages older than this, e.g. 7d, 12h.")
@click.option("--max-bytes", type=SIZE, help="Size limit, e.g. 1GiB, 512M.")
@click.option("--max-msgs", type=_LIMIT, help="Message limit, e.g. 1M.")
@click.option("--max-msg-size", type=SIZE, help="Largest message, e.g. 1MiB.")
@click.option(
    "--duplicate-window", type=DURATION, help="Nats-Msg-Id dedup window, e.g. 2m. [default: 2m]"
)
@click.option("--description", help="What the stream is for.")
@click.option(
    "--allow-direct/--no-allow-direct",
    default=None,
    help="Answer direct gets from any replica. [default: the server's]",
)
@click.option(
    "--allow-msg-ttl", is_flag=True, default=None, help="Allow per-message TTLs (Nats-TTL)."
)
@click.option(
    "--allow-atomic/--no-allow-atomic",
    "--allow-batch/--no-allow-batch",
    default=None,
    help="Allow atomic batch publishing (nats-server 2.12).",
)
@click.option(
    "--allow-counter",
    "allow_msg_counter",
    is_flag=True,
    default=None,
    help="Make it a counter stream (Nats-Incr; nats-server 2.12; only when creating it).",
)
def ensure(name: str | None, file_: str | None, **options: Any) -> int:
    """Create stream NAME, or update the settings that differ (messages are kept).

    Idempotent and declarative: it prints created, updated or unchanged. Limits left out
    mean "no limit", so give the whole configuration every time (a file under version
    control is the easy way).
    """
    from syncmsg.jetstream import StreamSpec

    out = output()
    if file_:
        if name:
            raise CommandFailed("give a stream NAME or --file, not both", EXIT_USAGE)
        raw_specs = load_stream_file(file_)
    elif name:
        options["subjects"] = _split_subjects(options["subjects"])
        raw = {"name": name, **{k: v for k, v in options.items() if v is not None and v != ()}}
        raw_specs = [raw]
    else:
        raise CommandFailed("give a stream NAME (with its options) or --file", EXIT_USAGE)
    specs = []
    for raw in raw_specs:
        try:
            specs.append(StreamSpec.model_validate(raw))
        except ValueError as exc:
            raise CommandFailed(
                f"invalid stream {raw.get('name')!r}: {one_line(exc)}", EXIT_USAGE
            ) from None
    with (
        connected(settings()) as client,
        out.progress("ensuring streams", len(specs), unit="streams", enabled=len(specs) > 1) as bar,
    ):
        js = client.jetstream()
        for spec in specs:
            try:
                existed = js.stream_info(spec.name) is not None
            except StreamNotFoundError:
                existed = False
            info = js.ensure_stream(spec)
            # Creating a stream identical to an existing one succeeds as "created".
            action = "unchanged" if existed and info.action == "created" else info.action
            summary = _summary(info)
            out.emit(
                {"action": action, **summary},
                f"{spec.name}: {action} (subjects: {', '.join(summary['subjects']) or '-'}; "
                f"{format_count(summary['messages'])} messages, {format_size(summary['bytes'])})",
            )
            bar.advance()
    return EXIT_OK


# ============================================================================ ls


def _summary(info: Any) -> dict[str, Any]:
    config = info.raw.get("config") or {}
    return {
        "name": info.config.name,
        "subjects": list(config.get("subjects") or []),
        "storage": config.get("storage"),
        "replicas": config.get("num_replicas"),
        "messages": info.state.messages,
        "bytes": info.state.bytes,
        "first_seq": info.state.first_seq,
        "last_seq": info.state.last_seq,
        "consumers": info.state.consumer_count,
    }


@streams.command(
    "ls",
    short_help="List streams.",
    epilog=examples("syncmsg streams ls", "syncmsg streams ls --subject orders.created --json"),
)
@click.option("--subject", metavar="SUBJECT", help="Only streams capturing this subject.")
def ls(subject: str | None) -> int:
    """List the streams: name, messages, size, consumers and subjects.

    JSON: one object per stream (name, subjects, storage, replicas, messages, bytes,
    first_seq, last_seq, consumers), with exact numbers.
    """
    out = output()
    with connected(settings()) as client:
        js = client.jetstream()
        names = sorted(js.stream_names(subject))
        rows = []
        with out.progress(
            "reading streams", len(names), unit="streams", enabled=len(names) > 20
        ) as bar:
            for stream_name in names:
                with contextlib.suppress(StreamNotFoundError):  # deleted meanwhile
                    rows.append(_summary(js.stream_info(stream_name)))
                bar.advance()
    out.table(
        rows,
        [
            Column("name", "NAME"),
            Column("messages", "MESSAGES", format_count, "right"),
            Column("bytes", "SIZE", format_size, "right"),
            Column("consumers", "CONSUMERS", format_count, "right"),
            Column("storage", "STORAGE"),
            Column("subjects", "SUBJECTS", lambda subjects: ", ".join(subjects)),
        ],
        empty="no streams",
    )
    return EXIT_OK


# ============================================================================ info


def _limit_count(value: Any) -> str:
    return "unlimited" if value is None or value < 0 else format_count(value)


#: The API's durations (nanoseconds), wherever they appear: printed in human units.
NANOS_FIELDS = frozenset(
    {
        "max_age",
        "duplicate_window",
        "subject_delete_marker_ttl",
        "inactive_threshold",
        "ack_wait",
        "idle_heartbeat",
        "max_expires",
        "pause_remaining",
        "priority_timeout",
        "active",
        "backoff",
    }
)


def _human(key: str, value: Any) -> str:
    """Any API value for people: durations in units, nested objects as ``key: value``."""
    if key in NANOS_FIELDS and isinstance(value, int | float) and not isinstance(value, bool):
        return format_nanos(int(value), zero="0s")
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')}: {_human(k, v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_human(key, item) for item in value) or "-"
    return str(value)


#: How ``info`` prints the API's config fields: (key, label, formatter), in this order.
_CONFIG_FIELDS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("description", "description", str),
    ("subjects", "subjects", lambda v: ", ".join(v) or "-"),
    ("storage", "storage", str),
    ("num_replicas", "replicas", str),
    ("retention", "retention", str),
    ("discard", "discard", str),
    ("max_age", "max age", lambda v: format_nanos(v, zero="unlimited")),
    ("max_bytes", "max bytes", format_size),
    ("max_msgs", "max messages", _limit_count),
    ("max_msg_size", "max message size", format_size),
    ("max_msgs_per_subject", "max per subject", _limit_count),
    ("max_consumers", "max consumers", _limit_count),
    ("duplicate_window", "duplicate window", lambda v: format_nanos(v, zero="off")),
    (
        "subject_delete_marker_ttl",
        "delete marker TTL",
        lambda v: format_nanos(v, zero="off"),
    ),
    ("compression", "compression", str),
    ("created", "created", str),
)
_STATE_FIELDS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("messages", "messages", format_count),
    ("bytes", "size", format_size),
    ("first_seq", "first sequence", str),
    ("first_ts", "first message", str),
    ("last_seq", "last sequence", str),
    ("last_ts", "last message", str),
    ("num_subjects", "subjects", format_count),
    ("num_deleted", "deleted", format_count),
    ("consumer_count", "consumers", format_count),
)


def api_rows(
    values: dict[str, Any], known: Iterable[tuple[str, str, Callable[[Any], str]]], skip: set[str]
) -> list[tuple[str, str]]:
    """``(label, text)`` rows of an API object: the ``known`` fields first, in their order
    and with their formatters, then every other field that is set, in human units."""
    rows = []
    seen = set(skip)
    for key, label, formatter in known:
        seen.add(key)
        if key in values and values[key] not in (None, ""):
            rows.append((label, formatter(values[key])))
    for key in sorted(set(values) - seen):
        value = values[key]
        if value in (None, "", [], {}, False):
            continue
        rows.append((key.replace("_", " "), _human(key, value)))
    return rows


@streams.command(
    "info",
    short_help="Show a stream's configuration and state.",
    epilog=examples(
        "syncmsg streams info ORDERS", "syncmsg streams info ORDERS --json | jq .state"
    ),
)
@click.argument("name")
def info(name: str) -> int:
    """Show stream NAME's configuration and state, in human units.

    JSON: {"name", "config", "state"} exactly as the server reports them (sizes in bytes,
    durations in nanoseconds). An unknown NAME exits with status 5.
    """
    out = output()
    with connected(settings()) as client:
        try:
            stream = client.jetstream().stream_info(name)
        except StreamNotFoundError:
            raise CommandFailed(f"no stream named {name!r}", EXIT_NOT_FOUND) from None
    config = dict(stream.raw.get("config") or {})
    state = dict(stream.raw.get("state") or {})
    if out.json:
        out.emit({"name": name, "config": config, "state": state}, None)
        return EXIT_OK
    shown_config = dict(config, created=when(stream.created))
    metadata = {
        k: v for k, v in (config.get("metadata") or {}).items() if not k.startswith("_nats")
    }
    shown_config["metadata"] = metadata or None
    shown_state = dict(
        state, first_ts=when(stream.state.first_ts), last_ts=when(stream.state.last_ts)
    )
    out.fields(f"stream {name}", api_rows(shown_config, _CONFIG_FIELDS, {"name"}))
    out.fields("state", api_rows(shown_state, _STATE_FIELDS, set()))
    return EXIT_OK


def when(stamp: dt.datetime | None) -> str | None:
    """``2024-05-01 12:00:03 UTC`` (to the second), or None."""
    if stamp is None:
        return None
    return stamp.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# ============================================================================ rm, purge


def _stream_or_exit(js: JetStream, name: str) -> Any:
    try:
        return js.stream_info(name)
    except StreamNotFoundError:
        raise CommandFailed(f"no stream named {name!r}", EXIT_NOT_FOUND) from None


@streams.command(
    "rm",
    short_help="Delete a stream and its messages.",
    epilog=examples("syncmsg streams rm ORDERS", "syncmsg streams rm ORDERS --force --json"),
)
@click.argument("name")
@FORCE_OPTION
def rm(name: str, force: bool) -> int:
    """Delete stream NAME, its messages and its consumers. It cannot be undone.

    Asks first on a terminal; elsewhere (a script) it needs --force. JSON:
    {"stream", "deleted": true}. An unknown NAME exits with status 5.
    """
    out = output()
    with connected(settings()) as client:
        js = client.jetstream()
        info = _stream_or_exit(js, name)
        confirm(
            f"delete stream {name}",
            force=force,
            detail=f" ({format_count(info.state.messages)} messages, "
            f"{format_count(info.state.consumer_count)} consumers)",
        )
        js.delete_stream(name)
    out.emit({"stream": name, "deleted": True}, f"deleted stream {name}")
    return EXIT_OK


@streams.command(
    "purge",
    short_help="Remove a stream's messages (all, or by subject, sequence or count).",
    epilog=examples(
        "syncmsg streams purge ORDERS --force",
        "syncmsg streams purge ORDERS --subject 'orders.test.>'",
        "syncmsg streams purge ORDERS --keep 1000 --force",
        "syncmsg streams purge ORDERS --seq 5000 --force --json",
    ),
)
@click.argument("name")
@click.option("--subject", metavar="SUBJECT", help="Only messages on this subject (wildcards).")
@click.option("--seq", type=click.IntRange(min=1), metavar="SEQ", help="Those below this sequence.")
@click.option("--keep", type=_LIMIT, help="Keep this many of the newest, e.g. 1000, 10k.")
@FORCE_OPTION
def purge(name: str, subject: str | None, seq: int | None, keep: int | None, force: bool) -> int:
    """Remove the messages of stream NAME (the stream and its consumers stay).

    --subject limits it to one subject; --seq removes those below a sequence, --keep all
    but the newest N (not both). Asks first on a terminal; elsewhere it needs --force.
    JSON: {"stream", "purged"}.
    """
    if seq is not None and keep is not None:
        raise CommandFailed("give --seq or --keep, not both", EXIT_USAGE)
    out = output()
    with connected(settings()) as client:
        js = client.jetstream()
        info = _stream_or_exit(js, name)
        which = f" on {subject}" if subject else ""
        if seq is not None:
            which += f" below #{seq}"
        if keep is not None:
            which += f" but the newest {format_count(keep)}"
        confirm(
            f"purge stream {name}",
            force=force,
            detail=f" (every message{which}; it holds {format_count(info.state.messages)})",
        )
        purged = js.purge_stream(name, subject=subject, seq=seq, keep=keep)
    out.emit(
        {"stream": name, "purged": purged}, f"purged {format_count(purged)} messages from {name}"
    )
    return EXIT_OK


# ============================================================================ view, get


def _message_fields(msg: RawStreamMsg) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "stream": msg.stream,
        "seq": msg.seq,
        "subject": msg.subject,
        "time": msg.time.isoformat() if msg.time else None,
    }
    if msg.headers:
        fields["headers"] = msg.headers
    fields.update(payload_fields(msg.data))
    return fields


def _print_stored(out: Output, msg: RawStreamMsg, *, detailed: bool) -> None:
    stamp = when(msg.time) or "?"
    if detailed:
        lines = [f"{msg.stream} #{msg.seq} on {msg.subject}, stored {stamp}"]
        if msg.headers:
            lines.append("headers:")
            lines += [f"  {key}: {value}" for key, value in msg.headers.items()]
        lines += ["", show(msg.data)]
    else:
        lines = [f"[#{msg.seq}] {msg.subject} ({stamp}): {show(msg.data)}"]
        lines += [f"  {key}: {value}" for key, value in (msg.headers or {}).items()]
    out.emit(_message_fields(msg), "\n".join(lines))


@streams.command(
    "view",
    short_help="Show a stream's messages, oldest first.",
    epilog=examples(
        "syncmsg streams view ORDERS",
        "syncmsg streams view ORDERS 50 --subject 'orders.*.status'",
        "syncmsg streams view ORDERS --since 1h --json | jq .data",
        "syncmsg streams view ORDERS 10 --id 5000",
    ),
)
@click.argument("name")
@click.argument("count", type=CountType(minimum=1), default="10")
@click.option("--id", "start", type=click.IntRange(min=1), metavar="SEQ", help="Start here.")
@click.option("--since", type=DURATION, help="Start with messages this recent, e.g. 1h, 30m.")
@click.option("--subject", metavar="SUBJECT", help="Only messages on this subject (wildcards).")
def view(
    name: str, count: int, start: int | None, since: dt.timedelta | None, subject: str | None
) -> int:
    """Show up to COUNT (default 10) messages of stream NAME, oldest first.

    Text: '[#5] orders.created (2024-05-01 12:00:03 UTC): {"id": 42}' and the headers on
    indented lines. JSON: one object per message (stream, seq, subject, time, headers,
    data or data_base64). Reading needs no consumer and acknowledges nothing.
    """
    if start is not None and since is not None:
        raise CommandFailed("give --id or --since, not both", EXIT_USAGE)
    out = output()
    shown = 0
    filter_subject = subject or ">"
    with connected(settings()) as client:
        js = client.jetstream()
        _stream_or_exit(js, name)
        try:
            if since is not None:
                start_time = dt.datetime.now(dt.timezone.utc) - since
                msg = js.get_msg(name, start_time=start_time, subject=filter_subject)
            else:
                msg = js.get_msg(name, start or 1, subject=filter_subject, next=True)
            while True:
                _print_stored(out, msg, detailed=False)
                shown += 1
                if shown >= count:
                    break
                msg = js.get_msg(name, msg.seq + 1, subject=filter_subject, next=True)
        except MessageNotFoundError:
            pass  # the end of the stream
    if not shown:
        out.status(f"no messages in {name}" + (f" on {subject}" if subject else ""))
    return EXIT_OK


@streams.command(
    "get",
    short_help="Show one stored message, by sequence or the last on a subject.",
    epilog=examples(
        "syncmsg streams get ORDERS 42",
        "syncmsg streams get ORDERS --last-for orders.42.status",
        "syncmsg streams get ORDERS 42 --json | jq -r .data",
    ),
)
@click.argument("name")
@click.argument("seq", type=click.IntRange(min=1), required=False)
@click.option(
    "-S", "--last-for", metavar="SUBJECT", help="The last message on this subject instead."
)
def get(name: str, seq: int | None, last_for: str | None) -> int:
    """Show the message at SEQ in stream NAME, or the last one on --last-for SUBJECT: its
    subject, time, headers and payload.

    JSON: {"stream", "seq", "subject", "time", "headers", "data" or "data_base64"}. No
    such message exits with status 5.
    """
    if (seq is None) == (last_for is None):
        raise CommandFailed("give a sequence SEQ or --last-for SUBJECT", EXIT_USAGE)
    out = output()
    with connected(settings()) as client:
        js = client.jetstream()
        _stream_or_exit(js, name)
        try:
            if last_for is not None:
                msg = js.get_last_msg(name, last_for)
            else:
                assert seq is not None
                msg = js.get_msg(name, seq)
        except MessageNotFoundError:
            where = f"on {last_for}" if last_for else f"at #{seq}"
            raise CommandFailed(f"no message {where} in {name}", EXIT_NOT_FOUND) from None
    _print_stored(out, msg, detailed=True)
    return EXIT_OK

"""``syncmsg streams ensure|ls|info``: JetStream streams, in human units.

Sizes and durations read the same in flags and in stream files (JSON or YAML): ``1G``,
``512MiB``, ``7d``, ``2m`` (numbers are bytes and seconds), and print in the same units.

Threading: runs on the main thread.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click

from syncmsg._errors import StreamNotFoundError
from syncmsg.cli._app import app, examples, output, settings
from syncmsg.cli._connect import connected
from syncmsg.cli._exit import EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, CommandFailed, one_line
from syncmsg.cli._output import Column
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

__all__ = ["load_stream_file", "streams"]

#: StreamSpec fields that are sizes, durations and counts, for stream files.
SIZE_FIELDS = ("max_bytes", "max_msg_size")
DURATION_FIELDS = ("max_age", "duplicate_window", "subject_delete_marker_ttl")
COUNT_FIELDS = ("max_msgs", "max_msgs_per_subject", "max_consumers")
_LIMIT = CountType(minimum=0)


@app.group(
    "streams",
    short_help="JetStream streams: ensure, ls, info.",
    epilog=examples(
        "syncmsg streams ensure ORDERS --subjects 'orders.>' --max-age 7d --max-bytes 1GiB",
        "syncmsg streams ensure --file streams.yaml",
        "syncmsg streams ls",
        "syncmsg streams info ORDERS",
    ),
)
def streams() -> None:
    """Create, update and inspect JetStream streams."""


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


def _rows(
    values: dict[str, Any], known: Iterable[tuple[str, str, Callable[[Any], str]]], skip: set[str]
) -> list[tuple[str, str]]:
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
        text = json.dumps(value) if isinstance(value, dict | list) else str(value)
        rows.append((key.replace("_", " "), text))
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
    shown_config = dict(config, created=_when(stream.created))
    metadata = {
        k: v for k, v in (config.get("metadata") or {}).items() if not k.startswith("_nats")
    }
    shown_config["metadata"] = metadata or None
    shown_state = dict(
        state, first_ts=_when(stream.state.first_ts), last_ts=_when(stream.state.last_ts)
    )
    out.fields(f"stream {name}", _rows(shown_config, _CONFIG_FIELDS, {"name"}))
    out.fields("state", _rows(shown_state, _STATE_FIELDS, set()))
    return EXIT_OK


def _when(stamp: dt.datetime | None) -> str | None:
    """``2024-05-01 12:00:03 UTC`` (to the second), or None."""
    if stamp is None:
        return None
    return stamp.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")

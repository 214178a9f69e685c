"""``syncmsg kv add|ls|get|put|del|history|watch``: key-value buckets, as ``nats kv`` shows them.

Buckets are the standard ones (``KV_<bucket>`` streams), so these commands read and write
the buckets of every NATS client. Values print byte for byte (``get`` prints the value
alone, so that ``$(syncmsg kv get ...)`` is the value); ``--json`` gives one object per
entry (``bucket``, ``key``, ``revision``, ``operation``, ``created``, ``data`` or
``data_base64``). ``watch`` ends after ``--count`` entries, after ``--wait``, or at Ctrl-C.

Threading: runs on the main thread, which reads the watcher itself (``updates``), so
entries print in revision order.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import click

from syncmsg._errors import TimeoutError as SyncTimeoutError
from syncmsg.cli._app import app, examples, output, settings
from syncmsg.cli._buckets import (
    BUCKET_COLUMN,
    DESCRIPTION_COLUMN,
    SIZE_COLUMN,
    STORAGE_COLUMN,
    TTL_COLUMN,
    show_created,
    storage_options,
)
from syncmsg.cli._confirm import FORCE_OPTION, confirm
from syncmsg.cli._connect import connected
from syncmsg.cli._exit import EXIT_INTERRUPTED, EXIT_OK, EXIT_TIMEOUT, EXIT_USAGE, CommandFailed
from syncmsg.cli._messages import payload_fields, read_data, show
from syncmsg.cli._output import Column, Output
from syncmsg.cli._units import (
    COUNT,
    DURATION,
    SECONDS,
    SIZE,
    format_count,
    format_duration,
    format_size,
)
from syncmsg.cli.streams import when

if TYPE_CHECKING:
    from syncmsg.jetstream.kv import Entry, KeyValueStatus

__all__ = ["kv"]

#: How much of a value a history row shows.
_PREVIEW = 60


@app.group(
    "kv",
    short_help="Key-value buckets: add, ls, get, put, del, history, watch.",
    epilog=examples(
        "syncmsg kv add config --history 5",
        "syncmsg kv put config db.url postgres://db/app",
        "syncmsg kv get config db.url",
        "syncmsg kv history config db.url",
        "syncmsg kv watch config 'db.>' --count 10",
        "syncmsg kv ls",
        notes="Buckets are the standard KV_<bucket> streams: nats.go, nats.js, nats-py and "
        "the nats CLI read what these commands write, and the reverse.",
    ),
)
def kv() -> None:
    """Create and list key-value buckets; read, write, delete and watch their keys."""


def _status_row(status: KeyValueStatus) -> dict[str, Any]:
    ttl = status.ttl
    return {
        "bucket": status.bucket,
        "values": status.values,
        "bytes": status.bytes,
        "history": status.history,
        "ttl": None if ttl is None else ttl.total_seconds(),
        "storage": str(status.storage.value),
        "replicas": status.replicas,
        "description": status.description,
    }


def _entry_fields(entry: Entry) -> dict[str, Any]:
    return {
        "bucket": entry.bucket,
        "key": entry.key,
        "revision": entry.revision,
        "operation": str(entry.operation.value),
        "created": entry.created.isoformat() if entry.created else None,
        **payload_fields(entry.value),
    }


# ============================================================================ add, ls


@kv.command(
    "add",
    short_help="Create a key-value bucket.",
    epilog=examples(
        "syncmsg kv add config",
        "syncmsg kv add sessions --ttl 30m --history 1 --storage memory",
        "syncmsg kv add flags --history 10 --max-value-size 64KiB --description 'feature flags'",
    ),
)
@click.argument("bucket")
@click.option(
    "--history",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    metavar="N",
    help="Entries kept per key (1 to 64).",
)
@click.option("--ttl", type=DURATION, help="Drop entries older than this, e.g. 30m, 7d.")
@click.option("--max-value-size", type=SIZE, help="Largest value, e.g. 1MiB.")
@click.option("--max-bytes", type=SIZE, help="Size limit of the bucket, e.g. 1GiB.")
@storage_options("entries")
@click.option("--description", help="What the bucket is for.")
@click.option(
    "--limit-marker-ttl",
    type=DURATION,
    help="Keep a marker this long when a key expires or is purged, e.g. 1m (nats-server 2.11).",
)
def add(bucket: str, **options: Any) -> int:
    """Create key-value bucket BUCKET. Creating it again with the same settings succeeds;
    other settings are refused (status 1).

    JSON: the bucket's row as in 'kv ls'.
    """
    out = output()
    with connected(settings()) as client:
        store = client.jetstream().create_key_value(bucket, **options)
        row = _status_row(store.status())
    return show_created(out, row, f"bucket {bucket}", f"history {row['history']}")


@kv.command(
    "ls",
    short_help="List key-value buckets, or the keys of one.",
    epilog=examples("syncmsg kv ls", "syncmsg kv ls config", "syncmsg kv ls config --json"),
)
@click.argument("bucket", required=False)
def ls(bucket: str | None) -> int:
    """List the buckets (BUCKET, VALUES, SIZE, HISTORY, TTL, STORAGE, DESCRIPTION), or with
    BUCKET, the keys that have a value, sorted.

    JSON: one object per bucket (bucket, values, bytes, history, ttl in seconds, storage,
    replicas, description), or per key ({"key"}).
    """
    out = output()
    with connected(settings()) as client:
        js = client.jetstream()
        if bucket is not None:
            keys = js.key_value(bucket).keys()
            out.table(
                [{"key": key} for key in keys], [Column("key", "KEY")], empty=f"no keys in {bucket}"
            )
            return EXIT_OK
        rows = [_status_row(status) for status in js.key_value_buckets()]
    out.table(
        rows,
        [
            BUCKET_COLUMN,
            Column("values", "VALUES", format_count, "right"),
            SIZE_COLUMN,
            Column("history", "HISTORY", str, "right"),
            TTL_COLUMN,
            STORAGE_COLUMN,
            DESCRIPTION_COLUMN,
        ],
        empty="no key-value buckets",
    )
    return EXIT_OK


# ============================================================================ get, put, del


@kv.command(
    "get",
    short_help="Print a key's value.",
    epilog=examples(
        "syncmsg kv get config db.url",
        "syncmsg kv get config db.url --revision 3",
        "syncmsg kv get config db.url --json | jq .revision",
    ),
)
@click.argument("bucket")
@click.argument("key")
@click.option("--revision", type=click.IntRange(min=1), metavar="N", help="This revision instead.")
def get(bucket: str, key: str, revision: int | None) -> int:
    """Print the value of KEY in BUCKET, byte for byte (its revision and time go to stderr).

    JSON: {"bucket", "key", "revision", "operation", "created", "data" or "data_base64"}.
    A key without a value (never set, or deleted) exits with status 5.
    """
    out = output()
    with connected(settings()) as client:
        entry = client.jetstream().key_value(bucket).get(key, revision=revision)
    out.emit(_entry_fields(entry), show(entry.value))
    if not out.json:
        out.status(f"{bucket} > {key}: revision {entry.revision}, {when(entry.created)}")
    return EXIT_OK


@kv.command(
    "put",
    short_help="Set a key's value.",
    epilog=examples(
        "syncmsg kv put config db.url postgres://db/app",
        "syncmsg kv put config app.json - < app.json",
        "syncmsg kv put config db.url postgres://db2/app --last 3    # compare-and-set",
        "syncmsg kv put locks leader host-1 --create                 # only if unset",
    ),
)
@click.argument("bucket")
@click.argument("key")
@click.argument("value", required=False)
@click.option(
    "--last", type=click.IntRange(min=1), metavar="REV", help="Only if the latest revision is REV."
)
@click.option("--create", is_flag=True, help="Only if the key has no value.")
def put(bucket: str, key: str, value: str | None, last: int | None, create: bool) -> int:
    """Set KEY in BUCKET to VALUE (UTF-8 text; '-' reads stdin's bytes; none: empty) and
    print the new revision.

    --last REV is a compare-and-set, --create sets only a key without a value; either
    refused exits with status 1. JSON: {"bucket", "key", "revision"}.
    """
    if last is not None and create:
        raise CommandFailed("give --last or --create, not both", EXIT_USAGE)
    data = read_data(value)
    out = output()
    with connected(settings()) as client:
        store = client.jetstream().key_value(bucket)
        if create:
            revision = store.create(key, data)
        elif last is not None:
            revision = store.update(key, data, last=last)
        else:
            revision = store.put(key, data)
    out.emit(
        {"bucket": bucket, "key": key, "revision": revision},
        f"{bucket} > {key}: revision {revision}",
    )
    return EXIT_OK


@kv.command(
    "del",
    short_help="Delete a key (or purge its history with --purge).",
    epilog=examples(
        "syncmsg kv del config db.url",
        "syncmsg kv del config db.url --purge --force",
    ),
)
@click.argument("bucket")
@click.argument("key")
@click.option("--purge", is_flag=True, help="Also remove the key's history (asks first).")
@FORCE_OPTION
def delete(bucket: str, key: str, purge: bool, force: bool) -> int:
    """Delete KEY in BUCKET: a delete marker is written and the history stays. With
    --purge the history goes too (asked first on a terminal; a script needs --force).

    JSON: {"bucket", "key", "revision", "operation"}.
    """
    out = output()
    with connected(settings()) as client:
        store = client.jetstream().key_value(bucket)
        if purge:
            confirm(f"purge key {key} of bucket {bucket}", force=force, detail=" and its history")
            revision = store.purge(key)
        else:
            revision = store.delete(key)
    operation = "PURGE" if purge else "DEL"
    out.emit(
        {"bucket": bucket, "key": key, "revision": revision, "operation": operation},
        f"{bucket} > {key}: {'purged' if purge else 'deleted'} (revision {revision})",
    )
    return EXIT_OK


# ============================================================================ history, watch


@kv.command(
    "history",
    short_help="Show every entry the bucket keeps for a key.",
    epilog=examples("syncmsg kv history config db.url", "syncmsg kv history config db.url --json"),
)
@click.argument("bucket")
@click.argument("key")
def history(bucket: str, key: str) -> int:
    """Show the entries the bucket keeps for KEY, oldest first: REVISION, OPERATION,
    CREATED, SIZE and the start of the VALUE.

    JSON: one entry object per line. A key without entries exits with status 5.
    """
    out = output()
    with connected(settings()) as client:
        entries = client.jetstream().key_value(bucket).history(key)
    if out.json:
        for entry in entries:
            out.emit(_entry_fields(entry), None)
        return EXIT_OK
    rows = [
        {
            "revision": entry.revision,
            "operation": entry.operation.value,
            "created": when(entry.created) or "",
            "size": len(entry.value),
            "text": show(entry.value),
        }
        for entry in entries
    ]
    out.table(
        rows,
        [
            Column("revision", "REVISION", str, "right"),
            Column("operation", "OPERATION"),
            Column("created", "CREATED"),
            Column("size", "SIZE", format_size, "right"),
            Column("text", "VALUE", _preview),
        ],
    )
    return EXIT_OK


def _preview(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 3] + "..."


def _print_entry(out: Output, entry: Entry) -> None:
    op = entry.operation.value
    text = f"[{entry.revision}] {op} {entry.key}"
    if op == "PUT":
        text += f": {show(entry.value)}"
    out.emit(_entry_fields(entry), text)


@kv.command(
    "watch",
    short_help="Print a bucket's entries as they change.",
    epilog=examples(
        "syncmsg kv watch config",
        "syncmsg kv watch config 'db.>' --count 10",
        "syncmsg kv watch config --updates-only --wait 30s --json",
    ),
)
@click.argument("bucket")
@click.argument("keys", default=">")
@click.option("--count", type=COUNT, help="Exit after N entries (status 4 if --wait ends first).")
@click.option("--wait", type=SECONDS, help="Exit after this long, e.g. 10s, 5m.")
@click.option("--history", "include_history", is_flag=True, help="Start with every kept entry.")
@click.option("--updates-only", is_flag=True, help="Only changes from now on.")
@click.option("--ignore-deletes", is_flag=True, help="Leave out delete and purge markers.")
def watch(
    bucket: str,
    keys: str,
    count: int | None,
    wait: float | None,
    include_history: bool,
    updates_only: bool,
    ignore_deletes: bool,
) -> int:
    """Print the latest entry of each key of BUCKET matching KEYS (default: all), then each
    change as it happens: '[7] PUT db.url: postgres://db/app', '[8] DEL db.url'.

    It says on stderr when the initial entries are all printed. It stops after --count
    entries, after --wait, or at Ctrl-C/SIGTERM (status 0 when there was no --count).
    JSON: one entry object per line.
    """
    if include_history and updates_only:
        raise CommandFailed("give --history or --updates-only, not both", EXIT_USAGE)
    out = output()
    deadline = None if wait is None else time.monotonic() + wait
    received = 0

    def left() -> float:
        return 1.0 if deadline is None else deadline - time.monotonic()

    interrupted = False
    with connected(settings()) as client:
        store = client.jetstream().key_value(bucket)
        with store.watch(
            keys,
            include_history=include_history,
            updates_only=updates_only,
            ignore_deletes=ignore_deletes,
        ) as watcher:
            out.status(f"watching {bucket} > {keys}")
            try:
                while (count is None or received < count) and left() > 0:
                    try:
                        entry = watcher.updates(timeout=max(min(left(), 1.0), 0.01))
                    except SyncTimeoutError:
                        continue
                    if entry is None:
                        out.status(f"initial entries: {format_count(received)}; now watching")
                        continue
                    received += 1
                    _print_entry(out, entry)
            except KeyboardInterrupt:
                interrupted = True
    if interrupted:
        return EXIT_OK if count is None else EXIT_INTERRUPTED
    if count is not None and received < count:
        assert wait is not None
        raise CommandFailed(
            f"received {format_count(received)} of {format_count(count)} entries "
            f"within {format_duration(wait)}",
            EXIT_TIMEOUT,
        )
    return EXIT_OK

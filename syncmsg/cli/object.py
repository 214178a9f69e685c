"""``syncmsg object add|ls|put|get|info|rm``: object stores, as ``nats object`` shows them.

Stores are the standard ones (``OBJ_<bucket>`` streams, the meta JSON every client writes).
``put`` and ``get`` stream files in chunks (memory stays bounded whatever the size), with a
progress bar on a terminal for files over 1 MiB; ``get`` checks the SHA-256 digest and
writes the file only once it matches.

Threading: runs on the main thread (the transfer calls the progress bar on it too).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import click

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
from syncmsg.cli._exit import EXIT_OK, EXIT_USAGE, CommandFailed
from syncmsg.cli._messages import HEADER_OPTION, parse_headers
from syncmsg.cli._output import Column
from syncmsg.cli._units import DURATION, SIZE, format_count, format_size
from syncmsg.cli.streams import when

if TYPE_CHECKING:
    from syncmsg.jetstream.object_store import ObjectInfo, ObjectStoreStatus

__all__ = ["object_"]

#: Transfers at least this big show a progress bar (on a terminal).
_PROGRESS_FROM = 1 << 20


@app.group(
    "object",
    short_help="Object stores: add, ls, put, get, info, rm.",
    epilog=examples(
        "syncmsg object add reports",
        "syncmsg object put reports ./2024-05.pdf",
        "syncmsg object get reports 2024-05.pdf -o copy.pdf",
        "syncmsg object ls reports",
        "syncmsg object info reports 2024-05.pdf",
        "syncmsg object rm reports 2024-05.pdf --force",
        notes="Stores are the standard OBJ_<bucket> streams: nats.go, nats.js, nats-py and the "
        "nats CLI read what these commands write, and the reverse.",
    ),
)
def object_() -> None:
    """Create and list object stores; put, get, inspect and remove their objects."""


def _store_row(status: ObjectStoreStatus) -> dict[str, Any]:
    ttl = status.ttl
    return {
        "bucket": status.bucket,
        "bytes": status.size,
        "ttl": None if ttl is None else ttl.total_seconds(),
        "storage": str(status.storage.value),
        "replicas": status.replicas,
        "sealed": status.sealed,
        "description": status.description,
    }


def _object_row(info: ObjectInfo) -> dict[str, Any]:
    link = info.link
    return {
        "bucket": info.bucket,
        "name": info.name,
        "size": info.size,
        "chunks": info.chunks,
        "modified": info.mtime.isoformat() if info.mtime else None,
        "digest": info.digest,
        "description": info.description,
        "link": None if link is None else {"bucket": link.bucket, "name": link.name},
        "deleted": info.deleted,
    }


# ============================================================================ add, ls


@object_.command(
    "add",
    short_help="Create an object store.",
    epilog=examples(
        "syncmsg object add reports",
        "syncmsg object add scratch --ttl 1d --max-bytes 10GiB --storage memory",
    ),
)
@click.argument("bucket")
@click.option("--description", help="What the store is for.")
@click.option("--ttl", type=DURATION, help="Drop objects older than this, e.g. 1d.")
@click.option("--max-bytes", type=SIZE, help="Size limit of the store, e.g. 10GiB.")
@storage_options("objects")
def add(bucket: str, **options: Any) -> int:
    """Create object store BUCKET. Creating it again with the same settings succeeds;
    other settings are refused (status 1).

    JSON: the store's row as in 'object ls'.
    """
    out = output()
    with connected(settings()) as client:
        store = client.jetstream().create_object_store(bucket, **options)
        row = _store_row(store.status())
    return show_created(out, row, f"object store {bucket}")


@object_.command(
    "ls",
    short_help="List object stores, or the objects of one.",
    epilog=examples(
        "syncmsg object ls", "syncmsg object ls reports", "syncmsg object ls reports --json"
    ),
)
@click.argument("bucket", required=False)
def ls(bucket: str | None) -> int:
    """List the object stores (BUCKET, SIZE, TTL, STORAGE, SEALED, DESCRIPTION), or with
    BUCKET its objects (NAME, SIZE, CHUNKS, MODIFIED, DESCRIPTION).

    JSON: one object per store (bucket, bytes, ttl in seconds, storage, replicas, sealed,
    description), or per object as 'object info' gives it.
    """
    out = output()
    with connected(settings()) as client:
        js = client.jetstream()
        if bucket is None:
            stores = [_store_row(status) for status in js.object_store_buckets()]
        else:
            objects = [_object_row(info) for info in js.object_store(bucket).list()]
    if bucket is None:
        out.table(
            stores,
            [
                BUCKET_COLUMN,
                SIZE_COLUMN,
                TTL_COLUMN,
                STORAGE_COLUMN,
                Column("sealed", "SEALED", lambda sealed: "yes" if sealed else "no"),
                DESCRIPTION_COLUMN,
            ],
            empty="no object stores",
        )
        return EXIT_OK
    out.table(
        objects,
        [
            Column("name", "NAME"),
            Column("size", "SIZE", format_size, "right"),
            Column("chunks", "CHUNKS", format_count, "right"),
            Column("modified", "MODIFIED", _when_iso),
            DESCRIPTION_COLUMN,
        ],
        empty=f"no objects in {bucket}",
    )
    return EXIT_OK


def _when_iso(stamp: str | None) -> str:
    """An object row's ISO time for people (to the second, UTC)."""
    return (when(dt.datetime.fromisoformat(stamp)) or "") if stamp else ""


# ============================================================================ put, get


@object_.command(
    "put",
    short_help="Store a file as an object.",
    epilog=examples(
        "syncmsg object put reports ./2024-05.pdf",
        "syncmsg object put reports ./05.pdf --name 2024/05.pdf --description 'May'",
        "pg_dump app | syncmsg object put backups - --name app.sql",
    ),
)
@click.argument("bucket")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--name", metavar="NAME", help="The object's name. [default: the file's name]")
@click.option("--description", help="What the object is.")
@HEADER_OPTION
@click.option(
    "--chunk-size", type=SIZE, default="128KiB", show_default=True, help="Bytes per chunk."
)
def put(
    bucket: str,
    file: str,
    name: str | None,
    description: str | None,
    headers: tuple[str, ...],
    chunk_size: int,
) -> int:
    """Store FILE ('-': stdin) as an object of BUCKET, replacing any of that name, in
    chunks, and print its name, size and digest.

    JSON: the object's info as 'object info' gives it.
    """
    if file == "-" and not name:
        raise CommandFailed("reading stdin needs --name", EXIT_USAGE)
    path = None if file == "-" else Path(file)
    if path is not None and not path.is_file():
        raise CommandFailed(f"no such file: {file}", EXIT_USAGE)
    object_name = name or (path.name if path is not None else "")
    size = path.stat().st_size if path is not None else None
    out = output()
    with connected(settings()) as client:
        store = client.jetstream().object_store(bucket)
        with out.progress(
            f"putting {object_name}",
            size,
            unit="bytes",
            enabled=size is None or size >= _PROGRESS_FROM,
        ) as bar:
            info = store.put(
                object_name,
                path if path is not None else sys.stdin.buffer,
                description=description,
                headers=parse_headers(headers),
                chunk_size=chunk_size,
                progress=bar.advance,
            )
    out.emit(
        _object_row(info),
        f"{bucket} > {info.name}: {format_size(info.size)} in {format_count(info.chunks)} "
        f"chunks, {info.digest}",
    )
    return EXIT_OK


@object_.command(
    "get",
    short_help="Write an object into a file.",
    epilog=examples(
        "syncmsg object get reports 2024-05.pdf",
        "syncmsg object get reports 2024/05.pdf -o may.pdf --force",
        "syncmsg object get backups app.sql -o - | psql app",
    ),
)
@click.argument("bucket")
@click.argument("name")
@click.option(
    "-o",
    "--output",
    "target",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Where to write it ('-': stdout). [default: the object's base name, here]",
)
@click.option("-f", "--force", is_flag=True, help="Replace a file that exists.")
def get(bucket: str, name: str, target: str | None, force: bool) -> int:
    """Write object NAME of BUCKET into a file, in chunks, checking its SHA-256 digest: the
    file appears only once the digest matched (a mismatch exits with status 1, the file
    untouched).

    JSON: the object's info, with "file".
    """
    to_stdout = target == "-"
    path = None if to_stdout else Path(target or PurePosixPath(name).name)
    if path is not None and path.exists() and not force:
        raise CommandFailed(f"{path} exists: add --force to replace it", EXIT_USAGE)
    out = output()
    with connected(settings()) as client:
        store = client.jetstream().object_store(bucket)
        info = store.info(name)
        with out.progress(
            f"getting {name}", info.size, unit="bytes", enabled=info.size >= _PROGRESS_FROM
        ) as bar:
            result = store.get(
                name, into=sys.stdout.buffer if path is None else path, progress=bar.advance
            )
    if to_stdout:
        sys.stdout.flush()
        return EXIT_OK
    written = result.info
    out.emit(
        dict(_object_row(written), file=str(path)),
        f"wrote {format_size(written.size)} to {path} ({written.digest} checked)",
    )
    return EXIT_OK


# ============================================================================ info, rm


@object_.command(
    "info",
    short_help="Show an object's info.",
    epilog=examples(
        "syncmsg object info reports 2024-05.pdf", "syncmsg object info reports a --json"
    ),
)
@click.argument("bucket")
@click.argument("name")
def info(bucket: str, name: str) -> int:
    """Show object NAME of BUCKET: size, chunks, digest, modified time, description,
    headers, metadata, link.

    JSON: {"bucket", "name", "size", "chunks", "modified", "digest", "description", "link",
    "deleted", "headers", "metadata"}. No such object exits with status 5.
    """
    out = output()
    with connected(settings()) as client:
        found = client.jetstream().object_store(bucket).info(name)
    row = dict(_object_row(found), headers=found.headers, metadata=found.metadata)
    if out.json:
        out.emit(row, None)
        return EXIT_OK
    link = found.link
    fields = [
        ("size", f"{format_size(found.size)} ({found.size:,} bytes)"),
        ("chunks", format_count(found.chunks)),
        ("chunk size", format_size(found.chunk_size) if found.chunk_size else "-"),
        ("digest", found.digest or "-"),
        ("modified", when(found.mtime) or "-"),
    ]
    if found.description:
        fields.append(("description", found.description))
    if link is not None:
        fields.append(("link to", f"{link.bucket}/{link.name}" if link.name else link.bucket))
    for key, values in (found.headers or {}).items():
        fields.append((f"header {key}", ", ".join(values)))
    for key, value in (found.metadata or {}).items():
        fields.append((f"metadata {key}", value))
    out.fields(f"object {bucket} > {name}", fields)
    return EXIT_OK


@object_.command(
    "rm",
    short_help="Delete an object.",
    epilog=examples("syncmsg object rm reports 2024-05.pdf", "syncmsg object rm reports a --force"),
)
@click.argument("bucket")
@click.argument("name")
@FORCE_OPTION
def rm(bucket: str, name: str, force: bool) -> int:
    """Delete object NAME of BUCKET (its chunks go; watchers see it deleted). Asks first
    on a terminal; a script needs --force.

    JSON: {"bucket", "name", "deleted": true}. No such object exits with status 5.
    """
    out = output()
    with connected(settings()) as client:
        store = client.jetstream().object_store(bucket)
        found = store.info(name)
        confirm(
            f"delete object {name} of {bucket}", force=force, detail=f" ({format_size(found.size)})"
        )
        store.delete(name)
    out.emit({"bucket": bucket, "name": name, "deleted": True}, f"deleted {bucket} > {name}")
    return EXIT_OK

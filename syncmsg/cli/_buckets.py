"""What ``kv`` and ``object`` share for their buckets: the ``--storage`` and ``--replicas``
options and the line of ``add``, and the columns of ``ls``.

Threading: runs on the command's (main) thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from syncmsg.cli._exit import EXIT_OK
from syncmsg.cli._output import Column, Output
from syncmsg.cli._units import format_duration, format_size

__all__ = [
    "BUCKET_COLUMN",
    "DESCRIPTION_COLUMN",
    "SIZE_COLUMN",
    "STORAGE_COLUMN",
    "TTL_COLUMN",
    "show_created",
    "storage_options",
]

F = TypeVar("F", bound=Callable[..., Any])

BUCKET_COLUMN = Column("bucket", "BUCKET")
SIZE_COLUMN = Column("bytes", "SIZE", format_size, "right")
TTL_COLUMN = Column("ttl", "TTL", lambda ttl: format_duration(ttl, none="-"))
STORAGE_COLUMN = Column("storage", "STORAGE")
DESCRIPTION_COLUMN = Column("description", "DESCRIPTION", lambda text: text or "")


def storage_options(kept: str) -> Callable[[F], F]:
    """``--storage`` (where ``kept``, "entries" or "objects", are kept) and ``--replicas``."""
    storage = click.option(
        "--storage",
        type=click.Choice(["file", "memory"]),
        default="file",
        show_default=True,
        help=f"Where {kept} are kept.",
    )
    replicas = click.option(
        "--replicas", type=click.IntRange(1, 5), default=1, metavar="N", help="Copies in a cluster."
    )

    def decorate(command: F) -> F:
        return storage(replicas(command))

    return decorate


def show_created(out: Output, row: dict[str, Any], name: str, *details: str) -> int:
    """Print the row of the bucket ``add`` made: ``<name>: <details>, TTL 1h, file storage``."""
    ttl = "no TTL" if row["ttl"] is None else f"TTL {format_duration(row['ttl'])}"
    parts = [*details, ttl, f"{row['storage']} storage"]
    out.emit(row, f"{name}: {', '.join(parts)}")
    return EXIT_OK

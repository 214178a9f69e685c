"""What the key-value and object stores' configurations share: their durations and storage
type as they are given, and the stream settings every bucket has (ADR-8, ADR-20).

Threading: types and pure functions; use them from any thread.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator

from syncmsg.jetstream._models import StorageType, to_nanos

if TYPE_CHECKING:
    from syncmsg.jetstream.kv._config import KeyValueConfig
    from syncmsg.jetstream.object_store._models import ObjectStoreConfig

__all__ = ["StoreDuration", "StoreStorage", "bucket_stream_fields"]


def _duration(value: Any) -> dt.timedelta | None:
    if value is not None and not isinstance(value, dt.timedelta):
        value = dt.timedelta(microseconds=to_nanos(value) / 1_000)
    return None if value == dt.timedelta(0) else value


def _storage(value: Any) -> StorageType:
    return StorageType.of(value, "storage")


#: Seconds or a timedelta; zero is None (no limit).
StoreDuration = Annotated[dt.timedelta | None, BeforeValidator(_duration)]
#: ``"file"``, ``"memory"`` or a :class:`~syncmsg.jetstream.StorageType`.
StoreStorage = Annotated[StorageType, BeforeValidator(_storage)]


def bucket_stream_fields(config: KeyValueConfig | ObjectStoreConfig, stream: str) -> dict[str, Any]:
    """The settings of a bucket's stream that both kinds have: the configuration's limits,
    storage and placement; new messages discarded when full; roll-ups and direct gets."""
    return {
        "name": stream,
        "description": config.description,
        "max_age": config.ttl,
        "max_bytes": config.max_bytes,
        "storage": config.storage,
        "replicas": config.replicas,
        "discard": "new",
        "allow_rollup": True,
        "allow_direct": True,
        "compression": "s2" if config.compression else "none",
        "placement": config.placement,
        "metadata": config.metadata,
    }

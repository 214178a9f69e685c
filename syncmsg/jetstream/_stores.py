"""The key-value and object store calls of a JetStream context (a base of
:class:`~syncmsg.jetstream.JetStream`): thin, they check their arguments into a
configuration and hand over to :mod:`syncmsg.jetstream._store_buckets`, which makes,
finds, deletes and lists both kinds of bucket (through
:mod:`syncmsg.jetstream.kv._buckets` where a key-value bucket asks for more).

Threading: every method runs on the calling thread (any thread but the event loop's), as
one or a few JetStream API requests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from syncmsg.jetstream._models import Duration, Placement, Republish, StorageType, StreamSource
from syncmsg.jetstream.kv import _buckets as kv_buckets
from syncmsg.jetstream.kv._bucket import KeyValue
from syncmsg.jetstream.kv._buckets import KEY_VALUE
from syncmsg.jetstream.kv._config import KeyValueConfig, check_bucket
from syncmsg.jetstream.kv._entry import KeyValueStatus
from syncmsg.jetstream.object_store._buckets import OBJECT_STORE
from syncmsg.jetstream.object_store._models import (
    ObjectStoreConfig,
    ObjectStoreStatus,
    check_store_name,
)
from syncmsg.jetstream.object_store._store import ObjectStore

if TYPE_CHECKING:
    from syncmsg.jetstream._context import JetStream

__all__ = ["StoreManager"]


class StoreManager:
    """Key-value buckets and object stores (nats-py's names)."""

    # ================================================================ key-value
    def create_key_value(
        self,
        bucket: str | None = None,
        *,
        config: KeyValueConfig | None = None,
        history: int = 1,
        ttl: Duration | None = None,
        max_value_size: int | None = None,
        max_bytes: int | None = None,
        storage: StorageType | str = StorageType.FILE,
        replicas: int = 1,
        description: str | None = None,
        limit_marker_ttl: Duration | None = None,
        republish: Republish | None = None,
        mirror: str | StreamSource | None = None,
        sources: Sequence[str | StreamSource] | None = None,
        compression: bool = False,
        placement: Placement | None = None,
        metadata: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> KeyValue:
        """Create the key-value bucket ``bucket`` and return it (see
        :class:`~syncmsg.jetstream.kv.KeyValueConfig` for each option).

        Creating a bucket identical to an existing one succeeds, so every process may call
        this at start-up; one that exists with another configuration raises
        :class:`~syncmsg.JetStreamError` (``ApiErrorCode.STREAM_NAME_IN_USE``). ``config``
        gives the whole configuration at once instead. Raises
        :class:`~syncmsg.InvalidBucketNameError` for a name that is not ``[a-zA-Z0-9_-]+``.
        """
        if config is None:
            if bucket is None:
                raise TypeError("create_key_value() needs a bucket name (or a config)")
            fields: dict[str, Any] = {
                "bucket": bucket,
                "history": history,
                "ttl": ttl,
                "max_value_size": max_value_size,
                "max_bytes": max_bytes,
                "storage": storage,
                "replicas": replicas,
                "description": description,
                "limit_marker_ttl": limit_marker_ttl,
                "republish": republish,
                "mirror": mirror,
                "sources": tuple(sources or ()),
                "compression": compression,
                "placement": placement,
                "metadata": dict(metadata) if metadata else None,
            }
            check_bucket(bucket)  # the name's own error, not a validation error
            config = KeyValueConfig(**fields)
        elif not isinstance(config, KeyValueConfig):
            raise TypeError("config must be a syncmsg.jetstream.kv.KeyValueConfig")
        return kv_buckets.create(_js(self), config, timeout=timeout)

    def key_value(self, bucket: str, *, timeout: float | None = None) -> KeyValue:
        """The existing key-value bucket ``bucket``; raises
        :class:`~syncmsg.BucketNotFoundError` when there is none."""
        return kv_buckets.bind(_js(self), bucket, timeout=timeout)

    def delete_key_value(self, bucket: str, *, timeout: float | None = None) -> None:
        """Delete the key-value bucket ``bucket`` and all its keys; raises
        :class:`~syncmsg.BucketNotFoundError` when there is none."""
        KEY_VALUE.delete(_js(self), bucket, timeout)

    def key_value_buckets(self, *, timeout: float | None = None) -> list[KeyValueStatus]:
        """Every key-value bucket's status (``.bucket``, ``.values``, ``.bytes`` ...), by
        name."""
        return KEY_VALUE.statuses(_js(self), timeout)

    # ================================================================ object stores
    def create_object_store(
        self,
        bucket: str | None = None,
        *,
        config: ObjectStoreConfig | None = None,
        description: str | None = None,
        ttl: Duration | None = None,
        max_bytes: int | None = None,
        storage: StorageType | str = StorageType.FILE,
        replicas: int = 1,
        compression: bool = False,
        placement: Placement | None = None,
        metadata: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> ObjectStore:
        """Create the object store ``bucket`` and return it (see
        :class:`~syncmsg.jetstream.object_store.ObjectStoreConfig`); identical again
        succeeds, another configuration raises :class:`~syncmsg.JetStreamError`."""
        if config is None:
            if bucket is None:
                raise TypeError("create_object_store() needs a bucket name (or a config)")
            check_store_name(bucket)
            config = ObjectStoreConfig(
                bucket=bucket,
                description=description,
                ttl=ttl,
                max_bytes=max_bytes,
                storage=storage,
                replicas=replicas,
                compression=compression,
                placement=placement,
                metadata=dict(metadata) if metadata else None,
            )
        elif not isinstance(config, ObjectStoreConfig):
            raise TypeError("config must be a syncmsg.jetstream.object_store.ObjectStoreConfig")
        return OBJECT_STORE.create(_js(self), config, timeout)

    def object_store(self, bucket: str, *, timeout: float | None = None) -> ObjectStore:
        """The existing object store ``bucket``; raises
        :class:`~syncmsg.BucketNotFoundError` when there is none."""
        return OBJECT_STORE.bind(_js(self), bucket, timeout)

    def delete_object_store(self, bucket: str, *, timeout: float | None = None) -> None:
        """Delete the object store ``bucket`` and all its objects."""
        OBJECT_STORE.delete(_js(self), bucket, timeout)

    def object_store_buckets(self, *, timeout: float | None = None) -> list[ObjectStoreStatus]:
        """Every object store's status (``.bucket``, ``.size`` ...), by name."""
        return OBJECT_STORE.statuses(_js(self), timeout)


def _js(manager: StoreManager) -> JetStream:
    return cast("JetStream", manager)

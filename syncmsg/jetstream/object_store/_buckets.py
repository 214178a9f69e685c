"""Making, finding and deleting object stores: what ``js.create_object_store``,
``js.object_store``, ``js.delete_object_store`` and ``js.object_store_buckets`` do.

Threading: every function runs on the calling thread (any thread but the event loop's), as
one or a few JetStream API requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from syncmsg._errors import ApiErrorCode, JetStreamError, map_store_error
from syncmsg.jetstream.object_store._models import (
    ObjectStoreConfig,
    ObjectStoreStatus,
    check_store_name,
    stream_name,
)
from syncmsg.jetstream.object_store._store import ObjectStore

if TYPE_CHECKING:
    from syncmsg.jetstream._context import JetStream

__all__ = ["bind", "create", "delete", "statuses"]


def create(
    js: JetStream, config: ObjectStoreConfig, *, timeout: float | None = None
) -> ObjectStore:
    """Create the store (creating one identical to an existing store succeeds)."""
    spec = config.to_stream_spec()
    try:
        info = js.add_stream(spec, timeout=timeout)
    except JetStreamError as exc:
        if exc.err_code == ApiErrorCode.STREAM_NAME_IN_USE:
            raise JetStreamError(
                f"object store {config.bucket!r} exists with another configuration",
                code=exc.code,
                err_code=exc.err_code,
                stream=spec.name,
            ) from None
        raise
    return ObjectStore(js, bucket=config.bucket, info=info)


def bind(js: JetStream, bucket: str, *, timeout: float | None = None) -> ObjectStore:
    """The existing store; :class:`~syncmsg.BucketNotFoundError` when there is none."""
    try:
        info = js.stream_info(stream_name(check_store_name(bucket)), timeout=timeout)
    except JetStreamError as exc:
        raise map_store_error(exc, "object", bucket=bucket) from None
    return ObjectStore(js, bucket=bucket, info=info)


def delete(js: JetStream, bucket: str, *, timeout: float | None = None) -> None:
    """Delete the store and every object in it."""
    try:
        js.delete_stream(stream_name(check_store_name(bucket)), timeout=timeout)
    except JetStreamError as exc:
        raise map_store_error(exc, "object", bucket=bucket) from None


def statuses(js: JetStream, *, timeout: float | None = None) -> list[ObjectStoreStatus]:
    """Every store's status, by name (streams ``OBJ_*`` capturing ``$O.*.C.>``)."""
    found = js.streams("$O.*.C.>", timeout=timeout)
    stores = [
        ObjectStoreStatus(info.config.name[4:], info)
        for info in found
        if info.config.name.startswith("OBJ_")
    ]
    return sorted(stores, key=lambda status: status.bucket)

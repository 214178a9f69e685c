"""Making, finding, deleting and listing buckets, for key-value buckets and object stores
alike: a bucket is the stream ``<prefix><bucket>``, and :class:`StoreKind` says what tells
the two kinds apart (the prefix, the noun in messages, the name check, the status and store
classes).

Threading: every function runs on the calling thread (any thread but the event loop's), as
one JetStream API request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from syncmsg._errors import ApiErrorCode, JetStreamError, map_store_error
from syncmsg.jetstream._models import StreamInfo, StreamSpec
from syncmsg.jetstream._store_status import StoreStatus

if TYPE_CHECKING:
    from syncmsg.jetstream._context import JetStream

__all__ = ["StoreConfig", "StoreKind", "bind", "create", "delete", "statuses", "stream_info"]

StoreT = TypeVar("StoreT")
StoreT_co = TypeVar("StoreT_co", covariant=True)
StatusT = TypeVar("StatusT", bound=StoreStatus)


class StoreConfig(Protocol):
    """What :func:`create` reads of a bucket's configuration."""

    @property
    def bucket(self) -> str: ...

    def to_stream_spec(self) -> StreamSpec: ...


class _OpenStore(Protocol[StoreT_co]):
    """A store class: ``KeyValue(js, bucket=, info=)``, ``ObjectStore(js, bucket=, info=)``."""

    def __call__(self, js: JetStream, *, bucket: str, info: StreamInfo) -> StoreT_co: ...


@dataclasses.dataclass(frozen=True)
class StoreKind(Generic[StoreT, StatusT]):
    """What tells key-value buckets and object stores apart when they are made, found,
    deleted and listed."""

    #: The start of a bucket's stream name: ``KV_``, ``OBJ_``.
    prefix: str
    #: What a bucket is called in messages: ``bucket``, ``object store``.
    noun: str
    #: Which column of the error table translates errors: ``kv``, ``object``.
    errors: str
    #: The subjects of the streams a listing reads: ``$KV.*.>``, ``$O.*.C.>``.
    listed_by: str
    #: The name check: the name, or :class:`~syncmsg.InvalidBucketNameError`.
    check_name: Callable[[object], str]
    status: Callable[[str, StreamInfo], StatusT]
    store: _OpenStore[StoreT]


def create(
    js: JetStream,
    kind: StoreKind[StoreT, StatusT],
    config: StoreConfig,
    *,
    timeout: float | None = None,
) -> StoreT:
    """Create the bucket (creating one identical to an existing bucket succeeds)."""
    spec = config.to_stream_spec()
    try:
        info = js.add_stream(spec, timeout=timeout)
    except JetStreamError as exc:
        if exc.err_code == ApiErrorCode.STREAM_NAME_IN_USE:
            raise JetStreamError(
                f"{kind.noun} {config.bucket!r} exists with another configuration",
                code=exc.code,
                err_code=exc.err_code,
                stream=spec.name,
            ) from None
        raise
    return kind.store(js, bucket=config.bucket, info=info)


def stream_info(
    js: JetStream, kind: StoreKind[StoreT, StatusT], bucket: str, *, timeout: float | None = None
) -> StreamInfo:
    """The bucket's stream; :class:`~syncmsg.BucketNotFoundError` when there is none."""
    name = kind.prefix + kind.check_name(bucket)
    try:
        return js.stream_info(name, timeout=timeout)
    except JetStreamError as exc:
        raise map_store_error(exc, kind.errors, bucket=bucket) from None


def bind(
    js: JetStream, kind: StoreKind[StoreT, StatusT], bucket: str, *, timeout: float | None = None
) -> StoreT:
    """The existing bucket; :class:`~syncmsg.BucketNotFoundError` when there is none."""
    return kind.store(js, bucket=bucket, info=stream_info(js, kind, bucket, timeout=timeout))


def delete(
    js: JetStream, kind: StoreKind[StoreT, StatusT], bucket: str, *, timeout: float | None = None
) -> None:
    """Delete the bucket and all it holds."""
    name = kind.prefix + kind.check_name(bucket)
    try:
        js.delete_stream(name, timeout=timeout)
    except JetStreamError as exc:
        raise map_store_error(exc, kind.errors, bucket=bucket) from None


def statuses(
    js: JetStream, kind: StoreKind[StoreT, StatusT], *, timeout: float | None = None
) -> list[StatusT]:
    """Every bucket's status, by name: the streams ``<prefix>*`` capturing ``listed_by``."""
    found = js.streams(kind.listed_by, timeout=timeout)
    buckets = [
        kind.status(info.config.name[len(kind.prefix) :], info)
        for info in found
        if info.config.name.startswith(kind.prefix)
    ]
    return sorted(buckets, key=lambda status: status.bucket)

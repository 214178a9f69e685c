"""Making, finding, deleting and listing buckets, for key-value buckets and object stores
alike: a bucket is the stream ``<prefix><bucket>``, and a :class:`StoreKind` holds what
tells the two kinds apart (the prefix, the noun in messages, the name check, the status
and store classes).

Threading: every method runs on the calling thread (any thread but the event loop's), as
one or a few JetStream API requests.
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

__all__ = ["StoreConfig", "StoreKind"]

StoreT = TypeVar("StoreT")
StoreT_co = TypeVar("StoreT_co", covariant=True)
StatusT = TypeVar("StatusT", bound=StoreStatus)


class StoreConfig(Protocol):
    """What :meth:`StoreKind.create` reads of a bucket's configuration."""

    @property
    def bucket(self) -> str: ...

    def to_stream_spec(self) -> StreamSpec: ...


class _StoreClass(Protocol[StoreT_co]):
    """``KeyValue``, ``ObjectStore``: made from the bucket's stream."""

    def __call__(self, js: JetStream, *, bucket: str, info: StreamInfo) -> StoreT_co: ...


@dataclasses.dataclass(frozen=True)
class StoreKind(Generic[StoreT, StatusT]):
    """A kind of store, and the lifecycle of its buckets."""

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
    store: _StoreClass[StoreT]

    def create(self, js: JetStream, config: StoreConfig, timeout: float | None) -> StoreT:
        """Create the bucket (creating one identical to an existing bucket succeeds)."""
        spec = config.to_stream_spec()
        try:
            info = js.add_stream(spec, timeout=timeout)
        except JetStreamError as exc:
            if exc.err_code == ApiErrorCode.STREAM_NAME_IN_USE:
                raise JetStreamError(
                    f"{self.noun} {config.bucket!r} exists with another configuration",
                    code=exc.code,
                    err_code=exc.err_code,
                    stream=spec.name,
                ) from None
            raise
        return self.store(js, bucket=config.bucket, info=info)

    def bind(self, js: JetStream, bucket: str, timeout: float | None) -> StoreT:
        """The existing bucket; :class:`~syncmsg.BucketNotFoundError` when there is none."""
        return self.store(js, bucket=bucket, info=self.stream_info(js, bucket, timeout))

    def stream_info(self, js: JetStream, bucket: str, timeout: float | None) -> StreamInfo:
        """The bucket's stream; :class:`~syncmsg.BucketNotFoundError` when there is none."""
        stream = self.prefix + self.check_name(bucket)
        try:
            return js.stream_info(stream, timeout=timeout)
        except JetStreamError as exc:
            raise map_store_error(exc, self.errors, bucket=bucket) from None

    def delete(self, js: JetStream, bucket: str, timeout: float | None) -> None:
        """Delete the bucket and all it holds."""
        stream = self.prefix + self.check_name(bucket)
        try:
            js.delete_stream(stream, timeout=timeout)
        except JetStreamError as exc:
            raise map_store_error(exc, self.errors, bucket=bucket) from None

    def statuses(self, js: JetStream, timeout: float | None) -> list[StatusT]:
        """Every bucket's status, by name."""
        found = js.streams(self.listed_by, timeout=timeout)
        buckets = [
            self.status(info.config.name[len(self.prefix) :], info)
            for info in found
            if info.config.name.startswith(self.prefix)
        ]
        return sorted(buckets, key=lambda status: status.bucket)

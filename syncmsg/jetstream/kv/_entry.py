"""What a key-value bucket hands back: entries (a key's value at one revision, or a delete
or purge marker), and the bucket's status.

Threading: immutable values and pure functions; use them from any thread. Entries are made
on the thread that reads them: the caller's (``kv.get``, ``updates()``) or a watcher's
worker thread (callbacks).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from syncmsg._codec import decode_json, decode_model
from syncmsg.jetstream._store_status import StoreStatus
from syncmsg.jetstream.kv._config import (
    KV_MARKER_REASON,
    KV_OPERATION,
    KeyValueConfig,
    config_from_spec,
)

if TYPE_CHECKING:
    from syncmsg.jetstream._message import JsMsg
    from syncmsg.jetstream._models import RawStreamMsg

__all__ = ["Entry", "KeyValueStatus", "Operation", "entry_from_msg", "entry_from_stored"]

ModelT = TypeVar("ModelT", bound=BaseModel)


class Operation(str, enum.Enum):
    """What an entry records; compares equal to its name (``entry.operation == "DEL"``)."""

    PUT = "PUT"  #: a value
    DEL = "DEL"  #: the key was deleted (its history is kept)
    PURGE = "PURGE"  #: the key was purged (its history is gone)

    def __str__(self) -> str:
        return self.value


#: How the server's markers (ADR-48) read: an expiry or a purge is a purge, a removal a
#: delete.
_MARKERS = {"MaxAge": Operation.PURGE, "Purge": Operation.PURGE, "Remove": Operation.DEL}


def operation_of(headers: Mapping[str, str] | None) -> Operation | None:
    """The operation a message's headers record; None for a marker of an unknown kind."""
    if not headers:
        return Operation.PUT
    op = headers.get(KV_OPERATION)
    if op is not None:
        return (
            Operation.DEL if op == "DEL" else Operation.PURGE if op == "PURGE" else (Operation.PUT)
        )
    reason = headers.get(KV_MARKER_REASON)
    if reason is not None:
        return _MARKERS.get(reason)
    return Operation.PUT


@dataclasses.dataclass(frozen=True)
class Entry:
    """A key's value at one revision, or a delete or purge marker.

    ``value`` is the bytes stored (empty for a marker, and for a watch with
    ``meta_only=True``); read it with :meth:`text`, :meth:`json` or :meth:`parse`.
    ``revision`` is the bucket-wide sequence of this entry; ``created`` when it was
    written; ``delta`` how many entries of the watched keys were still after it when it
    was read (0: the latest; ``None`` from ``kv.get``); ``operation`` is ``"PUT"``,
    ``"DEL"`` or ``"PURGE"``.
    """

    bucket: str
    key: str
    value: bytes
    revision: int
    created: dt.datetime | None = None
    delta: int | None = None
    operation: Operation = Operation.PUT

    def text(self, encoding: str = "utf-8") -> str:
        """The value decoded as text."""
        return self.value.decode(encoding)

    def json(self) -> Any:
        """The value parsed as JSON (raises :class:`~syncmsg.PayloadError`)."""
        return decode_json(self.value, self.key)

    def parse(self, model: type[ModelT]) -> ModelT:
        """The value validated into a pydantic ``model`` (raises PayloadError)."""
        return decode_model(self.value, model, self.key)


def entry_from_stored(bucket: str, key: str, msg: RawStreamMsg) -> Entry | None:
    """The entry a stored message is (``kv.get``); None for a marker of an unknown kind."""
    op = operation_of(msg.headers)
    if op is None:
        return None
    return Entry(bucket, key, msg.data, msg.seq, msg.time, None, op)


def entry_from_msg(bucket: str, prefix: str, msg: JsMsg) -> Entry | None:
    """The entry a watcher's message is; None for a marker of an unknown kind (skipped)."""
    op = operation_of(msg.headers)
    if op is None or not msg.subject.startswith(prefix):
        return None
    meta = msg.metadata
    return Entry(
        bucket,
        msg.subject[len(prefix) :],
        msg.data,
        meta.sequence_stream,
        meta.timestamp,
        meta.num_pending,
        op,
    )


@dataclasses.dataclass(frozen=True)
class KeyValueStatus(StoreStatus):
    """A bucket's configuration and state, read from its stream (``kv.status()``,
    ``js.key_value_buckets()``); ``stream_info`` is the whole
    :class:`~syncmsg.jetstream.StreamInfo`."""

    def __repr__(self) -> str:
        return f"<KeyValueStatus {self.bucket!r} values={self.values} history={self.history}>"

    @property
    def values(self) -> int:
        """How many entries the bucket holds, history and markers included."""
        return self.stream_info.state.messages

    @property
    def history(self) -> int:
        """How many entries are kept per key."""
        return self.stream_info.config.max_msgs_per_subject or 1

    @property
    def limit_marker_ttl(self) -> dt.timedelta | None:
        """How long the markers of expired and purged keys are kept (None: no markers)."""
        return self.stream_info.config.subject_delete_marker_ttl

    @property
    def bytes(self) -> int:
        """The size of the bucket's stream."""
        return self.stream_info.state.bytes

    @property
    def config(self) -> KeyValueConfig:
        """The bucket's configuration, as ``js.create_key_value`` takes it."""
        return config_from_spec(self.bucket, self.stream_info.config)

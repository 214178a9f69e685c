"""What a key-value bucket is made of: its configuration, its names, and the wire layout.

Threading: immutable values and pure functions; use them from any thread.

The layout is the standard one (ADR-8, and ADR-48 for limit markers), so that nats.go,
nats.js, nats-py and the ``nats`` CLI read what syncmsg writes and the reverse:

* bucket ``B`` is the stream ``KV_B`` capturing ``$KV.B.>``; key ``k`` is the subject
  ``$KV.B.k``; a value is a message on it, and its revision is the message's sequence;
* history is ``max_msgs_per_subject`` (1 to 64), the TTL ``max_age``; the stream allows
  roll-ups and direct gets, denies deletes, and discards new messages when full;
* a delete is an empty message with ``KV-Operation: DEL``; a purge one with
  ``KV-Operation: PURGE`` and ``Nats-Rollup: sub`` (which drops the key's history);
* with ``limit_marker_ttl`` the server leaves a marker (``Nats-Marker-Reason``) when a key
  expires or is removed, and keys may have TTLs of their own (``Nats-TTL``).

The behaviour is in :mod:`syncmsg.jetstream.kv._bucket`; this module only describes.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from syncmsg._errors import InvalidBucketNameError, InvalidKeyError
from syncmsg._subjects import check_publish_subject, check_subscribe_subject
from syncmsg.jetstream._models import (
    Duration,
    Placement,
    Republish,
    StorageType,
    StreamSource,
    StreamSpec,
    SubjectTransform,
    to_nanos,
)
from syncmsg.jetstream._store_config import StoreDuration, StoreStorage, bucket_stream_fields

__all__ = [
    "KV_MARKER_REASON",
    "KV_OPERATION",
    "MAX_HISTORY",
    "STREAM_PREFIX",
    "KeyValueConfig",
    "bucket_of",
    "check_bucket",
    "check_key",
    "check_key_filter",
    "key_prefix",
    "stream_name",
]

#: The header that says what an entry is: ``DEL`` or ``PURGE`` (none for a value).
KV_OPERATION = "KV-Operation"
#: The header of a marker the server leaves (nats-server 2.11): ``MaxAge``, ``Purge``,
#: ``Remove``.
KV_MARKER_REASON = "Nats-Marker-Reason"
#: The start of a bucket's stream name: bucket ``config`` is stream ``KV_config``.
STREAM_PREFIX = "KV_"
#: The most values a bucket keeps per key.
MAX_HISTORY = 64
#: Without a TTL, the stream's duplicate window (the server's default).
_DUPLICATE_WINDOW = dt.timedelta(minutes=2)

_BUCKET = re.compile(r"[a-zA-Z0-9_-]+")
_KEY = re.compile(r"[-/_=.a-zA-Z0-9]+")
_KEY_FILTER = re.compile(r"[-/_=.a-zA-Z0-9*]*>?")


def check_bucket(bucket: object) -> str:
    """``bucket`` if it is a valid bucket name (``[a-zA-Z0-9_-]+``), else
    :class:`~syncmsg.InvalidBucketNameError`."""
    if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket):
        raise InvalidBucketNameError(
            f"invalid bucket name {bucket!r}: use letters, digits, '-' and '_'"
        )
    return bucket


def _key_shape(key: str) -> bool:
    return not (key.startswith(".") or key.endswith(".") or ".." in key)


def check_key(key: object) -> str:
    """``key`` if it is a valid key (``[-/_=.a-zA-Z0-9]+``, not starting or ending with
    ``.``), else :class:`~syncmsg.InvalidKeyError`."""
    if not isinstance(key, str) or not _KEY.fullmatch(key) or not _key_shape(key):
        raise InvalidKeyError(
            f"invalid key {key!r}: use letters, digits and '-/_=.', not starting or ending with '.'"
        )
    return key


def check_key_filter(key: object) -> str:
    """``key`` if it is a valid key or key pattern for a watch (``*`` and ``>`` as in
    subjects: ``config.*``, ``users.>``), else :class:`~syncmsg.InvalidKeyError`."""
    if not isinstance(key, str) or not _KEY_FILTER.fullmatch(key) or not key:
        raise InvalidKeyError(f"invalid key filter {key!r}")
    if not _key_shape(key):
        raise InvalidKeyError(f"invalid key filter {key!r}: empty token")
    tokens = key.split(".")
    for position, token in enumerate(tokens):
        wildcard = token == "*" or (token == ">" and position == len(tokens) - 1)
        if not wildcard and ("*" in token or ">" in token):
            # "a*" would be a literal token no key can have: a wildcard stands alone.
            raise InvalidKeyError(f"invalid key filter {key!r}: misplaced wildcard")
    return key


def stream_name(bucket: str) -> str:
    """The stream of a bucket: ``KV_<bucket>``."""
    return STREAM_PREFIX + bucket


def bucket_of(stream: str) -> str:
    """The bucket whose stream is ``stream`` (a stream named otherwise: itself)."""
    return stream.removeprefix(STREAM_PREFIX)


def key_prefix(bucket: str) -> str:
    """The subject prefix of a bucket's keys: ``$KV.<bucket>.``."""
    return f"$KV.{bucket}."


def _source_of(source: str | StreamSource) -> StreamSource:
    return StreamSource(name=source) if isinstance(source, str) else source


class KeyValueConfig(BaseModel):
    """The configuration of a key-value bucket (the keywords of ``js.create_key_value``).

    ``ttl`` and ``limit_marker_ttl`` take seconds or a :class:`~datetime.timedelta`;
    ``max_value_size`` and ``max_bytes`` are bytes (None: no limit). ``mirror`` makes a
    read-only copy of another bucket (its name, or a :class:`~syncmsg.jetstream.StreamSource`
    naming it, e.g. in another domain); ``sources`` (names or sources) copy other buckets'
    keys into this one. ``limit_marker_ttl`` (at least 1 s, nats-server 2.11) makes the
    server leave a marker, kept that long, when a key expires or is purged with a TTL, and
    allows TTLs per key (``kv.create(..., ttl=)``, ``kv.purge(..., ttl=)``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    bucket: str
    description: str | None = None
    history: int = Field(1, ge=1, le=MAX_HISTORY)
    ttl: StoreDuration = None
    max_value_size: int | None = Field(None, ge=1)
    max_bytes: int | None = Field(None, ge=1)
    storage: StoreStorage = StorageType.FILE
    replicas: int = Field(1, ge=1, le=5)
    limit_marker_ttl: StoreDuration = None
    republish: Republish | None = None
    mirror: StreamSource | None = None
    sources: tuple[StreamSource, ...] = ()
    compression: bool = False
    placement: Placement | None = None
    metadata: dict[str, str] | None = None

    @field_validator("bucket")
    @classmethod
    def _check_bucket(cls, value: str) -> str:
        return check_bucket(value)

    @field_validator("mirror", mode="before")
    @classmethod
    def _check_mirror(cls, value: Any) -> Any:
        return _source_of(value) if isinstance(value, str) else value

    @field_validator("sources", mode="before")
    @classmethod
    def _check_sources(cls, value: Any) -> Any:
        if isinstance(value, str | StreamSource):
            value = [value]
        return tuple(_source_of(s) if isinstance(s, str) else s for s in value or ())

    @field_validator("limit_marker_ttl")
    @classmethod
    def _check_marker_ttl(cls, value: dt.timedelta | None) -> dt.timedelta | None:
        if value is not None and value < dt.timedelta(seconds=1):
            raise ValueError("limit_marker_ttl must be at least one second")
        return value

    def to_stream_spec(self) -> StreamSpec:
        """The stream this bucket is (ADR-8): ``KV_<bucket>`` on ``$KV.<bucket>.>``."""
        window = _DUPLICATE_WINDOW
        if self.ttl is not None and self.ttl < window:
            window = self.ttl  # the window may not outlast max_age
        fields: dict[str, Any] = {
            **bucket_stream_fields(self, stream_name(self.bucket)),
            "max_msgs_per_subject": self.history,
            "max_msg_size": self.max_value_size,
            "deny_delete": True,
            "duplicate_window": window,
            "republish": self.republish,
        }
        if self.limit_marker_ttl is not None:
            fields["subject_delete_marker_ttl"] = self.limit_marker_ttl
        if self.mirror is not None:
            fields["mirror"] = _mirrored(self.mirror)
            fields["mirror_direct"] = True
        else:
            fields["subjects"] = (f"{key_prefix(self.bucket)}>",)
            fields["sources"] = tuple(_sourced(s, self.bucket) for s in self.sources)
        return StreamSpec(**fields)


def _mirrored(source: StreamSource) -> StreamSource:
    """A mirror of a bucket names its stream: ``KV_<origin>``."""
    if source.name.startswith(STREAM_PREFIX):
        return source
    return source.model_copy(update={"name": stream_name(source.name)})


def _sourced(source: StreamSource, bucket: str) -> StreamSource:
    """A source bucket's keys, renamed into this bucket's subjects (as nats.go does); a
    source with transforms of its own is taken as it is (a stream that is no bucket)."""
    if source.subject_transforms:
        return source
    origin = bucket_of(source.name)
    update: dict[str, Any] = {"name": stream_name(origin)}
    if source.external is None or origin != bucket:
        update["subject_transforms"] = (
            SubjectTransform(src=f"{key_prefix(origin)}>", dest=f"{key_prefix(bucket)}>"),
        )
    return source.model_copy(update=update)


def config_from_spec(bucket: str, spec: StreamSpec) -> KeyValueConfig:
    """The bucket configuration a stream's configuration stands for (``kv.status()``)."""
    return KeyValueConfig.model_construct(
        bucket=bucket,
        description=spec.description,
        history=spec.max_msgs_per_subject or 1,
        ttl=spec.max_age,
        max_value_size=spec.max_msg_size,
        max_bytes=spec.max_bytes,
        storage=spec.storage,
        replicas=spec.replicas,
        limit_marker_ttl=spec.subject_delete_marker_ttl,
        republish=spec.republish,
        mirror=spec.mirror,
        sources=spec.sources,
        compression=spec.compression.value == "s2",
        placement=spec.placement,
        metadata=spec.metadata,
    )


def check_value_ttl(ttl: Duration | None) -> Duration | None:
    """A key's own TTL: at least a second (the server's minimum), or None."""
    if ttl is not None and to_nanos(ttl) < 1_000_000_000:
        raise ValueError(f"ttl must be at least one second, got {ttl!r}")
    return ttl


def key_subjects(bucket_prefix: str, keys: str | Sequence[str]) -> tuple[str, ...]:
    """The subjects a watch of ``keys`` (one pattern or several) filters on."""
    patterns = (keys,) if isinstance(keys, str) else tuple(keys)
    if not patterns:
        patterns = (">",)
    subjects = tuple(bucket_prefix + check_key_filter(key) for key in patterns)
    for subject in subjects:
        check_subscribe_subject(subject)
    return subjects


def key_subject(bucket_prefix: str, key: str) -> str:
    """The subject of one key (checked, and checked to fit the server's control line)."""
    return check_publish_subject(bucket_prefix + check_key(key), "key")

"""Stream specifications, stream information, and the comparison that detects drift.

Threading: immutable values and pure functions; use them from any thread.

A :class:`StreamSpec` is what the application wants; :meth:`StreamSpec.to_api` turns it into
the JetStream API's ``StreamConfig`` JSON (durations in nanoseconds, ``-1`` for "no limit").
:func:`drift` compares that JSON with the configuration the server reports, looking only at
the fields the spec sends, so defaults the server fills in on its own (``max_consumers``,
``allow_direct``, its ``_nats.*`` metadata …) never count as drift.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from syncmsg._subjects import check_subscribe_subject
from syncmsg.jetstream._api import from_nanos, to_nanos

__all__ = [
    "Compression",
    "DiscardPolicy",
    "RetentionPolicy",
    "StorageType",
    "StreamInfo",
    "StreamSpec",
    "StreamState",
    "drift",
    "parse_time",
]

_NAME = re.compile(r"^[^\s.*>/\\]+$")
_MAX_REPLICAS = 5


class RetentionPolicy(str, enum.Enum):
    """When the stream lets go of a message."""

    LIMITS = "limits"  #: when a limit (age, size, count) is reached
    INTEREST = "interest"  #: when every consumer has acknowledged it
    WORKQUEUE = "workqueue"  #: when one consumer has acknowledged it


class StorageType(str, enum.Enum):
    FILE = "file"
    MEMORY = "memory"


class DiscardPolicy(str, enum.Enum):
    """What happens when the stream is full: drop old messages, or refuse new ones."""

    OLD = "old"
    NEW = "new"


class Compression(str, enum.Enum):
    NONE = "none"
    S2 = "s2"


class StreamSpec(BaseModel):
    """The configuration an application wants for one stream.

    Durations are :class:`~datetime.timedelta` (numbers are read as seconds), sizes are in
    bytes, and ``None`` means "no limit" (or, for ``duplicate_window``, the server's default of
    two minutes, capped at ``max_age``). ``extra`` carries any other ``StreamConfig`` field of
    the JetStream API, sent and compared as it is::

        StreamSpec(name="ORDERS", subjects=["orders.>"], max_age=timedelta(days=7),
                   max_bytes=1 << 30, duplicate_window=timedelta(minutes=5))
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)

    name: str
    subjects: tuple[str, ...] = ()
    description: str | None = None
    retention: RetentionPolicy = RetentionPolicy.LIMITS
    storage: StorageType = StorageType.FILE
    replicas: int = Field(1, ge=1, le=_MAX_REPLICAS)
    max_age: dt.timedelta | None = None
    max_bytes: int | None = Field(None, ge=0)
    max_msgs: int | None = Field(None, ge=0)
    max_msg_size: int | None = Field(None, ge=0)
    max_msgs_per_subject: int | None = Field(None, ge=0)
    max_consumers: int | None = Field(None, ge=0)
    discard: DiscardPolicy = DiscardPolicy.OLD
    duplicate_window: dt.timedelta | None = None
    deny_delete: bool = False
    deny_purge: bool = False
    allow_rollup: bool = False
    compression: Compression = Compression.NONE
    metadata: dict[str, str] | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not value or not _NAME.match(value) or len(value) > 255:
            raise ValueError(
                f"invalid stream name {value!r}: no spaces, '.', '*', '>', '/' or '\\\\'"
            )
        return value

    @field_validator("subjects", mode="before")
    @classmethod
    def _one_subject(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("subjects")
    @classmethod
    def _check_subjects(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for subject in value:
            check_subscribe_subject(subject)
        if len(set(value)) != len(value):
            raise ValueError("subjects contains duplicates")
        return value

    @field_validator("max_age", "duplicate_window")
    @classmethod
    def _check_duration(cls, value: dt.timedelta | None) -> dt.timedelta | None:
        if value is not None and value < dt.timedelta(0):
            raise ValueError("a duration cannot be negative")
        return None if value == dt.timedelta(0) else value

    def to_api(self) -> dict[str, Any]:
        """The JetStream API ``StreamConfig`` JSON for this spec."""
        config: dict[str, Any] = {
            "name": self.name,
            "retention": self.retention.value,
            "storage": self.storage.value,
            "num_replicas": self.replicas,
            "max_age": to_nanos(self.max_age),
            "max_bytes": _limit(self.max_bytes),
            "max_msgs": _limit(self.max_msgs),
            "max_msg_size": _limit(self.max_msg_size),
            "max_msgs_per_subject": _limit(self.max_msgs_per_subject),
            "max_consumers": _limit(self.max_consumers),
            "discard": self.discard.value,
            "deny_delete": self.deny_delete,
            "deny_purge": self.deny_purge,
            "allow_rollup_hdrs": self.allow_rollup,
            "compression": self.compression.value,
        }
        if self.subjects:
            config["subjects"] = list(self.subjects)
        if self.description:
            config["description"] = self.description
        if self.duplicate_window is not None:
            config["duplicate_window"] = to_nanos(self.duplicate_window)
        if self.metadata:
            config["metadata"] = dict(self.metadata)
        config.update(self.extra)
        return config

    @classmethod
    def from_api(cls, config: dict[str, Any]) -> StreamSpec:
        """The spec that describes a server-reported ``StreamConfig`` (unknown fields dropped)."""
        metadata = {
            k: v for k, v in (config.get("metadata") or {}).items() if not k.startswith("_nats")
        }
        return cls.model_validate(
            {
                "name": config["name"],
                "subjects": tuple(config.get("subjects") or ()),
                "description": config.get("description") or None,
                "retention": config.get("retention", "limits"),
                "storage": config.get("storage", "file"),
                "replicas": config.get("num_replicas") or 1,
                "max_age": from_nanos(config.get("max_age")),
                "max_bytes": _unlimited(config.get("max_bytes")),
                "max_msgs": _unlimited(config.get("max_msgs")),
                "max_msg_size": _unlimited(config.get("max_msg_size")),
                "max_msgs_per_subject": _unlimited(config.get("max_msgs_per_subject")),
                "max_consumers": _unlimited(config.get("max_consumers")),
                "discard": config.get("discard", "old"),
                "duplicate_window": from_nanos(config.get("duplicate_window")),
                "deny_delete": bool(config.get("deny_delete")),
                "deny_purge": bool(config.get("deny_purge")),
                "allow_rollup": bool(config.get("allow_rollup_hdrs")),
                "compression": config.get("compression") or "none",
                "metadata": metadata or None,
            }
        )


def _limit(value: int | None) -> int:
    return -1 if value is None else value


def _unlimited(value: Any) -> int | None:
    if value is None or value < 0:
        return None
    return int(value)


# What the server reports for a field it leaves out of its reply (Go's omitempty).
_OMITTED = {
    "description": "",
    "deny_delete": False,
    "deny_purge": False,
    "allow_rollup_hdrs": False,
    "compression": "none",
    "discard": "old",
    "max_age": 0,
    "duplicate_window": 0,
}


def drift(wanted: dict[str, Any], actual: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The fields of ``wanted`` (an API config) whose value differs on the server.

    Returns ``{field: (wanted, actual)}``; empty when the stream is as wanted. Subjects are
    compared as sets; ``metadata`` only on the keys ``wanted`` has; fields ``wanted`` does
    not send are never compared.
    """
    changed: dict[str, tuple[Any, Any]] = {}
    for key, want in wanted.items():
        if key == "name":
            continue
        have = actual.get(key, _OMITTED.get(key))
        if key == "subjects":
            if sorted(want or ()) != sorted(have or ()):
                changed[key] = (want, have)
        elif key == "metadata":
            have_map = have or {}
            if any(have_map.get(k) != v for k, v in (want or {}).items()):
                changed[key] = (want, have)
        elif want != have:
            changed[key] = (want, have)
    return changed


def parse_time(value: Any) -> dt.datetime | None:
    """An RFC 3339 time from the server (nanosecond precision, ``Z``) as an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    match = re.match(r"^(.*T\d{2}:\d{2}:\d{2})(\.\d+)?(.*)$", text)
    if match:
        head, fraction, zone = match.groups()
        text = head + (fraction[:7] if fraction else "") + zone
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.year <= 1:
        return None  # Go's zero time
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)


@dataclasses.dataclass(frozen=True)
class StreamState:
    """How much a stream holds now."""

    messages: int
    bytes: int
    first_seq: int
    last_seq: int
    consumer_count: int
    first_ts: dt.datetime | None = None
    last_ts: dt.datetime | None = None
    num_subjects: int | None = None
    num_deleted: int | None = None

    @classmethod
    def from_api(cls, state: dict[str, Any]) -> StreamState:
        return cls(
            messages=int(state.get("messages", 0)),
            bytes=int(state.get("bytes", 0)),
            first_seq=int(state.get("first_seq", 0)),
            last_seq=int(state.get("last_seq", 0)),
            consumer_count=int(state.get("consumer_count", 0)),
            first_ts=parse_time(state.get("first_ts")),
            last_ts=parse_time(state.get("last_ts")),
            num_subjects=state.get("num_subjects"),
            num_deleted=state.get("num_deleted"),
        )


@dataclasses.dataclass(frozen=True)
class StreamInfo:
    """A stream as the server reports it.

    ``config`` is the server's configuration read back as a :class:`StreamSpec`; ``raw`` is
    the API's whole reply. After :meth:`JetStream.ensure_stream`, ``action`` says what was
    done: ``"created"``, ``"updated"`` or ``"unchanged"`` (``""`` otherwise).
    """

    name: str
    config: StreamSpec
    state: StreamState
    created: dt.datetime | None
    cluster: dict[str, Any] | None
    raw: dict[str, Any] = dataclasses.field(repr=False, compare=False)
    action: str = ""

    @property
    def duplicate_window(self) -> dt.timedelta | None:
        return self.config.duplicate_window

    @classmethod
    def from_api(cls, data: dict[str, Any], action: str = "") -> StreamInfo:
        config = data.get("config") or {}
        return cls(
            name=str(config.get("name", "")),
            config=StreamSpec.from_api(config),
            state=StreamState.from_api(data.get("state") or {}),
            created=parse_time(data.get("created")),
            cluster=data.get("cluster"),
            raw=data,
            action=action,
        )

"""The JetStream API's values: the configuration you send and the answers the server gives.

Threading: immutable values and pure functions; use them from any thread.

Every model is a frozen pydantic model. Read the server's JSON with ``Model.from_api(data)``
(and write it with ``model.to_api()``): on the wire durations are nanoseconds, times are
RFC 3339 strings with nanoseconds (Go's zero time meaning "none"); in Python they are
:class:`~datetime.timedelta` and aware :class:`~datetime.datetime` values. Built in Python
(``ConsumerConfig(ack_wait=30)``), numbers given for durations are seconds.

Nothing a newer server adds is fatal: fields this version does not know are kept
(``model_extra``, and sent back by ``to_api``), and so are enum values it does not know
(``AckPolicy("some_new_policy")`` when read from the server; a typo in your own
configuration is still refused).

The configuration types (:class:`StreamSpec`, :class:`ConsumerConfig` and their parts) live
here, apart from the behaviour that uses them (``_streams.py``, ``_consumer.py``), as in
nats.go.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import math
import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    SerializationInfo,
    ValidationInfo,
    field_validator,
    model_validator,
)

from syncmsg._codec import decode_json, decode_model
from syncmsg._subjects import check_subscribe_subject

__all__ = [
    "API",
    "AccountInfo",
    "AckPolicy",
    "ApiError",
    "ClusterInfo",
    "Compression",
    "ConsumerConfig",
    "ConsumerInfo",
    "ConsumerPause",
    "ConsumerReset",
    "DeliverPolicy",
    "DiscardPolicy",
    "Duration",
    "ExternalStream",
    "PeerInfo",
    "Placement",
    "PriorityGroupState",
    "PriorityPolicy",
    "PubAck",
    "RawStreamMsg",
    "ReplayPolicy",
    "Republish",
    "RetentionPolicy",
    "SequenceInfo",
    "StorageType",
    "StreamInfo",
    "StreamSource",
    "StreamSourceInfo",
    "StreamSpec",
    "StreamState",
    "SubjectTransform",
    "check_group_name",
    "from_nanos",
    "parse_time",
    "to_nanos",
    "to_seconds",
]

#: The validation (and serialization) context of values that come from, or go to, the
#: server: durations in nanoseconds, unknown enum values kept.
API: dict[str, Any] = {"api": True}

_NANOS = 1_000_000_000
Duration = float | int | dt.timedelta
ModelT = TypeVar("ModelT", bound=BaseModel)
ApiModelT = TypeVar("ApiModelT", bound="ApiModel")
EnumT = TypeVar("EnumT", bound="ApiEnum")


# ===================================================================== durations and times


def to_nanos(value: Duration | None) -> int:
    """A duration (seconds, or a timedelta) in whole nanoseconds; ``None`` is 0."""
    if value is None:
        return 0
    if isinstance(value, dt.timedelta):
        return (value.days * 86_400 + value.seconds) * _NANOS + value.microseconds * 1_000
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"not a duration: {value!r}")
    if value < 0:
        raise ValueError(f"a duration cannot be negative: {value!r}")
    return round(value * _NANOS)


def to_seconds(value: Duration) -> float:
    """A duration (seconds, or a timedelta) in seconds."""
    return to_nanos(value) / _NANOS


def from_nanos(value: Any) -> dt.timedelta | None:
    """A JetStream duration (nanoseconds) as a timedelta; 0, a negative value (the API's
    "never") or a missing one is ``None``."""
    if not value or int(value) < 0:
        return None
    return dt.timedelta(microseconds=int(value) // 1_000)


def parse_time(value: Any) -> dt.datetime | None:
    """An RFC 3339 time from the server (nanosecond precision, ``Z``) as an aware datetime;
    Go's zero time, an empty or unreadable value is ``None``."""
    if isinstance(value, dt.datetime):
        stamp = value
    elif not isinstance(value, str) or not value or value.startswith("0001-01-01"):
        return None
    else:
        text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
        head, dot, rest = text.partition(".")
        if dot:  # Python reads microseconds (3.10: exactly 6 digits); Go drops trailing zeros
            digits = len(rest) - len(rest.lstrip("0123456789"))
            text = f"{head}.{rest[: min(digits, 6)].ljust(6, '0')}{rest[digits:]}"
        try:
            stamp = dt.datetime.fromisoformat(text)
        except ValueError:
            return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)


def format_time(value: dt.datetime) -> str:
    """An aware (or UTC) datetime as the RFC 3339 text the server reads."""
    stamp = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    return stamp.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _from_api(info: ValidationInfo | SerializationInfo) -> bool:
    context = info.context
    return bool(context and context.get("api"))


def _read_duration(value: Any, info: ValidationInfo) -> dt.timedelta | None:
    if value is None or isinstance(value, dt.timedelta):
        return value
    if _from_api(info):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"not a duration in nanoseconds: {value!r}")
        return from_nanos(value)
    return dt.timedelta(microseconds=to_nanos(value) / 1_000)


def _write_duration(value: dt.timedelta | None, info: SerializationInfo) -> Any:
    if value is None or not _from_api(info):
        return value
    return to_nanos(value)


def _read_time(value: Any) -> dt.datetime | None:
    return None if value is None else parse_time(value)


def _write_time(value: dt.datetime | None, info: SerializationInfo) -> Any:
    if value is None or not _from_api(info):
        return value
    return format_time(value)


#: A duration: nanoseconds from the server, seconds or a timedelta from you; 0 is ``None``.
Nanos = Annotated[
    dt.timedelta | None, BeforeValidator(_read_duration), PlainSerializer(_write_duration)
]
#: A time: RFC 3339 from the server, Go's zero time read as ``None``.
Time = Annotated[dt.datetime | None, BeforeValidator(_read_time), PlainSerializer(_write_time)]


# ===================================================================== enums


class ApiEnum(str, enum.Enum):
    """An enum of API strings that keeps values a newer server sends and this version does
    not know (as a member of their own), instead of failing on them."""

    @classmethod
    def of(cls: type[EnumT], value: Any, what: str = "") -> EnumT:
        """``value`` as a member, refusing what this version does not know (your input)."""
        if isinstance(value, cls) or value in cls._value2member_map_:
            return cls(value)
        choices = ", ".join(repr(v) for v in cls._value2member_map_)
        raise ValueError(f"{what or cls.__name__} {value!r} is not one of {choices}")

    @classmethod
    def _missing_(cls, value: object) -> ApiEnum | None:
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = value.upper()
        member._value_ = value
        return member


def _strict_unless_from_api(enum_cls: type[ApiEnum], *, optional: bool = False) -> BeforeValidator:
    def check(value: Any, info: ValidationInfo) -> Any:
        if value is None and optional:
            return None
        return enum_cls(value) if _from_api(info) else enum_cls.of(value)

    return BeforeValidator(check)


class RetentionPolicy(ApiEnum):
    """When the stream lets go of a message."""

    LIMITS = "limits"  #: when a limit (age, size, count) is reached
    INTEREST = "interest"  #: when every consumer has acknowledged it
    WORKQUEUE = "workqueue"  #: when one consumer has acknowledged it


class StorageType(ApiEnum):
    FILE = "file"
    MEMORY = "memory"


class DiscardPolicy(ApiEnum):
    """What happens when the stream is full: drop old messages, or refuse new ones."""

    OLD = "old"
    NEW = "new"


class Compression(ApiEnum):
    NONE = "none"
    S2 = "s2"


class DeliverPolicy(ApiEnum):
    """Where a new consumer starts in the stream."""

    ALL = "all"
    LAST = "last"
    NEW = "new"
    BY_START_SEQUENCE = "by_start_sequence"  #: at ``opt_start_seq``
    BY_START_TIME = "by_start_time"  #: at ``opt_start_time``
    LAST_PER_SUBJECT = "last_per_subject"  #: the last message of each subject, then new ones


class AckPolicy(ApiEnum):
    NONE = "none"  #: nothing to acknowledge (ordered consumers)
    ALL = "all"  #: acknowledging a message acknowledges every earlier one
    EXPLICIT = "explicit"  #: each message is acknowledged on its own


class ReplayPolicy(ApiEnum):
    INSTANT = "instant"  #: as fast as the consumer takes them
    ORIGINAL = "original"  #: at the pace they were published


class PriorityPolicy(ApiEnum):
    """How a consumer with priority groups chooses between the clients pulling from a group
    (nats-server 2.11; ``prioritized`` 2.12)."""

    NONE = "none"  #: no priority groups: every pull request is served in turn
    #: Served only when the consumer's backlog is at least the request's ``min_pending``
    #: (or its unacknowledged messages at least ``min_ack_pending``): overflow workers.
    OVERFLOW = "overflow"
    #: One client at a time gets every message (the pinned one, whose requests carry the
    #: ``Nats-Pin-Id`` the server gave it); another takes over when it stops pulling for
    #: ``pinned_ttl``, or after an unpin.
    PINNED_CLIENT = "pinned_client"
    #: Requests with a lower ``priority`` (0-9) are served first.
    PRIORITIZED = "prioritized"


#: Priority group names the server accepts.
_GROUP_NAME = re.compile(r"^[A-Za-z0-9\-_/=)+]{1,16}$")


def check_group_name(group: str) -> str:
    """``group`` if it is a priority group name the server accepts (1 to 16 of
    ``A-Z a-z 0-9 - _ / = ) +``), else :class:`ValueError`."""
    if not isinstance(group, str) or not _GROUP_NAME.match(group):
        raise ValueError(
            f"invalid priority group name {group!r}: 1 to 16 characters of A-Z, a-z, 0-9 "
            "and - _ / = ) +"
        )
    return group


# ===================================================================== the base


def _accepted_names(model: type[BaseModel]) -> set[str]:
    """A model's field names and the other names its fields accept (their aliases)."""
    names = set(model.model_fields)
    for field in model.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, str):
            names.add(alias)
        elif isinstance(alias, AliasChoices):
            names.update(choice for choice in alias.choices if isinstance(choice, str))
    return names


class ApiModel(BaseModel):
    """A value of the JetStream API: frozen, unknown fields kept."""

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any, info: ValidationInfo) -> Any:
        # Unknown fields are kept when the server sends them, refused when you do (a typo).
        if isinstance(data, Mapping) and not _from_api(info):
            unknown = [key for key in data if key not in _accepted_names(cls)]
            if unknown:
                raise ValueError(f"unknown field(s) of {cls.__name__}: {', '.join(unknown)}")
        return data

    @classmethod
    def from_api(cls: type[ApiModelT], data: Mapping[str, Any]) -> ApiModelT:
        """Read the server's JSON (nanosecond durations, RFC 3339 times)."""
        return cls.model_validate(data, context=API)

    def to_api(self) -> dict[str, Any]:
        """The JSON the API reads (nanosecond durations; unset fields left out)."""
        return self.model_dump(mode="json", context=API, exclude_none=True)

    # Read like the API's JSON too (``info.cluster.get("leader")``,
    # ``info.config["ack_policy"]``), as these values were dicts before.
    def __getitem__(self, key: str) -> Any:
        """The API JSON value of ``key`` (``KeyError`` when it is not set)."""
        return self.to_api()[key]

    def get(self, key: str, default: Any = None) -> Any:
        """The API JSON value of ``key``, or ``default``."""
        return self.to_api().get(key, default)


class _RawKept(ApiModel):
    """An answer that also keeps the server's whole JSON as ``raw``."""

    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @classmethod
    def from_api(cls: type[ApiModelT], data: Mapping[str, Any]) -> ApiModelT:
        model = cls.model_validate(data, context=API)
        model._raw = dict(data)  # type: ignore[attr-defined]
        return model

    @property
    def raw(self) -> dict[str, Any]:
        """The server's JSON as it was sent."""
        return self._raw


# ===================================================================== stream configuration


class SubjectTransform(ApiModel):
    """Rewrite subjects matching ``src`` to ``dest`` (``{{wildcard(1)}}`` and friends)."""

    src: str
    dest: str


class ExternalStream(ApiModel):
    """A stream in another domain or account: its API prefix and delivery prefix."""

    api: str
    deliver: str = ""


class StreamSource(ApiModel):
    """A stream to mirror or source from, optionally filtered and transformed.

    ``domain`` reaches a stream in another JetStream domain (it becomes ``external``'s
    API prefix ``$JS.<domain>.API``)."""

    name: str
    opt_start_seq: int | None = None
    opt_start_time: Time = None
    filter_subject: str | None = None
    subject_transforms: tuple[SubjectTransform, ...] = ()
    external: ExternalStream | None = None
    domain: str | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _check(self) -> StreamSource:
        if self.domain is not None and self.external is not None:
            raise ValueError("give a source either domain or external, not both")
        if self.filter_subject and self.subject_transforms:
            raise ValueError("a source takes filter_subject or subject_transforms, not both")
        return self

    def to_api(self) -> dict[str, Any]:
        data = super().to_api()
        if not data.get("subject_transforms"):
            data.pop("subject_transforms", None)
        if self.domain is not None:
            data["external"] = {"api": f"$JS.{self.domain}.API", "deliver": ""}
        return data


class Republish(ApiModel):
    """Republish every stored message matching ``src`` to ``dest`` (core NATS)."""

    src: str = ">"
    dest: str
    headers_only: bool = False


class Placement(ApiModel):
    """Where a stream's replicas go: a cluster, and servers with these tags."""

    cluster: str | None = None
    tags: tuple[str, ...] = ()


_STREAM_NAME = re.compile(r"^[^\s.*>/\\]+$")
_MAX_REPLICAS = 5
# StreamSpec field → the API's name, where they differ.
_SPEC_API_NAMES = {"replicas": "num_replicas", "allow_rollup": "allow_rollup_hdrs"}
# "No limit": None here, -1 in the API.
_LIMITS = ("max_bytes", "max_msgs", "max_msg_size", "max_msgs_per_subject", "max_consumers")
# Sent only when set (None: the server's choice, and never counted as drift).
_OPTIONAL = (
    "description",
    "duplicate_window",
    "mirror",
    "subject_transform",
    "republish",
    "placement",
    "allow_direct",
    "mirror_direct",
    "discard_new_per_subject",
    "allow_msg_ttl",
    "subject_delete_marker_ttl",
    "allow_msg_counter",
    "allow_atomic",
)


class StreamSpec(BaseModel):
    """The configuration an application wants for one stream.

    Durations are :class:`~datetime.timedelta` (numbers are read as seconds), sizes are in
    bytes, and ``None`` means "no limit" (or, for ``duplicate_window``, the server's default of
    two minutes, capped at ``max_age``). Options that default to ``None`` are left to the
    server and never count as drift. ``extra`` carries any other ``StreamConfig`` field of the
    JetStream API, sent and compared as it is::

        StreamSpec(name="ORDERS", subjects=["orders.>"], max_age=timedelta(days=7),
                   max_bytes=1 << 30, duplicate_window=timedelta(minutes=5))

    ``subject_delete_marker_ttl`` needs message TTLs and roll-ups: setting it turns
    ``allow_msg_ttl`` and ``allow_rollup`` on (as the server does), and refuses
    ``deny_purge=True``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str
    subjects: tuple[str, ...] = ()
    description: str | None = None
    retention: Annotated[RetentionPolicy, _strict_unless_from_api(RetentionPolicy)] = (
        RetentionPolicy.LIMITS
    )
    storage: Annotated[StorageType, _strict_unless_from_api(StorageType)] = StorageType.FILE
    replicas: int = Field(1, ge=1, le=_MAX_REPLICAS)
    max_age: Nanos = None
    max_bytes: int | None = Field(None, ge=0)
    max_msgs: int | None = Field(None, ge=0)
    max_msg_size: int | None = Field(None, ge=0)
    max_msgs_per_subject: int | None = Field(None, ge=0)
    max_consumers: int | None = Field(None, ge=0)
    discard: Annotated[DiscardPolicy, _strict_unless_from_api(DiscardPolicy)] = DiscardPolicy.OLD
    #: With ``discard=NEW`` and ``max_msgs_per_subject``: refuse a message over a subject's
    #: limit instead of dropping the subject's oldest.
    discard_new_per_subject: bool | None = None
    duplicate_window: Nanos = None
    deny_delete: bool = False
    deny_purge: bool = False
    allow_rollup: bool = Field(
        False, validation_alias=AliasChoices("allow_rollup", "allow_rollup_hdrs")
    )
    compression: Annotated[Compression, _strict_unless_from_api(Compression)] = Compression.NONE
    #: Answer direct gets (``js.get_msg(..., direct=True)``) from any replica.
    allow_direct: bool | None = None
    #: A mirror answers direct gets for its origin (the server decides it from the origin's
    #: ``allow_direct``: not compared as drift).
    mirror_direct: bool | None = None
    mirror: StreamSource | None = None
    sources: tuple[StreamSource, ...] = ()
    subject_transform: SubjectTransform | None = None
    republish: Republish | None = None
    placement: Placement | None = None
    #: Per-message TTLs (``js.publish(..., ttl=)``, the ``Nats-TTL`` header); nats-server 2.11.
    allow_msg_ttl: bool | None = None
    #: Leave a delete marker (a message with ``Nats-Marker-Reason``) when a subject's last
    #: message goes by max_age or TTL, kept this long; nats-server 2.11.
    subject_delete_marker_ttl: Nanos = None
    #: Counter streams (``Nats-Incr``); nats-server 2.12.
    allow_msg_counter: bool | None = None
    #: Atomic batch publishing; nats-server 2.12.
    allow_atomic: bool | None = None
    metadata: dict[str, str] | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    # -- validation --------------------------------------------------------------------
    @model_validator(mode="before")
    @classmethod
    def _read(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            return data
        if _from_api(info):
            return _spec_fields(data)
        if data.get("subject_delete_marker_ttl"):
            data = dict(data)
            for implied in ("allow_msg_ttl", "allow_rollup"):
                if data.get(implied) is False or (
                    implied == "allow_rollup" and data.get("allow_rollup_hdrs") is False
                ):
                    raise ValueError(f"subject_delete_marker_ttl needs {implied}=True")
                data[implied] = True
            data.pop("allow_rollup_hdrs", None)
            if data.get("deny_purge"):
                raise ValueError("subject_delete_marker_ttl needs purges (deny_purge=False)")
        return data

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not value or not _STREAM_NAME.match(value) or len(value) > 255:
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

    @field_validator("max_age", "duplicate_window", "subject_delete_marker_ttl")
    @classmethod
    def _check_duration(cls, value: dt.timedelta | None) -> dt.timedelta | None:
        if value is not None and value < dt.timedelta(0):
            raise ValueError("a duration cannot be negative")
        return None if value == dt.timedelta(0) else value

    @model_validator(mode="after")
    def _check_combinations(self) -> StreamSpec:
        if self.mirror is not None and (self.subjects or self.sources):
            raise ValueError("a mirror has no subjects or sources of its own")
        ttl = self.subject_delete_marker_ttl
        if ttl is not None and ttl < dt.timedelta(seconds=1):
            raise ValueError("subject_delete_marker_ttl must be at least one second")
        if self.allow_msg_counter:
            # What nats-server refuses for a counter stream, refused before it is sent.
            if self.allow_msg_ttl or ttl is not None:
                raise ValueError("a counter stream (allow_msg_counter) cannot use message TTLs")
            if self.mirror is not None:
                raise ValueError("a mirror cannot be a counter stream (allow_msg_counter)")
            if self.retention is not RetentionPolicy.LIMITS:
                raise ValueError("a counter stream (allow_msg_counter) needs retention=limits")
            if self.discard is DiscardPolicy.NEW:
                raise ValueError("a counter stream (allow_msg_counter) cannot use discard=new")
        if self.allow_atomic and self.mirror is not None:
            raise ValueError("a mirror cannot take atomic batches (allow_atomic)")
        return self

    # -- the API form ------------------------------------------------------------------
    def to_api(self) -> dict[str, Any]:
        """The JetStream API ``StreamConfig`` JSON for this spec."""
        config: dict[str, Any] = {
            "name": self.name,
            "retention": self.retention.value,
            "storage": self.storage.value,
            "num_replicas": self.replicas,
            "max_age": to_nanos(self.max_age),
            "discard": self.discard.value,
            "deny_delete": self.deny_delete,
            "deny_purge": self.deny_purge,
            "allow_rollup_hdrs": self.allow_rollup,
            "compression": self.compression.value,
        }
        for limit in _LIMITS:
            value = getattr(self, limit)
            config[limit] = -1 if value is None else value
        if self.subjects:
            config["subjects"] = list(self.subjects)
        for name in _OPTIONAL:
            value = getattr(self, name)
            if value is None or value == "":
                continue
            if isinstance(value, dt.timedelta):
                value = to_nanos(value)
            elif isinstance(value, ApiModel):
                value = value.to_api()
            config[name] = value
        if self.sources:
            config["sources"] = [source.to_api() for source in self.sources]
        if self.metadata:
            config["metadata"] = dict(self.metadata)
        config.update(self.extra)
        return config

    @classmethod
    def from_api(cls, config: Mapping[str, Any]) -> StreamSpec:
        """The spec that describes a server-reported ``StreamConfig``: the fields this
        version does not know go to ``extra``, the server's ``_nats.*`` metadata is left out."""
        return cls.model_validate(config, context=API)


def _spec_fields(config: Mapping[str, Any]) -> dict[str, Any]:
    """A server's ``StreamConfig`` JSON as :class:`StreamSpec` fields (API context)."""
    api_names = {_SPEC_API_NAMES.get(name, name): name for name in StreamSpec.model_fields}
    api_names.pop("extra")
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in config.items():
        name = api_names.get(key)
        if name is None:
            extra[key] = value
        elif name in _LIMITS:
            fields[name] = None if value is None or value < 0 else value
        elif name == "metadata":
            kept = {k: v for k, v in (value or {}).items() if not k.startswith("_nats")}
            fields[name] = kept or None
        elif name == "description":
            fields[name] = value or None
        elif name == "subjects" or name == "sources":
            fields[name] = tuple(value or ())
        elif name == "compression":
            fields[name] = value or "none"
        else:
            fields[name] = value
    fields["extra"] = extra
    return fields


# ===================================================================== consumer configuration


class ConsumerConfig(ApiModel):
    """A consumer's configuration, with the API's field names (as nats-py and nats.go).

    Durations are timedeltas (numbers are seconds). Unset fields are left to the server.

    ::

        ConsumerConfig(durable_name="billing", filter_subject="orders.>", ack_wait=30,
                       max_deliver=5, backoff=[1, 10, 60])
    """

    name: str | None = None
    durable_name: str | None = None
    description: str | None = None
    deliver_policy: Annotated[DeliverPolicy, _strict_unless_from_api(DeliverPolicy)] = (
        DeliverPolicy.ALL
    )
    opt_start_seq: int | None = Field(None, ge=0)
    opt_start_time: Time = None
    ack_policy: Annotated[AckPolicy, _strict_unless_from_api(AckPolicy)] = AckPolicy.EXPLICIT
    ack_wait: Nanos = None
    max_deliver: int | None = None
    backoff: tuple[Annotated[dt.timedelta, BeforeValidator(_read_duration)], ...] | None = None
    filter_subject: str | None = None
    filter_subjects: tuple[str, ...] | None = None
    replay_policy: Annotated[ReplayPolicy, _strict_unless_from_api(ReplayPolicy)] = (
        ReplayPolicy.INSTANT
    )
    rate_limit_bps: int | None = None
    sample_freq: str | None = None
    max_waiting: int | None = None
    max_ack_pending: int | None = None
    headers_only: bool | None = None
    max_batch: int | None = None
    max_expires: Nanos = None
    max_bytes: int | None = None
    inactive_threshold: Nanos = None
    num_replicas: int | None = None
    mem_storage: bool | None = None
    metadata: dict[str, str] | None = None
    deliver_subject: str | None = None
    deliver_group: str | None = None
    flow_control: bool | None = None
    idle_heartbeat: Nanos = None
    #: Paused until then (nats-server 2.11): created paused, or set by ``js.pause_consumer``.
    pause_until: Time = None
    #: The consumer's priority groups (nats-server 2.11): pull requests name one.
    priority_groups: tuple[str, ...] | None = None
    #: How the clients pulling from a group share it (:class:`PriorityPolicy`).
    priority_policy: Annotated[
        PriorityPolicy | None, _strict_unless_from_api(PriorityPolicy, optional=True)
    ] = None
    #: With ``pinned_client``: how long the pinned client may go without a pull request
    #: before another takes over (the server's default: 2 minutes). The API's
    #: ``priority_timeout``.
    pinned_ttl: Nanos = Field(None, validation_alias=AliasChoices("pinned_ttl", "priority_timeout"))

    @field_validator("filter_subjects", mode="before")
    @classmethod
    def _one_filter(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("priority_groups", mode="before")
    @classmethod
    def _one_group(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("priority_groups")
    @classmethod
    def _check_groups(cls, value: tuple[str, ...] | None, info: ValidationInfo) -> Any:
        if value is not None and not _from_api(info):
            for group in value:
                check_group_name(group)
        return value

    def to_api(self) -> dict[str, Any]:
        data = super().to_api()
        if self.backoff:
            data["backoff"] = [to_nanos(step) for step in self.backoff]
        if "pinned_ttl" in data:
            data["priority_timeout"] = data.pop("pinned_ttl")
        return data


# ===================================================================== answers


class ApiError(ApiModel):
    """The ``error`` of a JetStream API reply."""

    code: int | None = None
    err_code: int | None = None
    description: str = ""


class SequenceInfo(ApiModel):
    """A consumer's position: the consumer and stream sequences, and when it moved last."""

    consumer_seq: int = 0
    stream_seq: int = 0
    last_active: Time = None


class PeerInfo(ApiModel):
    """One replica of a stream or consumer in a cluster."""

    name: str
    current: bool = False
    offline: bool = False
    active: Nanos = None
    lag: int = 0


class ClusterInfo(ApiModel):
    """Where a stream or consumer lives in a cluster: its leader and replicas."""

    name: str | None = None
    raft_group: str | None = None
    leader: str | None = None
    leader_since: Time = None
    replicas: tuple[PeerInfo, ...] = ()


class StreamSourceInfo(ApiModel):
    """How a mirror or source is doing: its lag and when it was last active."""

    name: str
    lag: int = 0
    active: Nanos = None
    filter_subject: str | None = None
    subject_transforms: tuple[SubjectTransform, ...] = ()
    external: ExternalStream | None = None
    error: ApiError | None = None


class StreamState(ApiModel):
    """How much a stream holds now."""

    messages: int = 0
    bytes: int = 0
    first_seq: int = 0
    first_ts: Time = None
    last_seq: int = 0
    last_ts: Time = None
    consumer_count: int = 0
    num_subjects: int | None = None
    num_deleted: int | None = None
    deleted: tuple[int, ...] | None = None
    #: Messages per subject, when asked for (``stream_info(name, subjects_filter=...)``).
    subjects: dict[str, int] | None = None


class StreamInfo(_RawKept):
    """A stream as the server reports it.

    ``config`` is the server's configuration read as a :class:`StreamSpec`; ``raw`` is the
    API's whole reply. After :meth:`JetStream.ensure_stream`, ``action`` says what was done:
    ``"created"``, ``"updated"`` or ``"unchanged"`` (``""`` otherwise).
    """

    config: StreamSpec
    created: Time = None
    state: StreamState = Field(default_factory=StreamState)
    cluster: ClusterInfo | None = None
    mirror: StreamSourceInfo | None = None
    sources: tuple[StreamSourceInfo, ...] = ()
    ts: Time = None
    action: str = Field("", exclude=True)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def duplicate_window(self) -> dt.timedelta | None:
        return self.config.duplicate_window

    def with_action(self, action: str) -> StreamInfo:
        """This information, saying what :meth:`JetStream.ensure_stream` did."""
        info = self.model_copy(update={"action": action})
        info._raw = self._raw
        return info


class PriorityGroupState(ApiModel):
    """A priority group of a consumer as the server reports it: the pinned client's id
    and since when (pinned_client policy)."""

    group: str
    pinned_client_id: str | None = None
    pinned_ts: Time = None


class ConsumerInfo(_RawKept):
    """A consumer as the server reports it (``raw`` is the API's whole reply).

    The configuration is ``config`` (a :class:`ConsumerConfig`); the flat attributes
    ``durable``, ``ack_wait``, ``delivered_stream_seq``, ``ack_floor_stream_seq`` ... read
    from it and from ``delivered`` / ``ack_floor``.
    """

    stream_name: str = ""
    name: str = ""
    created: Time = None
    config: ConsumerConfig = Field(default_factory=ConsumerConfig)
    delivered: SequenceInfo = Field(default_factory=SequenceInfo)
    ack_floor: SequenceInfo = Field(default_factory=SequenceInfo)
    num_ack_pending: int = 0
    num_redelivered: int = 0
    num_waiting: int = 0
    num_pending: int = 0
    cluster: ClusterInfo | None = None
    push_bound: bool = False
    #: Paused (``js.pause_consumer``) and for how much longer; ``config.pause_until`` says
    #: until when.
    paused: bool = False
    pause_remaining: Nanos = None
    ts: Time = None
    #: The state of each priority group (the pinned client of a pinned_client consumer).
    priority_groups: tuple[PriorityGroupState, ...] = ()

    @property
    def stream(self) -> str:
        return self.stream_name

    @property
    def durable(self) -> str | None:
        return self.config.durable_name

    @property
    def filter_subject(self) -> str | None:
        return self.config.filter_subject

    @property
    def ack_wait(self) -> dt.timedelta | None:
        return self.config.ack_wait

    @property
    def max_deliver(self) -> int:
        return -1 if self.config.max_deliver is None else self.config.max_deliver

    @property
    def max_ack_pending(self) -> int:
        return -1 if self.config.max_ack_pending is None else self.config.max_ack_pending

    @property
    def backoff(self) -> tuple[dt.timedelta, ...]:
        return self.config.backoff or ()

    @property
    def delivered_stream_seq(self) -> int:
        return self.delivered.stream_seq

    @property
    def delivered_consumer_seq(self) -> int:
        return self.delivered.consumer_seq

    @property
    def ack_floor_stream_seq(self) -> int:
        return self.ack_floor.stream_seq

    @property
    def ack_floor_consumer_seq(self) -> int:
        return self.ack_floor.consumer_seq

    @property
    def pause_until(self) -> dt.datetime | None:
        return self.config.pause_until

    def pinned_client(self, group: str) -> str | None:
        """The pin id of the client pinned in ``group``, None when nobody is."""
        for state in self.priority_groups:
            if state.group == group:
                return state.pinned_client_id or None
        return None


class ConsumerReset(ConsumerInfo):
    """What ``js.reset_consumer`` answers: the consumer after the reset, and ``reset_seq``,
    the stream sequence it delivers from now on."""

    reset_seq: int = 0


class ConsumerPause(ApiModel):
    """What ``js.pause_consumer`` and ``js.resume_consumer`` answer: whether the consumer is
    paused, until when (None: not paused), and for how much longer."""

    paused: bool = False
    pause_until: Time = None
    pause_remaining: Nanos = None


class PubAck(ApiModel):
    """The stream's receipt for a message: where it is stored.

    ``duplicate`` is True when the stream already had a message with this ``Nats-Msg-Id``
    (an earlier attempt got through): ``seq`` is then that message's sequence. The ack of a
    batch (``js.publish_batch``) is its last message's, with ``batch`` and ``count``; an
    increment's (``js.increment``) has the counter's new value, ``val``.
    """

    stream: str
    seq: int
    duplicate: bool = False
    domain: str | None = None
    #: The batch id and how many messages it stored (``js.publish_batch``).
    batch: str | None = None
    count: int | None = None
    #: A counter's value after the increment, as the server writes it (``js.increment``).
    val: str | None = None

    @property
    def batch_id(self) -> str | None:
        return self.batch

    @property
    def batch_size(self) -> int | None:
        return self.count

    @property
    def value(self) -> int | None:
        """The counter's value after the increment, as an int (None for other acks)."""
        return None if self.val is None else int(self.val)


class AccountLimits(ApiModel):
    max_memory: int = -1
    max_storage: int = -1
    max_streams: int = -1
    max_consumers: int = -1
    max_ack_pending: int = -1


class ApiStats(ApiModel):
    """The JetStream API as the account sees it: its ``level`` says which features the
    server supports (nats-server 2.11 is level 1, 2.12 level 2, ...)."""

    level: int = 0
    total: int = 0
    errors: int = 0


class AccountInfo(ApiModel):
    """The account's JetStream usage and limits, and the server's API level."""

    memory: int = 0
    storage: int = 0
    streams: int = 0
    consumers: int = 0
    limits: AccountLimits = Field(default_factory=AccountLimits)
    api: ApiStats = Field(default_factory=ApiStats)
    domain: str | None = None


# ===================================================================== stored messages

# Headers a direct get adds to describe the message: not the message's own.
DIRECT_GET_HEADERS = frozenset(
    {
        "Nats-Stream",
        "Nats-Subject",
        "Nats-Sequence",
        "Nats-Time-Stamp",
        "Nats-Num-Pending",
        "Nats-Last-Sequence",
    }
)


class RawStreamMsg(BaseModel):
    """A message as a stream stores it (``js.get_msg``, ``js.get_last_msg``).

    ``headers`` are the message's own (``None`` when it has none), the same whether it was
    read through the stream's API or with a direct get. Read the payload with
    :meth:`text`, :meth:`json` or :meth:`parse`, as a :class:`~syncmsg.Msg`.
    """

    model_config = ConfigDict(frozen=True)

    stream: str
    subject: str
    seq: int
    data: bytes = b""
    headers: dict[str, str] | None = None
    time: dt.datetime | None = None

    @property
    def sequence(self) -> int:
        return self.seq

    @property
    def header(self) -> dict[str, str] | None:
        """``headers`` under nats-py's other name."""
        return self.headers

    def text(self, encoding: str = "utf-8") -> str:
        return self.data.decode(encoding)

    def json(self) -> Any:  # type: ignore[override]
        """The payload parsed as JSON (raises :class:`~syncmsg.PayloadError`)."""
        return decode_json(self.data, self.subject)

    def parse(self, model: type[ModelT]) -> ModelT:
        """The payload validated into a pydantic ``model`` (raises PayloadError)."""
        return decode_model(self.data, model, self.subject)

    @classmethod
    def from_api(cls, stream: str, message: Mapping[str, Any]) -> RawStreamMsg:
        """From a ``STREAM.MSG.GET`` reply's ``message`` (base64 headers and data)."""
        raw_headers = message.get("hdrs")
        headers = parse_header_block(base64.b64decode(raw_headers)) if raw_headers else None
        return cls(
            stream=stream,
            subject=str(message.get("subject", "")),
            seq=int(message.get("seq", 0)),
            data=base64.b64decode(message.get("data") or b""),
            headers=headers or None,
            time=parse_time(message.get("time")),
        )

    @classmethod
    def from_direct(cls, data: bytes, headers: Mapping[str, str]) -> RawStreamMsg:
        """From a direct get's reply: the payload, and ``Nats-*`` headers that say where it
        is stored (left out of ``headers``)."""
        own = {k: v for k, v in headers.items() if k not in DIRECT_GET_HEADERS}
        return cls(
            stream=headers.get("Nats-Stream", ""),
            subject=headers.get("Nats-Subject", ""),
            seq=int(headers.get("Nats-Sequence", 0)),
            data=data,
            headers=own or None,
            time=parse_time(headers.get("Nats-Time-Stamp")),
        )


def parse_header_block(raw: bytes) -> dict[str, str]:
    """Parse a ``NATS/1.0`` header block into a dict (the last value of a key wins)."""
    headers: dict[str, str] = {}
    lines = raw.decode("utf-8", "replace").split("\r\n")
    for line in lines[1:]:
        if not line:
            continue
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip()] = value.strip()
    return headers


def iter_items(headers: Mapping[Any, Any] | None) -> Iterator[tuple[str, str]]:
    """The items of a nats-py header mapping, keys as plain strings (nats-py may use its
    ``Header`` enum for some keys)."""
    for key, value in (headers or {}).items():
        yield str(getattr(key, "value", key)), str(value)

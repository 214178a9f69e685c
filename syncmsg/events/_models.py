"""Typed events, wire-compatible with the TypeScript services' zod schemas.

Threading: pure, immutable values and functions; use them from any thread.

Python attributes are snake_case; the JSON on the wire is camelCase, exactly the field names
of the zod schemas. :meth:`BaseMessage.to_wire` writes what ``JSON.stringify`` would write
for the same event, and :meth:`BaseMessage.from_wire` accepts what the zod schema accepts:

* ``id``, ``tenantId``, ``correlationId``, ``agentId``, ``workflowId``, ``taskId`` and
  ``userId`` are UUIDs in the 8-4-4-4-12 hex form, any version, any letter case (zod 3's
  ``z.string().uuid()``); they are written back in lower case.
* ``timestamp`` is written like JavaScript's ``Date.prototype.toISOString()``:
  ``2026-01-02T03:04:05.678Z`` (UTC, milliseconds, ``Z``). Reading accepts what zod 3's
  ``z.string().datetime()`` accepts by default: UTC with a ``Z`` suffix and any number of
  fractional digits, no offset. Sub-millisecond digits are truncated, as a JavaScript
  ``Date`` does, so every timestamp held by a model has millisecond precision.
* Optional fields (``correlationId``, ``stepId``, ``userId``) are left out when None, as
  ``JSON.stringify`` leaves out ``undefined``; a ``null`` on the wire is refused, as zod's
  ``.optional()`` refuses it.
* Unknown fields (from newer peers) are kept and written back when the event is
  re-published. Unknown *enum values* of ``type`` are refused, as the zod enum refuses them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from enum import Enum
from functools import cache
from typing import Annotated, Any, ClassVar, TypeAlias, TypeVar
from uuid import UUID, uuid4

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    Strict,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_serializer,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticSerializationError

from syncmsg.events._errors import EventValidationError

__all__ = [
    "EVENT_MODELS",
    "AgentEvent",
    "AgentEventType",
    "AuditEvent",
    "AuditEventType",
    "BaseMessage",
    "Event",
    "EventType",
    "TaskEvent",
    "TaskEventType",
    "WorkflowEvent",
    "WorkflowEventType",
    "event_family",
    "format_timestamp",
    "parse_timestamp",
    "utc_now",
]

MessageT = TypeVar("MessageT", bound="BaseMessage")

# Validation-context keys (see BaseMessage.from_wire).
_CTX_WIRE = "syncmsg.events.wire"
_CTX_LENIENT_TIME = "syncmsg.events.lenient_time"

# --------------------------------------------------------------------------- enums


class _EventTypeEnum(str, Enum):
    """Base of the event-type enums: ``str(member)`` is its wire value."""

    def __str__(self) -> str:
        return str(self.value)


class AgentEventType(_EventTypeEnum):
    """``agentEventSchema.type``."""

    STARTED = "agent.started"
    COMPLETED = "agent.completed"
    FAILED = "agent.failed"
    PROGRESS = "agent.progress"
    BLOCKED = "agent.blocked"


class WorkflowEventType(_EventTypeEnum):
    """``workflowEventSchema.type``."""

    STARTED = "workflow.started"
    COMPLETED = "workflow.completed"
    FAILED = "workflow.failed"
    STEP_STARTED = "workflow.step.started"
    STEP_COMPLETED = "workflow.step.completed"


class TaskEventType(_EventTypeEnum):
    """``taskEventSchema.type``."""

    CREATED = "task.created"
    ASSIGNED = "task.assigned"
    STARTED = "task.started"
    COMPLETED = "task.completed"
    FAILED = "task.failed"
    CANCELLED = "task.cancelled"


class AuditEventType(_EventTypeEnum):
    """``auditEventSchema.type``."""

    ACCESS = "audit.access"
    MUTATION = "audit.mutation"
    SECURITY = "audit.security"
    COMPLIANCE = "audit.compliance"


EventType: TypeAlias = AgentEventType | WorkflowEventType | TaskEventType | AuditEventType

# --------------------------------------------------------------------------- timestamps

# zod 3 z.string().datetime() (no options): YYYY-MM-DDTHH:MM:SS[.fraction]Z, nothing else.
# Calendar validity (month lengths, leap years, hour < 24, second < 60) is checked by
# datetime() below, as zod >= 3.23 checks it in its regular expression.
_STRICT_TS = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?Z"
)
# Lenient: RFC 3339 / ISO 8601 with an offset, 'z', 't' or a space separator.
_LENIENT_TS = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:[Zz]|([+-])([0-9]{2})(?::?([0-9]{2}))?)"
)


def utc_now() -> datetime:
    """The current time in UTC, truncated to milliseconds (what ``new Date()`` holds)."""
    return _truncate_ms(datetime.now(timezone.utc))


def _truncate_ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


def format_timestamp(value: datetime) -> str:
    """Format ``value`` exactly as JavaScript's ``toISOString()``: ``2026-01-02T03:04:05.678Z``.

    ``value`` must be timezone-aware; it is converted to UTC and sub-millisecond digits are
    truncated (not rounded), as a JavaScript ``Date`` holds whole milliseconds.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware (naive datetimes are ambiguous)")
    try:
        v = value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("timestamp is out of range once converted to UTC") from None
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d}T"
        f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond // 1000:03d}Z"
    )


def parse_timestamp(text: str, *, strict: bool = True) -> datetime:
    """Parse a wire timestamp into an aware UTC datetime with millisecond precision.

    ``strict=True`` accepts exactly what zod 3's ``z.string().datetime()`` accepts: UTC with
    a ``Z`` suffix and any number of fractional-second digits, no offset. ``strict=False``
    also accepts ``+HH:MM`` / ``+HHMM`` / ``+HH`` offsets, a lower-case ``z`` or ``t`` and a
    space separator, and converts to UTC. Either way, a datetime Python cannot represent
    (year 0000, a leap second ``:60``) is refused. Raises ValueError.
    """
    if not isinstance(text, str):
        raise ValueError(f"timestamp must be a string, not {type(text).__name__}")
    match = (_STRICT_TS if strict else _LENIENT_TS).fullmatch(text)
    if match is None:
        if strict:
            raise ValueError(
                "timestamp must be an ISO 8601 UTC datetime like 2026-01-02T03:04:05.678Z "
                "(zod datetime(): 'Z' suffix, no offset)"
            )
        raise ValueError("timestamp must be an ISO 8601 / RFC 3339 datetime with a zone")
    groups = match.groups()
    year, month, day, hour, minute, second = (int(g) for g in groups[:6])
    fraction = groups[6] or ""
    millis = int((fraction + "000")[:3])
    tz = timezone.utc
    if not strict and groups[7]:
        off_h = int(groups[8])
        off_m = int(groups[9] or "0")
        if off_h > 23 or off_m > 59:
            raise ValueError("timestamp has an out-of-range UTC offset")
        delta = timedelta(hours=off_h, minutes=off_m)
        tz = timezone(-delta if groups[7] == "-" else delta)
    try:
        value = datetime(year, month, day, hour, minute, second, millis * 1000, tzinfo=tz)
        return value.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise ValueError("timestamp is not a valid date and time") from None


# --------------------------------------------------------------------------- field types

# zod 3 (>= 3.22.3) z.string().uuid(): 8-4-4-4-12 hex digits, case-insensitive, any version.
_UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def _to_uuid(value: object) -> UUID:
    if isinstance(value, UUID):
        return value
    if isinstance(value, str) and _UUID_RE.fullmatch(value):
        return UUID(value)
    raise ValueError("must be a UUID string like 123e4567-e89b-12d3-a456-426614174000")


def _check_json_object(value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
    # Data parsed from the wire is JSON already; only values built in Python need the walk.
    if isinstance(info.context, Mapping) and info.context.get(_CTX_WIRE):
        return value
    _check_json_value(value, 0)
    return value


def _check_json_value(value: object, depth: int) -> None:
    if depth > 500:
        raise ValueError("JSON value is nested too deeply")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("NaN and Infinity are not JSON (JSON.stringify would write null)")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"JSON object keys must be strings, got {type(key).__name__}")
            _check_json_value(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_json_value(item, depth + 1)


WireUUID = Annotated[UUID, BeforeValidator(_to_uuid)]
"""A UUID, given as a :class:`uuid.UUID` or an 8-4-4-4-12 hex string (zod ``uuid()``)."""

WireStr = Annotated[str, Strict()]
"""A string (zod ``z.string()``): any text, never coerced from another type."""

JsonObject = Annotated[dict[str, Any], AfterValidator(_check_json_object)]
"""A JSON object (zod ``z.record(z.unknown())``); floats must be finite."""

# --------------------------------------------------------------------------- models


class BaseMessage(BaseModel):
    """``baseMessageSchema``: the fields every event carries.

    ``id`` defaults to a new uuid4 and ``timestamp`` to now (UTC, milliseconds) when an event
    is built in Python; on the wire both are required. Instances are immutable: derive a
    changed event with ``model_copy(update=...)`` (which, as in pydantic, skips validation).
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="allow",
        frozen=True,
        ser_json_inf_nan="null",
    )

    family: ClassVar[str] = ""
    """The subject prefix and type prefix of the family (``agent``, ``workflow``...)."""
    body_field: ClassVar[str] = ""
    """The JSON-object field that holds the event data (``payload``, or ``metadata``)."""

    id: WireUUID = Field(default_factory=uuid4)
    timestamp: datetime = Field(default_factory=utc_now)
    source: WireStr
    # tenantId before correlationId: the key order of the TypeScript publisher's
    # createBaseMessage(), so that to_wire() is byte-identical to its JSON.stringify output.
    tenant_id: WireUUID
    correlation_id: WireUUID | None = None

    @field_validator("timestamp", mode="before")
    @classmethod
    def _validate_timestamp(cls, value: object, info: ValidationInfo) -> datetime:
        if isinstance(value, datetime):
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError("timestamp must be timezone-aware (naive datetimes are ambiguous)")
            return _truncate_ms(value.astimezone(timezone.utc))
        if isinstance(value, str):
            lenient = isinstance(info.context, Mapping) and bool(
                info.context.get(_CTX_LENIENT_TIME)
            )
            return parse_timestamp(value, strict=not lenient)
        raise ValueError("timestamp must be a datetime or an ISO 8601 UTC string")

    @field_serializer("timestamp", when_used="json")
    def _serialize_timestamp(self, value: datetime) -> str:
        return format_timestamp(value)

    @model_serializer(mode="wrap")
    def _drop_undefined(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name, alias in _optional_fields(type(self)):
            if getattr(self, name) is None:
                data.pop(alias, None)
                data.pop(name, None)
        return data

    # ------------------------------------------------------------------ wire

    def to_wire_dict(self) -> dict[str, Any]:
        """The JSON object sent on the wire (camelCase keys, JSON-compatible values)."""
        try:
            return self.model_dump(mode="json", by_alias=True)
        except PydanticSerializationError as exc:
            raise EventValidationError(
                f"{type(self).__name__} cannot be written as JSON: {exc}"
            ) from None

    def to_wire(self) -> bytes:
        """Compact UTF-8 JSON, as ``JSON.stringify`` writes this event."""
        try:
            text = json.dumps(
                self.to_wire_dict(), separators=(",", ":"), ensure_ascii=False, allow_nan=False
            )
        except (TypeError, ValueError) as exc:
            raise EventValidationError(
                f"{type(self).__name__} cannot be written as JSON: {exc}"
            ) from None
        return text.encode()

    @classmethod
    def from_wire(
        cls: type[MessageT], data: bytes | bytearray | memoryview | str, *, strict: bool = True
    ) -> MessageT:
        """Parse and validate one event from its wire bytes.

        Accepts what the zod schema accepts (see the module docstring); ``strict=False`` also
        accepts timestamps with a UTC offset and ``null`` for optional fields. Raises
        :class:`EventValidationError` with a message naming every bad field.
        """
        return cls.from_wire_dict(decode_json_object(data), strict=strict)

    @classmethod
    def from_wire_dict(
        cls: type[MessageT], obj: Mapping[str, Any], *, strict: bool = True
    ) -> MessageT:
        """Validate an already-parsed JSON object as :meth:`from_wire` does."""
        if not isinstance(obj, Mapping):
            raise EventValidationError(
                f"a {cls.__name__} must be a JSON object, not {type(obj).__name__}"
            )
        data = dict(obj)
        problems: list[dict[str, Any]] = []
        shadowed: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            alias = field.alias or name
            if alias != name and name in data:
                # A snake_case key is not this field on the wire; keep it as an unknown field.
                shadowed[name] = data.pop(name)
            if alias not in data:
                if field.default is not None:  # required by the zod schema
                    problems.append({"loc": (alias,), "msg": "Field required", "type": "missing"})
            elif data[alias] is None and field.default is None:
                if strict:
                    problems.append(
                        {
                            "loc": (alias,),
                            "msg": "null is not allowed; leave the field out (zod .optional())",
                            "type": "null_optional",
                        }
                    )
                else:
                    del data[alias]
        context = {_CTX_WIRE: True, _CTX_LENIENT_TIME: not strict}
        try:
            event = cls.model_validate(data, context=context)
        except ValidationError as exc:
            reported = {p["loc"] for p in problems}
            for err in exc.errors(include_url=False, include_input=False, include_context=False):
                if tuple(err["loc"]) not in reported:
                    problems.append(
                        {"loc": tuple(err["loc"]), "msg": err["msg"], "type": err["type"]}
                    )
        else:
            if not problems:
                if shadowed and event.__pydantic_extra__ is not None:
                    event.__pydantic_extra__.update(shadowed)
                return event
        raise EventValidationError(_describe(cls.__name__, problems), errors=problems)


def _describe(model: str, problems: list[dict[str, Any]]) -> str:
    lines = [f"invalid {model}:"]
    for problem in problems:
        loc = ".".join(str(part) for part in problem["loc"]) or "(event)"
        lines.append(f"  {loc}: {problem['msg']}")
    return "\n".join(lines)


@cache
def _optional_fields(cls: type[BaseMessage]) -> tuple[tuple[str, str], ...]:
    """(name, alias) of the fields that zod marks ``.optional()`` (default None here)."""
    return tuple(
        (name, field.alias or name)
        for name, field in cls.model_fields.items()
        if field.default is None
    )


def decode_json_object(data: bytes | bytearray | memoryview | str) -> dict[str, Any]:
    """Parse wire bytes as ``JSON.parse`` would, and require a JSON object.

    The bytes must be UTF-8; ``NaN``/``Infinity`` and a byte-order mark are refused, as
    ``JSON.parse`` refuses them. Raises :class:`EventValidationError`.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise EventValidationError("event is not valid UTF-8") from None
    elif isinstance(data, str):
        text = data
    else:
        raise EventValidationError(f"event data must be bytes or str, not {type(data).__name__}")
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise EventValidationError(f"event is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise EventValidationError(f"event must be a JSON object, not {type(obj).__name__}")
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class AgentEvent(BaseMessage):
    """``agentEventSchema``; published on ``agent.{agentType}.{type}``."""

    family: ClassVar[str] = "agent"
    body_field: ClassVar[str] = "payload"

    type: AgentEventType
    agent_id: WireUUID
    agent_type: WireStr
    payload: JsonObject


class WorkflowEvent(BaseMessage):
    """``workflowEventSchema``; published on ``workflow.{type}``."""

    family: ClassVar[str] = "workflow"
    body_field: ClassVar[str] = "payload"

    type: WorkflowEventType
    workflow_id: WireUUID
    step_id: WireStr | None = None
    payload: JsonObject


class TaskEvent(BaseMessage):
    """``taskEventSchema``; published on ``task.{taskType}.{type}``."""

    family: ClassVar[str] = "task"
    body_field: ClassVar[str] = "payload"

    type: TaskEventType
    task_id: WireUUID
    task_type: WireStr
    payload: JsonObject


class AuditEvent(BaseMessage):
    """``auditEventSchema``; published on ``audit.{type}``. Its data field is ``metadata``."""

    family: ClassVar[str] = "audit"
    body_field: ClassVar[str] = "metadata"

    type: AuditEventType
    action: WireStr
    resource_type: WireStr
    resource_id: WireStr
    user_id: WireUUID | None = None
    metadata: JsonObject


Event: TypeAlias = AgentEvent | WorkflowEvent | TaskEvent | AuditEvent
"""Any of the four event families."""

EVENT_MODELS: Mapping[str, type[Event]] = {
    "agent": AgentEvent,
    "workflow": WorkflowEvent,
    "task": TaskEvent,
    "audit": AuditEvent,
}
"""The model of each family, by the prefix of its ``type`` (and of its subjects)."""


def event_family(event_type: str) -> type[Event]:
    """The model class for an event ``type`` (or subject), chosen by its first token.

    ``event_family("agent.started") is AgentEvent``; ``event_family("task.x.task.created")``
    is :class:`TaskEvent`. Raises :class:`EventValidationError` for an unknown prefix.
    """
    if not isinstance(event_type, str):
        raise EventValidationError(f"event type must be a string, not {type(event_type).__name__}")
    prefix = str(event_type).split(".", 1)[0]
    model = EVENT_MODELS.get(prefix)
    if model is None:
        raise EventValidationError(
            f"unknown event family {prefix!r} in {str(event_type)!r}: "
            f"expected one of {', '.join(EVENT_MODELS)}"
        )
    return model

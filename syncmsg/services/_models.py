"""The ADR-32 wire types: what ``$SRV.PING``, ``$SRV.INFO`` and ``$SRV.STATS`` answer.

Threading: immutable pydantic values and pure functions, used from any thread (a service
builds them on its discovery worker thread, the discovery client parses them on the
caller's thread).

The same models serve both directions. A syncmsg service answers with
``model.to_wire()``, whose JSON validates against the schemas published with the ADR
(``https://nats.io/schemas/micro/v1/*.json``), and which every other implementation reads:
every field is always present (nats-py's ``from_dict`` indexes ``metadata``,
``last_error`` and ``data`` without a default), ``metadata`` is an object, never null, and
``started`` carries microseconds and a ``Z``. Answers from other implementations are read
leniently: a ``null`` metadata or description (nats-py sends them) reads as empty, unknown
fields are ignored, and nanosecond timestamps (nats.go) are accepted.

Durations (``processing_time``, ``average_processing_time``) are integer nanoseconds, as
the ADR says; :attr:`EndpointStats.average` gives the average as a ``timedelta``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, field_serializer, field_validator

__all__ = [
    "API_PREFIX",
    "DEFAULT_QUEUE_GROUP",
    "INFO_RESPONSE_TYPE",
    "NAME_PATTERN",
    "PING_RESPONSE_TYPE",
    "SEMVER_PATTERN",
    "STATS_RESPONSE_TYPE",
    "VERBS",
    "EndpointInfo",
    "EndpointStats",
    "ServiceInfo",
    "ServicePing",
    "ServiceStats",
    "control_subject",
]

#: The root of every discovery subject: ``$SRV.PING``, ``$SRV.INFO.billing``, ...
API_PREFIX = "$SRV"
#: The queue group of every endpoint unless the service, group or endpoint says otherwise,
#: so that instances of a service share its requests.
DEFAULT_QUEUE_GROUP = "q"
PING_RESPONSE_TYPE = "io.nats.micro.v1.ping_response"
INFO_RESPONSE_TYPE = "io.nats.micro.v1.info_response"
STATS_RESPONSE_TYPE = "io.nats.micro.v1.stats_response"
#: The discovery verbs a service answers.
VERBS = ("PING", "INFO", "STATS")

#: Service and endpoint names: what the ADR allows (and the schemas check).
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
#: The official semantic-versioning expression (semver.org), as the ADR asks.
SEMVER_PATTERN = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
# RFC 3339 with more than microseconds (nats.go writes nanoseconds): cut to microseconds.
_EXTRA_DIGITS = re.compile(r"(\.\d{6})\d+")


def control_subject(verb: str, name: str | None = None, service_id: str | None = None) -> str:
    """``$SRV.<verb>``, ``$SRV.<verb>.<name>`` or ``$SRV.<verb>.<name>.<id>``."""
    if name is None:
        return f"{API_PREFIX}.{verb}"
    if service_id is None:
        return f"{API_PREFIX}.{verb}.{name}"
    return f"{API_PREFIX}.{verb}.{name}.{service_id}"


class _Wire(BaseModel):
    """A discovery response: immutable, unknown fields ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    def to_wire(self) -> bytes:
        """The JSON a service sends (every field present; see the module docstring)."""
        return json.dumps(self.model_dump(mode="json"), separators=(",", ":")).encode()


def _no_null_metadata(value: Any) -> Any:
    return {} if value is None else value


class _Identity(_Wire):
    """The fields every response carries."""

    type: str
    name: str
    id: str
    version: str
    metadata: dict[str, str] = {}

    _metadata = field_validator("metadata", mode="before")(_no_null_metadata)


class ServicePing(_Identity):
    """The answer to ``$SRV.PING``: who is there."""

    type: str = PING_RESPONSE_TYPE


class EndpointInfo(_Wire):
    """One endpoint in :class:`ServiceInfo`. ``queue_group`` is ``""`` for an endpoint
    subscribed without one."""

    name: str
    subject: str
    queue_group: str = ""
    metadata: dict[str, str] = {}

    _metadata = field_validator("metadata", mode="before")(_no_null_metadata)

    @field_validator("queue_group", mode="before")
    @classmethod
    def _no_null_queue(cls, value: Any) -> Any:
        return "" if value is None else value


class ServiceInfo(_Identity):
    """The answer to ``$SRV.INFO``: the service and every endpoint it has now."""

    type: str = INFO_RESPONSE_TYPE
    description: str = ""
    endpoints: list[EndpointInfo] = []

    @field_validator("description", mode="before")
    @classmethod
    def _no_null_description(cls, value: Any) -> Any:
        return "" if value is None else value


class EndpointStats(_Wire):
    """One endpoint's counters in :class:`ServiceStats`.

    ``processing_time`` is the total time spent in the handler and
    ``average_processing_time`` that divided by ``num_requests`` (truncated; 0 before the
    first request), both in nanoseconds. ``last_error`` is ``"<code>:<description>"`` of the
    latest error reply, or ``""``. ``data`` is what the service's ``stats_handler`` returned.
    """

    name: str
    subject: str
    queue_group: str = ""
    num_requests: int = 0
    num_errors: int = 0
    last_error: str = ""
    processing_time: int = 0
    average_processing_time: int = 0
    data: Any = None

    @field_validator("last_error", "queue_group", mode="before")
    @classmethod
    def _no_null_text(cls, value: Any) -> Any:
        return "" if value is None else value

    @property
    def average(self) -> dt.timedelta:
        """``average_processing_time`` as a timedelta."""
        return dt.timedelta(microseconds=self.average_processing_time / 1000)


class ServiceStats(_Identity):
    """The answer to ``$SRV.STATS``: when the service started (or was reset) and each
    endpoint's counters."""

    type: str = STATS_RESPONSE_TYPE
    started: dt.datetime
    endpoints: list[EndpointStats] = []

    @field_validator("started", mode="before")
    @classmethod
    def _read_started(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = _EXTRA_DIGITS.sub(r"\1", value)
        return value

    @field_validator("started")
    @classmethod
    def _in_utc(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:  # the ADR says UTC
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)

    @field_serializer("started")
    def _write_started(self, value: dt.datetime) -> str:
        # Always six fraction digits and a Z: nats-py parses "%Y-%m-%dT%H:%M:%S.%fZ".
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

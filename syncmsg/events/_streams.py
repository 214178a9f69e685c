"""The JetStream streams of the typed events (the TypeScript services'), as plain data.

Threading: immutable values and pure functions; use them from any thread.

* ``AGENT_EVENTS``: ``agent.>`` and ``workflow.>``; 7 days; 1 GiB
* ``TASK_EVENTS``: ``task.>``; 30 days; 5 GiB
* ``AUDIT_EVENTS``: ``audit.>``; 365 days; 10 GiB
* ``EVENT_DEAD_LETTERS`` (syncmsg's addition, not on the TypeScript side): ``events.dlq.>``;
  30 days; 1 GiB

All use file storage and limits retention. Replicas default to 1, as on the TypeScript side;
pass ``replicas=3`` on a cluster.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from syncmsg._errors import ConfigurationError
from syncmsg.events._models import Event

__all__ = [
    "AGENT_EVENTS",
    "AUDIT_EVENTS",
    "DEAD_LETTER_PREFIX",
    "EVENT_DEAD_LETTERS",
    "EVENT_STREAMS",
    "TASK_EVENTS",
    "EventStreamDef",
    "event_stream_specs",
    "stream_for",
]

_GIB = 1024**3
_MAX_REPLICAS = 5  # JetStream's limit


@dataclass(frozen=True)
class EventStreamDef:
    """One stream's configuration, in the TypeScript services' terms.

    :meth:`to_api_config` gives the JetStream API's ``StreamConfig`` JSON (``max_age`` in
    nanoseconds, ``num_replicas``), which is what nats.js sends for the TypeScript services'
    objects.
    """

    name: str
    subjects: tuple[str, ...]
    max_age: timedelta
    max_bytes: int
    storage: Literal["file", "memory"] = "file"
    retention: Literal["limits", "interest", "workqueue"] = "limits"
    replicas: int = 1
    description: str = ""

    def __post_init__(self) -> None:
        _check_replicas(self.replicas)

    def with_replicas(self, replicas: int) -> EventStreamDef:
        """A copy with ``replicas`` (1 to 5)."""
        return dataclasses.replace(self, replicas=replicas)

    @property
    def max_age_ns(self) -> int:
        """``max_age`` in whole nanoseconds, as the JetStream API wants it."""
        return (
            self.max_age.days * 86_400_000_000_000
            + self.max_age.seconds * 1_000_000_000
            + self.max_age.microseconds * 1_000
        )

    def to_api_config(self) -> dict[str, Any]:
        """The JetStream API ``StreamConfig`` fields for this stream."""
        config: dict[str, Any] = {
            "name": self.name,
            "subjects": list(self.subjects),
            "retention": self.retention,
            "max_age": self.max_age_ns,
            "max_bytes": self.max_bytes,
            "storage": self.storage,
            "num_replicas": self.replicas,
        }
        if self.description:
            config["description"] = self.description
        return config


def _check_replicas(replicas: object) -> None:
    if (
        not isinstance(replicas, int)
        or isinstance(replicas, bool)
        or not 1 <= replicas <= _MAX_REPLICAS
    ):
        raise ConfigurationError(
            f"replicas must be an int from 1 to {_MAX_REPLICAS}, got {replicas!r}"
        )


AGENT_EVENTS = EventStreamDef(
    name="AGENT_EVENTS",
    subjects=("agent.>", "workflow.>"),
    max_age=timedelta(days=7),
    max_bytes=1 * _GIB,
    description="Agent and workflow events",
)
TASK_EVENTS = EventStreamDef(
    name="TASK_EVENTS",
    subjects=("task.>",),
    max_age=timedelta(days=30),
    max_bytes=5 * _GIB,
    description="Task events",
)
AUDIT_EVENTS = EventStreamDef(
    name="AUDIT_EVENTS",
    subjects=("audit.>",),
    max_age=timedelta(days=365),
    max_bytes=10 * _GIB,
    description="Audit events",
)

EVENT_STREAMS: tuple[EventStreamDef, ...] = (AGENT_EVENTS, TASK_EVENTS, AUDIT_EVENTS)
"""The TypeScript services' three streams, with 1 replica."""

DEAD_LETTER_PREFIX = "events.dlq"
"""Dead letters of the event consumers go to ``events.dlq.<consumer name>``."""

EVENT_DEAD_LETTERS = EventStreamDef(
    name="EVENT_DEAD_LETTERS",
    subjects=(f"{DEAD_LETTER_PREFIX}.>",),
    max_age=timedelta(days=30),
    max_bytes=1 * _GIB,
    description="Events that a consumer could not process (syncmsg dead letters)",
)
"""syncmsg's own, not on the TypeScript side: keeps what
:class:`~syncmsg.events.EventSubscriber` dead-letters (invalid events; with a retry policy,
events whose handlers kept failing) for 30 days."""

_STREAM_BY_FAMILY = {
    "agent": AGENT_EVENTS,
    "workflow": AGENT_EVENTS,
    "task": TASK_EVENTS,
    "audit": AUDIT_EVENTS,
}


def event_stream_specs(replicas: int = 1) -> tuple[EventStreamDef, ...]:
    """:data:`EVENT_STREAMS` with ``replicas`` replicas each (3 is usual on a cluster)."""
    _check_replicas(replicas)
    return tuple(stream.with_replicas(replicas) for stream in EVENT_STREAMS)


def stream_for(event: Event | type[Event]) -> EventStreamDef:
    """The stream that stores ``event`` (or every event of that model)."""
    return _STREAM_BY_FAMILY[event.family]

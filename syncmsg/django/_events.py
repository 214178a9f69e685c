"""Building typed events without a connection (for on-commit publishing and the outbox).

Threading: pure; call from any thread. Building an event must not wait on NATS, so the
builder is an :class:`~syncmsg.events.EventPublisher` that is never used to publish: its
``_build`` gives the same defaults (``id``, ``timestamp``, ``source``, the current
correlation) and the same :class:`~syncmsg.events.EventValidationError` as the
``publish_*_event`` methods.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, TypeVar, cast

from syncmsg.events import (
    AgentEvent,
    AuditEvent,
    EventCodec,
    EventPublisher,
    TaskEvent,
    WorkflowEvent,
    current_correlation_id,
)

if TYPE_CHECKING:
    from syncmsg._client import Client

__all__ = ["CODEC", "EventT", "aggregate_key", "build", "with_correlation"]

EventT = TypeVar("EventT", AgentEvent, WorkflowEvent, TaskEvent, AuditEvent)

#: How events become bytes here: plain JSON, as ``get_publisher()`` sends them.
CODEC = EventCodec()

_builders: dict[str, EventPublisher] = {}
_lock = threading.Lock()


def build(model: type[EventT], source: str, tenant_id: object, correlation_id: object,
          **fields: Any) -> EventT:  # fmt: skip
    """A validated ``model`` event from ``source``, as ``EventPublisher`` builds it."""
    builder = _builders.get(source)
    if builder is None:
        with _lock:
            builder = _builders.setdefault(source, EventPublisher(cast("Client", None), source))
    built = builder._build(model, tenant_id, correlation_id, **fields)
    assert isinstance(built, model)
    return built


def with_correlation(event: EventT) -> EventT:
    """``event``, with the current correlation if it has none (taken now, not later)."""
    if not isinstance(event, AgentEvent | WorkflowEvent | TaskEvent | AuditEvent):
        raise TypeError(f"not an event: {type(event).__name__}")
    if event.correlation_id is None:
        correlation = current_correlation_id()
        if correlation is not None:
            return event.model_copy(update={"correlation_id": correlation})
    return event


def aggregate_key(event: AgentEvent | WorkflowEvent | TaskEvent | AuditEvent) -> str:
    """The outbox ordering key of an event: the thing it is about."""
    if isinstance(event, AgentEvent):
        return f"agent:{event.agent_id}"
    if isinstance(event, WorkflowEvent):
        return f"workflow:{event.workflow_id}"
    if isinstance(event, TaskEvent):
        return f"task:{event.task_id}"
    return f"audit:{event.resource_type}:{event.resource_id}"

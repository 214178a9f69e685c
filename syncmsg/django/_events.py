"""What on-commit publishing and the outbox share about events (built by the builders of
:mod:`syncmsg.events`, which never wait on NATS).

Threading: pure; call from any thread.
"""

from __future__ import annotations

from typing import TypeVar

from syncmsg.events import (
    AgentEvent,
    AuditEvent,
    EventCodec,
    TaskEvent,
    WorkflowEvent,
    current_correlation_id,
)

__all__ = ["CODEC", "EventT", "aggregate_key", "with_correlation"]

EventT = TypeVar("EventT", AgentEvent, WorkflowEvent, TaskEvent, AuditEvent)

#: How events become bytes here: plain JSON, as ``get_publisher()`` sends them.
CODEC = EventCodec()


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

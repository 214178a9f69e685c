"""Building validated events without a connection.

Threading: pure functions; call them from any thread. Building never waits on NATS, so
the same events can be published now (:class:`~syncmsg.events.EventPublisher`), when a
database transaction commits, or through a transactional outbox
(:mod:`syncmsg.django`), and be byte for byte the same.

Each builder fills in what the TypeScript services' publisher does: a new ``id``, the
``timestamp``, the ``source``, and the current correlation (see
:func:`~syncmsg.events.correlation`) unless one is given. Invalid fields raise
:class:`~syncmsg.events.EventValidationError`, listing every problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from syncmsg.events._context import current_correlation_id
from syncmsg.events._errors import EventValidationError
from syncmsg.events._models import (
    AgentEvent,
    AgentEventType,
    AuditEvent,
    AuditEventType,
    MessageT,
    TaskEvent,
    TaskEventType,
    WorkflowEvent,
    WorkflowEventType,
    _to_uuid,
)

__all__ = [
    "DEFAULT_SOURCE",
    "agent_event",
    "audit_event",
    "build_event",
    "task_event",
    "workflow_event",
]

DEFAULT_SOURCE = "aigentflow-api"
"""The ``source`` of the TypeScript services' publisher."""


def build_event(
    model: type[MessageT],
    tenant_id: object,
    *,
    source: str = DEFAULT_SOURCE,
    correlation_id: object = None,
    **fields: Any,
) -> MessageT:
    """A validated ``model`` (an event class) from ``source``; fields given as None are
    left to the model's defaults."""
    tenant = _required_uuid(tenant_id, "tenant_id", "every event carries its tenant")
    if correlation_id is None:
        correlation: UUID | None = current_correlation_id()
    else:
        correlation = _required_uuid(correlation_id, "correlation_id", "")
    data = {k: v for k, v in fields.items() if v is not None}
    try:
        return model.model_validate(
            {"source": source, "tenant_id": tenant, "correlation_id": correlation, **data}
        )
    except ValidationError as exc:
        problems = [
            {"loc": tuple(err["loc"]), "msg": err["msg"], "type": err["type"]}
            for err in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
        lines = [f"invalid {model.__name__}:"]
        lines += [f"  {'.'.join(map(str, p['loc']))}: {p['msg']}" for p in problems]
        raise EventValidationError("\n".join(lines), errors=problems) from None


def agent_event(
    tenant_id: UUID | str,
    *,
    type: AgentEventType | str,
    agent_id: UUID | str,
    agent_type: str,
    payload: Mapping[str, Any] | None = None,
    correlation_id: UUID | str | None = None,
    source: str = DEFAULT_SOURCE,
) -> AgentEvent:
    """An agent event, for ``agent.{agent_type}.{type}`` (stream AGENT_EVENTS)."""
    return build_event(
        AgentEvent,
        tenant_id,
        source=source,
        correlation_id=correlation_id,
        type=type,
        agent_id=agent_id,
        agent_type=agent_type,
        payload=_body(payload),
    )


def workflow_event(
    tenant_id: UUID | str,
    *,
    type: WorkflowEventType | str,
    workflow_id: UUID | str,
    step_id: str | None = None,
    payload: Mapping[str, Any] | None = None,
    correlation_id: UUID | str | None = None,
    source: str = DEFAULT_SOURCE,
) -> WorkflowEvent:
    """A workflow event, for ``workflow.{type}`` (stream AGENT_EVENTS)."""
    return build_event(
        WorkflowEvent,
        tenant_id,
        source=source,
        correlation_id=correlation_id,
        type=type,
        workflow_id=workflow_id,
        step_id=step_id,
        payload=_body(payload),
    )


def task_event(
    tenant_id: UUID | str,
    *,
    type: TaskEventType | str,
    task_id: UUID | str,
    task_type: str,
    payload: Mapping[str, Any] | None = None,
    correlation_id: UUID | str | None = None,
    source: str = DEFAULT_SOURCE,
) -> TaskEvent:
    """A task event, for ``task.{task_type}.{type}`` (stream TASK_EVENTS)."""
    return build_event(
        TaskEvent,
        tenant_id,
        source=source,
        correlation_id=correlation_id,
        type=type,
        task_id=task_id,
        task_type=task_type,
        payload=_body(payload),
    )


def audit_event(
    tenant_id: UUID | str,
    *,
    type: AuditEventType | str,
    action: str,
    resource_type: str,
    resource_id: str,
    user_id: UUID | str | None = None,
    metadata: Mapping[str, Any] | None = None,
    correlation_id: UUID | str | None = None,
    source: str = DEFAULT_SOURCE,
) -> AuditEvent:
    """An audit event, for ``audit.{type}`` (stream AUDIT_EVENTS)."""
    return build_event(
        AuditEvent,
        tenant_id,
        source=source,
        correlation_id=correlation_id,
        type=type,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        user_id=user_id,
        metadata=_body(metadata),
    )


def _required_uuid(value: object, name: str, why: str) -> UUID:
    if value is None or value == "":
        raise EventValidationError(
            f"{name} is required" + (f": {why}" if why else ""),
            errors=[{"loc": (name,), "msg": "Field required", "type": "missing"}],
        )
    try:
        return _to_uuid(value)
    except ValueError as exc:
        raise EventValidationError(
            f"{name} is invalid: {exc}",
            errors=[{"loc": (name,), "msg": str(exc), "type": "uuid"}],
        ) from None


def _body(value: Mapping[str, Any] | None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise EventValidationError(
            f"the event body must be a mapping (a JSON object), not {type(value).__name__}"
        )
    return dict(value)

"""Subjects of the typed events, as the TypeScript publisher builds them, with no escape.

Threading: pure functions; call them from any thread.

=================  ===============================  ==================================
family             subject                          example
=================  ===============================  ==================================
agent              ``agent.{agentType}.{type}``     ``agent.planner.agent.started``
workflow           ``workflow.{type}``              ``workflow.workflow.step.started``
task               ``task.{taskType}.{type}``       ``task.email.task.created``
audit              ``audit.{type}``                 ``audit.audit.access``
=================  ===============================  ==================================

``type`` is one of the family's enum values (which contain dots by design). ``agentType``
and ``taskType`` are free text in the zod schemas, so they are checked before they are put
into a subject: see :func:`check_subject_token` for the rule.
"""

from __future__ import annotations

import unicodedata
from enum import Enum
from typing import TypeVar

from syncmsg._errors import InvalidSubjectError
from syncmsg.events._errors import InvalidTokenError
from syncmsg.events._models import (
    AgentEvent,
    AgentEventType,
    AuditEvent,
    AuditEventType,
    Event,
    TaskEvent,
    TaskEventType,
    WorkflowEvent,
    WorkflowEventType,
)

__all__ = [
    "agent_filter",
    "agent_subject",
    "audit_filter",
    "audit_subject",
    "check_subject_token",
    "subject_for",
    "task_filter",
    "task_subject",
    "workflow_filter",
    "workflow_subject",
]

EnumT = TypeVar("EnumT", bound=Enum)

_FORBIDDEN_CHARS = frozenset(".*>")


def check_subject_token(token: object, what: str = "subject token") -> str:
    """Return ``token`` unchanged if it can stand as exactly one subject token, else raise.

    The rule: a non-empty ``str`` with no ``.``, ``*`` or ``>``, and only visible
    characters: no whitespace of any kind (Unicode category Z* or ``str.isspace()``), no
    control, format (zero-width, bidi), surrogate, private-use or unassigned code point
    (category C*). Other Unicode letters, digits and symbols are allowed (NATS subjects are
    UTF-8), e.g. ``"planner"``, ``"data-loader_v2"``, ``"übersetzer"``. A rejected token is
    never rewritten into another subject; :class:`InvalidTokenError` names the problem.
    """
    if not isinstance(token, str):
        raise InvalidTokenError(f"{what} must be a str, not {type(token).__name__}")
    if not token:
        raise InvalidTokenError(f"{what} must not be empty")
    for char in token:
        if char in _FORBIDDEN_CHARS:
            raise InvalidTokenError(
                f"{what} {token!r} must not contain {char!r} "
                "('.' separates subject tokens, '*' and '>' are wildcards)"
            )
        category = unicodedata.category(char)
        if char.isspace() or category[0] == "Z":
            raise InvalidTokenError(f"{what} {token!r} must not contain whitespace")
        if category[0] == "C":
            raise InvalidTokenError(
                f"{what} {token!r} must not contain the invisible or control character "
                f"U+{ord(char):04X}"
            )
    return token


def _event_type(value: object, enum: type[EnumT], family: str) -> EnumT:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in enum)
        raise InvalidSubjectError(
            f"{value!r} is not a {family} event type (expected one of: {allowed})"
        ) from None


def agent_subject(agent_type: str, event_type: AgentEventType | str) -> str:
    """``agent.{agentType}.{type}``, e.g. ``agent.planner.agent.started``."""
    token = check_subject_token(agent_type, "agentType")
    kind = _event_type(event_type, AgentEventType, "agent")
    return f"agent.{token}.{kind.value}"


def workflow_subject(event_type: WorkflowEventType | str) -> str:
    """``workflow.{type}``, e.g. ``workflow.workflow.step.started``."""
    kind = _event_type(event_type, WorkflowEventType, "workflow")
    return f"workflow.{kind.value}"


def task_subject(task_type: str, event_type: TaskEventType | str) -> str:
    """``task.{taskType}.{type}``, e.g. ``task.email.task.created``."""
    token = check_subject_token(task_type, "taskType")
    kind = _event_type(event_type, TaskEventType, "task")
    return f"task.{token}.{kind.value}"


def audit_subject(event_type: AuditEventType | str) -> str:
    """``audit.{type}``, e.g. ``audit.audit.access``."""
    kind = _event_type(event_type, AuditEventType, "audit")
    return f"audit.{kind.value}"


def subject_for(event: Event) -> str:
    """The subject the TypeScript publisher uses for ``event``."""
    if isinstance(event, AgentEvent):
        return agent_subject(event.agent_type, event.type)
    if isinstance(event, WorkflowEvent):
        return workflow_subject(event.type)
    if isinstance(event, TaskEvent):
        return task_subject(event.task_type, event.type)
    if isinstance(event, AuditEvent):
        return audit_subject(event.type)
    raise TypeError(f"not an event: {type(event).__name__}")


# Subscription filters: None means "any" (a '*' token, or a trailing '>').


def agent_filter(
    agent_type: str | None = None, event_type: AgentEventType | str | None = None
) -> str:
    """Filter subject for agent events, e.g. ``agent.*.agent.failed`` or ``agent.planner.>``."""
    token = "*" if agent_type is None else check_subject_token(agent_type, "agentType")
    if event_type is None:
        return f"agent.{token}.>"
    return f"agent.{token}.{_event_type(event_type, AgentEventType, 'agent').value}"


def workflow_filter(event_type: WorkflowEventType | str | None = None) -> str:
    """Filter subject for workflow events: ``workflow.>`` or one type's subject."""
    return "workflow.>" if event_type is None else workflow_subject(event_type)


def task_filter(task_type: str | None = None, event_type: TaskEventType | str | None = None) -> str:
    """Filter subject for task events, e.g. ``task.*.task.failed`` or ``task.email.>``."""
    token = "*" if task_type is None else check_subject_token(task_type, "taskType")
    if event_type is None:
        return f"task.{token}.>"
    return f"task.{token}.{_event_type(event_type, TaskEventType, 'task').value}"


def audit_filter(event_type: AuditEventType | str | None = None) -> str:
    """Filter subject for audit events: ``audit.>`` or one type's subject."""
    return "audit.>" if event_type is None else audit_subject(event_type)

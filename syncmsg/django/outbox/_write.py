"""Writing outbox rows, inside the caller's database transaction.

Threading: runs on the caller's thread (a request thread), on that thread's database
connection. Nothing here touches NATS: a row is validated and encoded, inserted, and
that is all the caller waits for. The relay (:mod:`syncmsg.django.outbox._relay`, another
process or thread) publishes it once the transaction has committed, and never if it
rolls back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any
from uuid import UUID, uuid4

from syncmsg import _instrumentation
from syncmsg._codec import Data, Headers, encode_headers, encode_payload
from syncmsg._errors import ConfigurationError, PayloadTooLargeError
from syncmsg._subjects import check_publish_subject
from syncmsg.django import _events, conf
from syncmsg.django._events import EventT
from syncmsg.events import (
    AgentEvent,
    AgentEventType,
    AuditEvent,
    AuditEventType,
    TaskEvent,
    TaskEventType,
    WorkflowEvent,
    WorkflowEventType,
    agent_event,
    audit_event,
    task_event,
    workflow_event,
)
from syncmsg.jetstream import MSG_ID_HEADER

__all__ = [
    "publish",
    "publish_agent_event",
    "publish_audit_event",
    "publish_event",
    "publish_task_event",
    "publish_workflow_event",
]

_MAX_KEY = 255  # the width of OutboxMessage.key and .msg_id


def _options() -> conf.OutboxOptions:
    options = conf.options().outbox
    if options is None:
        raise ConfigurationError(
            f"the outbox is not enabled: set {conf.SETTING}['outbox'] (a dict of options, "
            "or {}) so that a relay publishes what is written"
        )
    return options


def _insert(
    subject: str,
    payload: bytes,
    headers: dict[str, Any] | None,
    msg_id: str,
    key: str | None,
    using: str | None,
    autocommit: bool,
) -> Any:
    from django.db import transaction
    from django.db.transaction import TransactionManagementError

    from syncmsg.django.outbox._models import OutboxMessage

    options = _options()
    alias = using or options.database
    if not autocommit and not transaction.get_connection(alias).in_atomic_block:
        raise TransactionManagementError(
            "syncmsg.django.outbox: call this inside transaction.atomic() (on database "
            f"{alias!r}), so that the message is written with the data it announces; "
            "pass autocommit=True to write it on its own"
        )
    if options.max_payload is not None and len(payload) > options.max_payload:
        raise PayloadTooLargeError(
            f"payload of {len(payload)} bytes is over the outbox's max_payload "
            f"({options.max_payload} bytes)"
        )
    tracing = _instrumentation.active
    if tracing is not None:  # the relay's publish continues the writer's trace
        headers = tracing.stamp(headers)
    return OutboxMessage.objects.using(alias).create(
        subject=subject, payload=payload, headers=headers, msg_id=msg_id, key=key
    )


def _checked_key(key: object) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key or len(key) > _MAX_KEY:
        raise ValueError(f"key must be a non-empty str of at most {_MAX_KEY} characters")
    return key


def _checked_msg_id(msg_id: object) -> str:
    if msg_id is None:
        return str(uuid4())
    if not isinstance(msg_id, str) or not msg_id or len(msg_id) > _MAX_KEY:
        raise ValueError(f"msg_id must be a non-empty str of at most {_MAX_KEY} characters")
    encode_headers({MSG_ID_HEADER: msg_id})  # no CR/LF: it travels as a header
    return msg_id


def publish(
    subject: str,
    data: Data = b"",
    *,
    headers: Headers | None = None,
    msg_id: str | None = None,
    key: str | None = None,
    using: str | None = None,
    autocommit: bool = False,
) -> Any:
    """Write a message to the outbox, in the current transaction; returns the row.

    Once the transaction commits, the relay publishes it to JetStream with
    ``Nats-Msg-Id: msg_id`` (default: a uuid4 made now, kept in the row), so a re-send
    after a crash is stored once. Rows with the same ``key`` are published in the order
    they were written; rows without one keep their order unless a publish fails.

    Validates now (:class:`~syncmsg.InvalidSubjectError`, :class:`~syncmsg.PayloadError`,
    :class:`~syncmsg.InvalidHeaderError`, :class:`~syncmsg.PayloadTooLargeError` over
    ``SYNCMSG["outbox"]["max_payload"]``). Raises
    :class:`~django.db.transaction.TransactionManagementError` outside
    ``transaction.atomic()`` unless ``autocommit=True``, and
    :class:`~syncmsg.ConfigurationError` when ``SYNCMSG["outbox"]`` is not set.
    """
    check_publish_subject(subject)
    payload = encode_payload(data)
    encode_headers(headers)  # validates names and values now
    stored = {name: value if isinstance(value, str) else list(value)
              for name, value in headers.items()} if headers else None  # fmt: skip
    return _insert(
        subject, payload, stored, _checked_msg_id(msg_id), _checked_key(key), using, autocommit
    )


def publish_event(
    event: EventT,
    *,
    key: str | None = None,
    using: str | None = None,
    autocommit: bool = False,
) -> EventT:
    """Write a typed event to the outbox; returns it (with the current correlation if it
    had none).

    Published on its subject with ``Nats-Msg-Id`` = the event's ``id``, as
    :meth:`EventPublisher.publish <syncmsg.events.EventPublisher.publish>` does. ``key``
    defaults to the event's aggregate (``task:<task_id>``, ``agent:<agent_id>``,
    ``workflow:<workflow_id>``, ``audit:<resource_type>:<resource_id>``), so the events
    of one aggregate are published in the order they were written.
    """
    event = _events.with_correlation(event)
    encoded = _events.CODEC.encode(event)
    _insert(
        encoded.subject,
        encoded.data,
        dict(encoded.headers) if encoded.headers else None,
        str(event.id),
        _checked_key(key) if key is not None else _bounded(_events.aggregate_key(event)),
        using,
        autocommit,
    )
    return event


def _bounded(key: str) -> str:
    if len(key) <= _MAX_KEY:
        return key
    family = key.split(":", 1)[0]
    return f"{family}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def publish_agent_event(
    tenant_id: UUID | str,
    *,
    type: AgentEventType | str,
    agent_id: UUID | str,
    agent_type: str,
    payload: Mapping[str, Any] | None = None,
    correlation_id: UUID | str | None = None,
    key: str | None = None,
    using: str | None = None,
    autocommit: bool = False,
) -> AgentEvent:
    """:meth:`EventPublisher.publish_agent_event`, through the outbox; returns the event."""
    event = agent_event(
        tenant_id,
        type=type,
        agent_id=agent_id,
        agent_type=agent_type,
        payload=payload,
        correlation_id=correlation_id,
        source=conf.options().event_source,
    )
    return publish_event(event, key=key, using=using, autocommit=autocommit)


def publish_workflow_event(
    tenant_id: UUID | str,
    *,
    type: WorkflowEventType | str,
    workflow_id: UUID | str,
    step_id: str | None = None,
    payload: Mapping[str, Any] | None = None,
    correlation_id: UUID | str | None = None,
    key: str | None = None,
    using: str | None = None,
    autocommit: bool = False,
) -> WorkflowEvent:
    """:meth:`EventPublisher.publish_workflow_event`, through the outbox."""
    event = workflow_event(
        tenant_id,
        type=type,
        workflow_id=workflow_id,
        step_id=step_id,
        payload=payload,
        correlation_id=correlation_id,
        source=conf.options().event_source,
    )
    return publish_event(event, key=key, using=using, autocommit=autocommit)


def publish_task_event(
    tenant_id: UUID | str,
    *,
    type: TaskEventType | str,
    task_id: UUID | str,
    task_type: str,
    payload: Mapping[str, Any] | None = None,
    correlation_id: UUID | str | None = None,
    key: str | None = None,
    using: str | None = None,
    autocommit: bool = False,
) -> TaskEvent:
    """:meth:`EventPublisher.publish_task_event`, through the outbox."""
    event = task_event(
        tenant_id,
        type=type,
        task_id=task_id,
        task_type=task_type,
        payload=payload,
        correlation_id=correlation_id,
        source=conf.options().event_source,
    )
    return publish_event(event, key=key, using=using, autocommit=autocommit)


def publish_audit_event(
    tenant_id: UUID | str,
    *,
    type: AuditEventType | str,
    action: str,
    resource_type: str,
    resource_id: str,
    user_id: UUID | str | None = None,
    metadata: Mapping[str, Any] | None = None,
    correlation_id: UUID | str | None = None,
    key: str | None = None,
    using: str | None = None,
    autocommit: bool = False,
) -> AuditEvent:
    """:meth:`EventPublisher.publish_audit_event`, through the outbox."""
    event = audit_event(
        tenant_id,
        type=type,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        user_id=user_id,
        metadata=metadata,
        correlation_id=correlation_id,
        source=conf.options().event_source,
    )
    return publish_event(event, key=key, using=using, autocommit=autocommit)

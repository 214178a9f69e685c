"""Publishing after the surrounding database transaction commits.

Each function validates and encodes on the calling thread, right away, so a bad subject,
payload or event raises inside the view (and rolls the transaction back if it is not
caught), and the data published is the data as it was at the call. The publish itself is
registered with :func:`django.db.transaction.on_commit`: it runs when the outermost
``atomic()`` block of connection ``using`` commits, on the thread that committed, and
never if it rolls back. Outside a transaction (autocommit) it runs at once.

``robust`` is passed to ``on_commit``: with ``robust=False`` (Django's default) a publish
that fails after the commit raises out of the ``atomic()`` block, and callbacks registered
after it do not run; with ``robust=True`` the failure is logged by Django and the other
callbacks still run.

JetStream and event publishes wait for the stream's ack on the committing thread, for at
most ``timeout`` (the call's, else ``SYNCMSG["jetstream"]["timeout"]``): that bounds the
whole wait, connecting and retries included. Without either, the wait is bounded by the
context's ``publish_retry`` (a minute by default). Building and validating never connects.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from syncmsg._codec import Data, Headers, encode_headers, encode_payload
from syncmsg._errors import TimeoutError
from syncmsg._subjects import check_publish_subject
from syncmsg.django import _events, conf
from syncmsg.django._events import EventT
from syncmsg.django._process import get_client, get_jetstream
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
from syncmsg.jetstream import PubAck, new_msg_id

__all__ = [
    "jetstream_publish_on_commit",
    "publish_agent_event_on_commit",
    "publish_audit_event_on_commit",
    "publish_event_on_commit",
    "publish_on_commit",
    "publish_task_event_on_commit",
    "publish_workflow_event_on_commit",
]


def _on_commit(func: Callable[[], Any], using: str | None, robust: bool) -> None:
    from django.db import transaction

    if robust:
        transaction.on_commit(func, using=using, robust=True)
    else:
        transaction.on_commit(func, using=using)


def _check(data: Data, headers: Headers | None) -> tuple[bytes, Headers | None]:
    payload = encode_payload(data)
    encode_headers(headers)  # validates names and values now
    return payload, dict(headers) if headers else None


def publish_on_commit(
    subject: str,
    data: Data = b"",
    *,
    headers: Headers | None = None,
    using: str | None = None,
    robust: bool = False,
) -> None:
    """``get_client().publish(subject, data, headers=...)`` once the transaction commits.

    A core NATS publish: fire-and-forget, at most once (nobody listening, nothing kept).
    Use :func:`jetstream_publish_on_commit` or the event functions for messages that must
    be stored.
    """
    check_publish_subject(subject)
    payload, copied = _check(data, headers)

    def send() -> None:
        get_client().publish(subject, payload, headers=copied)

    _on_commit(send, using, robust)


def jetstream_publish_on_commit(
    subject: str,
    data: Data = b"",
    *,
    msg_id: str | None = None,
    headers: Headers | None = None,
    timeout: float | None = None,
    using: str | None = None,
    robust: bool = False,
) -> str:
    """``get_jetstream().publish(...)`` once the transaction commits; returns the message id.

    The ``Nats-Msg-Id`` is ``msg_id`` (use a business key, e.g. ``f"order-{order.pk}"``) or
    one made now, so every retry of the publish is stored once. The publish blocks the
    committing thread until the stream acknowledges it (retrying per the JetStream
    context's ``publish_retry``).
    """
    check_publish_subject(subject)
    payload, copied = _check(data, headers)
    ident = msg_id or new_msg_id()

    def send() -> None:
        jetstream_publish(subject, payload, msg_id=ident, headers=copied, timeout=timeout)

    _on_commit(send, using, robust)
    return ident


def jetstream_publish(
    subject: str,
    payload: bytes,
    *,
    msg_id: str,
    headers: Headers | None,
    timeout: float | None,
) -> PubAck:
    """Publish with the process's JetStream context, waiting at most ``timeout`` (default
    ``SYNCMSG["jetstream"]["timeout"]``) in all: for the first connection, the ack and the
    retries. Raises :class:`~syncmsg.TimeoutError` when that runs out."""
    bound = timeout if timeout is not None else conf.options().jetstream.get("timeout")
    if bound is None:
        return get_jetstream().publish(subject, payload, msg_id=msg_id, headers=headers)
    deadline = time.monotonic() + bound
    get_client(timeout=bound)
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(f"no JetStream ack for {subject!r} within {bound:g}s")
    # publish() retries for its context's publish_retry deadline, measured from its own
    # start; waiting on the future instead keeps the caller's wait inside `bound`.
    future = get_jetstream().publish_async(
        subject, payload, msg_id=msg_id, headers=headers, timeout=left
    )
    try:
        # exception(), not result(): syncmsg's own TimeoutError (a failed publish) is a
        # builtins.TimeoutError too, and must not be taken for the wait running out.
        error = future.exception(max(deadline - time.monotonic(), 0.0))
    except concurrent.futures.TimeoutError:
        raise TimeoutError(f"no JetStream ack for {subject!r} within {bound:g}s") from None
    if error is not None:
        raise error
    return future.result()


def publish_event_on_commit(
    event: EventT,
    *,
    timeout: float | None = None,
    using: str | None = None,
    robust: bool = False,
) -> EventT:
    """``EventPublisher.publish(event)`` once the transaction commits; returns the event.

    An event without a ``correlation_id`` takes the current correlation now (as
    :meth:`~syncmsg.events.EventPublisher.publish` would), so that it is the request's and
    not whatever is current when the transaction commits.
    """
    event = _events.with_correlation(event)
    encoded = _events.CODEC.encode(event)  # fails now if it cannot be encoded
    headers = dict(encoded.headers) if encoded.headers else None

    def send() -> None:
        jetstream_publish(
            encoded.subject, encoded.data, msg_id=str(event.id), headers=headers, timeout=timeout
        )

    _on_commit(send, using, robust)
    return event


def publish_agent_event_on_commit(
    tenant_id: UUID | str,
    *,
    type: AgentEventType | str,
    agent_id: UUID | str,
    agent_type: str,
    payload: Mapping[str, Any] | None = None,
    correlation_id: UUID | str | None = None,
    timeout: float | None = None,
    using: str | None = None,
    robust: bool = False,
) -> AgentEvent:
    """:meth:`EventPublisher.publish_agent_event` once the transaction commits.

    The event is built and validated now (its ``id`` and ``timestamp`` too) and returned.
    """
    event = agent_event(
        tenant_id,
        type=type,
        agent_id=agent_id,
        agent_type=agent_type,
        payload=payload,
        correlation_id=correlation_id,
        source=conf.options().event_source,
    )
    return publish_event_on_commit(event, timeout=timeout, using=using, robust=robust)


def publish_workflow_event_on_commit(
    tenant_id: UUID | str,
    *,
    type: WorkflowEventType | str,
    workflow_id: UUID | str,
    step_id: str | None = None,
    payload: Mapping[str, Any] | None = None,
    correlation_id: UUID | str | None = None,
    timeout: float | None = None,
    using: str | None = None,
    robust: bool = False,
) -> WorkflowEvent:
    """:meth:`EventPublisher.publish_workflow_event` once the transaction commits."""
    event = workflow_event(
        tenant_id,
        type=type,
        workflow_id=workflow_id,
        step_id=step_id,
        payload=payload,
        correlation_id=correlation_id,
        source=conf.options().event_source,
    )
    return publish_event_on_commit(event, timeout=timeout, using=using, robust=robust)


def publish_task_event_on_commit(
    tenant_id: UUID | str,
    *,
    type: TaskEventType | str,
    task_id: UUID | str,
    task_type: str,
    payload: Mapping[str, Any] | None = None,
    correlation_id: UUID | str | None = None,
    timeout: float | None = None,
    using: str | None = None,
    robust: bool = False,
) -> TaskEvent:
    """:meth:`EventPublisher.publish_task_event` once the transaction commits."""
    event = task_event(
        tenant_id,
        type=type,
        task_id=task_id,
        task_type=task_type,
        payload=payload,
        correlation_id=correlation_id,
        source=conf.options().event_source,
    )
    return publish_event_on_commit(event, timeout=timeout, using=using, robust=robust)


def publish_audit_event_on_commit(
    tenant_id: UUID | str,
    *,
    type: AuditEventType | str,
    action: str,
    resource_type: str,
    resource_id: str,
    user_id: UUID | str | None = None,
    metadata: Mapping[str, Any] | None = None,
    correlation_id: UUID | str | None = None,
    timeout: float | None = None,
    using: str | None = None,
    robust: bool = False,
) -> AuditEvent:
    """:meth:`EventPublisher.publish_audit_event` once the transaction commits."""
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
    return publish_event_on_commit(event, timeout=timeout, using=using, robust=robust)

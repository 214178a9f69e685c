"""Publishing typed events to their JetStream streams, as the TypeScript services do.

Threading: :class:`EventPublisher` holds no mutable state after construction and may be used
by any number of threads at once. Each ``publish_*`` call builds, validates and encodes (and
encrypts) the event on the calling thread, then blocks that thread in ``js.publish`` until
the stream acknowledges it or ``timeout`` runs out. It must not be called from the client's
event-loop thread (it raises :class:`~syncmsg.LoopThreadError` there); handlers of an
:class:`~syncmsg.events.EventSubscriber` run on worker threads and may publish.

Every event is published with ``Nats-Msg-Id`` set to its ``id``, so a publish retried (by
the JetStream layer or by the caller re-sending the same event) is stored once, as long as
the retries fall within the stream's duplicate window (two minutes by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

from syncmsg import _instrumentation
from syncmsg.events._build import (
    DEFAULT_SOURCE,
    agent_event,
    audit_event,
    task_event,
    workflow_event,
)
from syncmsg.events._codec import EventCodec
from syncmsg.events._context import current_correlation_id
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
from syncmsg.events._streams import (
    EVENT_DEAD_LETTERS,
    EventStreamDef,
    event_stream_specs,
)
from syncmsg.jetstream import PubAck

if TYPE_CHECKING:
    from syncmsg._client import Client
    from syncmsg.jetstream import JetStream, StreamInfo, StreamSpec

__all__ = [
    "DEFAULT_SOURCE",
    "EventAck",
    "EventPublisher",
    "ensure_event_streams",
    "stream_spec",
]


class EventAck(PubAck):
    """The stream's :class:`~syncmsg.jetstream.PubAck`, plus the event that was published.

    ``event`` is the event as built (before encryption): ``ack.event.id`` is its id and its
    ``Nats-Msg-Id``, ``ack.event.correlation_id`` the correlation it carries.
    """

    event: Event | None = None


def stream_spec(stream: EventStreamDef) -> StreamSpec:
    """The :class:`~syncmsg.jetstream.StreamSpec` of an event stream definition."""
    from syncmsg.jetstream import StreamSpec

    return StreamSpec(
        name=stream.name,
        subjects=stream.subjects,
        description=stream.description or None,
        retention=stream.retention,
        storage=stream.storage,
        replicas=stream.replicas,
        max_age=stream.max_age,
        max_bytes=stream.max_bytes,
    )


def ensure_event_streams(
    client: Client,
    *,
    replicas: int = 1,
    dead_letters: bool = True,
    timeout: float | None = None,
    js: JetStream | None = None,
) -> list[StreamInfo]:
    """Create the event streams, or update them to the TypeScript services' configuration.

    Ensures ``AGENT_EVENTS``, ``TASK_EVENTS`` and ``AUDIT_EVENTS`` with ``replicas`` replicas
    each (1 to 5; 3 is usual on a cluster) and, unless ``dead_letters=False``, the
    ``EVENT_DEAD_LETTERS`` stream that keeps what :class:`EventSubscriber` dead-letters.
    Idempotent: safe to call from every service at start-up, including alongside the
    TypeScript services, which create the same three streams only when they are missing.
    Returns each stream's :class:`~syncmsg.jetstream.StreamInfo` (``action`` says
    ``"created"``, ``"updated"`` or ``"unchanged"``). Blocks the calling thread; each API
    call is bounded by ``timeout``. ``js``: the JetStream context to use (default
    ``client.jetstream()``).
    """
    js = js if js is not None else client.jetstream()
    streams = list(event_stream_specs(replicas))
    if dead_letters:
        streams.append(EVENT_DEAD_LETTERS.with_replicas(replicas))
    return [js.ensure_stream(stream_spec(stream), timeout=timeout) for stream in streams]


class EventPublisher:
    """Publishes agent, workflow, task and audit events, as the TypeScript publisher does.

    ``source`` fills every event's ``source`` field. ``codec`` turns events into bytes: the
    default :class:`~syncmsg.events.EventCodec` writes plain JSON (what ``JSON.stringify``
    writes); an :class:`~syncmsg.events.EncryptingCodec` encrypts ``payload``/``metadata``.
    ``timeout`` is the default of every publish (default: the JetStream context's). ``js``
    is the JetStream context to publish with (default ``client.jetstream()``; pass
    ``client.jetstream(domain=...)`` for another domain, or other retry settings).

    Each ``publish_*`` method fills ``id`` (a new uuid4), ``timestamp`` (now), ``source``
    and ``tenantId``, publishes on the TypeScript services' subject with ``Nats-Msg-Id`` =
    ``id``, and returns an :class:`EventAck` once the stream has stored it.
    ``correlation_id`` defaults to the current correlation: inside an
    :class:`EventSubscriber` handler, that of the event being handled (see
    :func:`~syncmsg.events.correlation_scope`).

    Raises, before anything is sent: :class:`~syncmsg.events.EventValidationError` for a
    missing or invalid ``tenant_id`` or any other invalid field, and
    :class:`~syncmsg.events.InvalidTokenError` for an ``agent_type``/``task_type`` that is
    empty or contains ``.``, ``*``, ``>`` or whitespace. Then whatever ``js.publish`` raises
    (:class:`~syncmsg.TimeoutError`, :class:`~syncmsg.NoRespondersError` when no stream
    captures the subject, …).
    """

    def __init__(
        self,
        client: Client,
        source: str = DEFAULT_SOURCE,
        *,
        codec: EventCodec | None = None,
        timeout: float | None = None,
        js: JetStream | None = None,
    ) -> None:
        if not isinstance(source, str) or not source.strip():
            raise ValueError("source must be a non-empty string naming the publishing service")
        if codec is not None and not isinstance(codec, EventCodec):
            raise TypeError("codec must be an EventCodec (or an EncryptingCodec)")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        self._client = client
        self._source = source
        self._codec = codec or EventCodec()
        self._timeout = timeout
        self._jetstream = js

    def __repr__(self) -> str:
        return f"<EventPublisher source={self._source!r} codec={type(self._codec).__name__}>"

    @property
    def client(self) -> Client:
        return self._client

    @property
    def source(self) -> str:
        return self._source

    @property
    def codec(self) -> EventCodec:
        return self._codec

    # ------------------------------------------------------------------ publishing
    def publish(self, event: Event, *, timeout: float | None = None) -> EventAck:
        """Publish an event built by the caller, on its subject, with ``Nats-Msg-Id`` = id.

        The event is sent as it is (its own ``source``, ``id`` and ``timestamp``), except
        that an event without a ``correlation_id`` takes the current correlation, if any.
        Publishing the same event again is a no-op at the stream (``ack.duplicate``) within
        the duplicate window.
        """
        if not isinstance(event, AgentEvent | WorkflowEvent | TaskEvent | AuditEvent):
            raise TypeError(f"not an event: {type(event).__name__}")
        if event.correlation_id is None:
            correlation = current_correlation_id()
            if correlation is not None:
                event = event.model_copy(update={"correlation_id": correlation})
        encoded = self._codec.encode(event)
        with _instrumentation.event_scope(event, handling=False):  # its correlation on spans
            ack = self._js().publish(
                encoded.subject,
                encoded.data,
                msg_id=str(event.id),
                headers=encoded.headers or None,
                timeout=self._timeout if timeout is None else timeout,
            )
        return EventAck(
            stream=ack.stream, seq=ack.seq, duplicate=ack.duplicate, domain=ack.domain, event=event
        )

    def publish_agent_event(
        self,
        tenant_id: UUID | str,
        *,
        type: AgentEventType | str,
        agent_id: UUID | str,
        agent_type: str,
        payload: Mapping[str, Any] | None = None,
        correlation_id: UUID | str | None = None,
        timeout: float | None = None,
    ) -> EventAck:
        """Publish an agent event on ``agent.{agent_type}.{type}`` (stream AGENT_EVENTS)."""
        event = agent_event(
            tenant_id,
            type=type,
            agent_id=agent_id,
            agent_type=agent_type,
            payload=payload,
            correlation_id=correlation_id,
            source=self._source,
        )
        return self.publish(event, timeout=timeout)

    def publish_workflow_event(
        self,
        tenant_id: UUID | str,
        *,
        type: WorkflowEventType | str,
        workflow_id: UUID | str,
        step_id: str | None = None,
        payload: Mapping[str, Any] | None = None,
        correlation_id: UUID | str | None = None,
        timeout: float | None = None,
    ) -> EventAck:
        """Publish a workflow event on ``workflow.{type}`` (stream AGENT_EVENTS)."""
        event = workflow_event(
            tenant_id,
            type=type,
            workflow_id=workflow_id,
            step_id=step_id,
            payload=payload,
            correlation_id=correlation_id,
            source=self._source,
        )
        return self.publish(event, timeout=timeout)

    def publish_task_event(
        self,
        tenant_id: UUID | str,
        *,
        type: TaskEventType | str,
        task_id: UUID | str,
        task_type: str,
        payload: Mapping[str, Any] | None = None,
        correlation_id: UUID | str | None = None,
        timeout: float | None = None,
    ) -> EventAck:
        """Publish a task event on ``task.{task_type}.{type}`` (stream TASK_EVENTS)."""
        event = task_event(
            tenant_id,
            type=type,
            task_id=task_id,
            task_type=task_type,
            payload=payload,
            correlation_id=correlation_id,
            source=self._source,
        )
        return self.publish(event, timeout=timeout)

    def publish_audit_event(
        self,
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
    ) -> EventAck:
        """Publish an audit event on ``audit.{type}`` (stream AUDIT_EVENTS)."""
        event = audit_event(
            tenant_id,
            type=type,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            user_id=user_id,
            metadata=metadata,
            correlation_id=correlation_id,
            source=self._source,
        )
        return self.publish(event, timeout=timeout)

    # ------------------------------------------------------------------ helpers
    def _js(self) -> JetStream:
        return self._jetstream if self._jetstream is not None else self._client.jetstream()

"""Typed agent, workflow, task and audit events, wire-compatible with the TypeScript services.

Threading: the models, subject builders, stream definitions, ciphers and codecs are pure
and immutable and can be used from any thread. :class:`EventPublisher` (thread-safe; blocks
its caller until the stream acknowledges) and :class:`EventSubscriber` (handlers run on
worker threads) use a connected :class:`syncmsg.Client`; see their modules.

The TypeScript services (nats.js + zod; docs/events.md describes them) and syncmsg read each
other's messages unchanged: see docs/events.md for the wire format.

>>> from uuid import UUID
>>> event = AgentEvent(
...     source="billing-worker",
...     tenant_id=UUID("7d0f3c1e-5b7a-4c2e-9f3a-2b1d4e6f8a90"),
...     type=AgentEventType.STARTED,
...     agent_id=UUID("0b8e2f54-1c3d-4e5f-8a9b-0c1d2e3f4a5b"),
...     agent_type="planner",
...     payload={"step": 1},
... )
>>> subject_for(event)
'agent.planner.agent.started'
>>> AgentEvent.from_wire(event.to_wire()) == event
True
"""

from syncmsg.events._build import (
    DEFAULT_SOURCE,
    agent_event,
    audit_event,
    build_event,
    task_event,
    workflow_event,
)
from syncmsg.events._codec import EncodedEvent, EncryptingCodec, EventCodec, parse_event
from syncmsg.events._context import (
    correlation_for,
    correlation_scope,
    current_correlation_id,
    current_event,
)
from syncmsg.events._crypto import (
    ALGORITHM,
    ENVELOPE_VERSION,
    KEY_ID_HEADER,
    PayloadCipher,
    envelope_key_id,
    is_encrypted,
)
from syncmsg.events._errors import (
    CryptoUnavailableError,
    DecryptionError,
    EventValidationError,
    HandlerError,
    InvalidTokenError,
    MissingKeyError,
)
from syncmsg.events._models import (
    EVENT_MODELS,
    AgentEvent,
    AgentEventType,
    AuditEvent,
    AuditEventType,
    BaseMessage,
    Event,
    EventType,
    TaskEvent,
    TaskEventType,
    WorkflowEvent,
    WorkflowEventType,
    event_family,
    format_timestamp,
    parse_timestamp,
    utc_now,
)
from syncmsg.events._publisher import (
    EventAck,
    EventPublisher,
    ensure_event_streams,
    stream_spec,
)
from syncmsg.events._streams import (
    AGENT_EVENTS,
    AUDIT_EVENTS,
    DEAD_LETTER_PREFIX,
    EVENT_DEAD_LETTERS,
    EVENT_STREAMS,
    TASK_EVENTS,
    EventStreamDef,
    event_stream_specs,
    stream_for,
)
from syncmsg.events._subjects import (
    agent_filter,
    agent_subject,
    audit_filter,
    audit_subject,
    check_subject_token,
    subject_for,
    task_filter,
    task_subject,
    workflow_filter,
    workflow_subject,
)
from syncmsg.events._subscriber import (
    FAMILIES,
    EventErrorCallback,
    EventRetryPolicy,
    EventSubscriber,
    consumer_name,
)

__all__ = [
    "AGENT_EVENTS",
    "ALGORITHM",
    "AUDIT_EVENTS",
    "DEAD_LETTER_PREFIX",
    "DEFAULT_SOURCE",
    "ENVELOPE_VERSION",
    "EVENT_DEAD_LETTERS",
    "EVENT_MODELS",
    "EVENT_STREAMS",
    "FAMILIES",
    "KEY_ID_HEADER",
    "TASK_EVENTS",
    "AgentEvent",
    "AgentEventType",
    "AuditEvent",
    "AuditEventType",
    "BaseMessage",
    "CryptoUnavailableError",
    "DecryptionError",
    "EncodedEvent",
    "EncryptingCodec",
    "Event",
    "EventAck",
    "EventCodec",
    "EventErrorCallback",
    "EventPublisher",
    "EventRetryPolicy",
    "EventStreamDef",
    "EventSubscriber",
    "EventType",
    "EventValidationError",
    "HandlerError",
    "InvalidTokenError",
    "MissingKeyError",
    "PayloadCipher",
    "TaskEvent",
    "TaskEventType",
    "WorkflowEvent",
    "WorkflowEventType",
    "agent_event",
    "agent_filter",
    "agent_subject",
    "audit_event",
    "audit_filter",
    "audit_subject",
    "check_subject_token",
    "consumer_name",
    "correlation_for",
    "correlation_scope",
    "current_correlation_id",
    "current_event",
    "ensure_event_streams",
    "envelope_key_id",
    "event_family",
    "event_stream_specs",
    "format_timestamp",
    "is_encrypted",
    "parse_event",
    "parse_timestamp",
    "stream_for",
    "stream_spec",
    "subject_for",
    "build_event",
    "task_event",
    "task_filter",
    "task_subject",
    "utc_now",
    "workflow_event",
    "workflow_filter",
    "workflow_subject",
]

"""EventPublisher and ensure_event_streams: subjects, streams, ids, tenants, tokens."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

import syncmsg
from syncmsg.events import (
    AGENT_EVENTS,
    AUDIT_EVENTS,
    EVENT_DEAD_LETTERS,
    TASK_EVENTS,
    AgentEvent,
    AgentEventType,
    AuditEventType,
    EventAck,
    EventPublisher,
    EventValidationError,
    InvalidTokenError,
    TaskEventType,
    WorkflowEvent,
    WorkflowEventType,
    correlation_scope,
    current_correlation_id,
    ensure_event_streams,
    parse_event,
    stream_spec,
)
from syncmsg.jetstream import PubAck, StreamSpec

TENANT = UUID("9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f")
BAD_TOKENS = ["", "a.b", ".", "plan*", "*", ">", "plan>", "pl an", " planner", "planner\n", "\t"]


def publish_one(pub: EventPublisher, family: str, event_type: Any, **over: Any) -> EventAck:
    if family == "agent":
        fields = {"agent_id": uuid4(), "agent_type": "planner", "payload": {"n": 1}}
        return pub.publish_agent_event(TENANT, type=event_type, **{**fields, **over})
    if family == "workflow":
        fields = {"workflow_id": uuid4(), "step_id": "s1", "payload": {"n": 1}}
        return pub.publish_workflow_event(TENANT, type=event_type, **{**fields, **over})
    if family == "task":
        fields = {"task_id": uuid4(), "task_type": "email", "payload": {"n": 1}}
        return pub.publish_task_event(TENANT, type=event_type, **{**fields, **over})
    fields = {"action": "read", "resource_type": "invoice", "resource_id": "inv-1", "metadata": {}}
    return pub.publish_audit_event(TENANT, type=event_type, **{**fields, **over})


EXPECTED = [
    *[("agent", t, f"agent.planner.{t.value}", AGENT_EVENTS.name) for t in AgentEventType],
    *[("workflow", t, f"workflow.{t.value}", AGENT_EVENTS.name) for t in WorkflowEventType],
    *[("task", t, f"task.email.{t.value}", TASK_EVENTS.name) for t in TaskEventType],
    *[("audit", t, f"audit.{t.value}", AUDIT_EVENTS.name) for t in AuditEventType],
]


# ---------------------------------------------------------------- without a server
# Every check below fails before the client is used: an unconnected client proves it.


@pytest.fixture
def offline() -> EventPublisher:
    return EventPublisher(syncmsg.Client(), source="unit")


@pytest.mark.parametrize(
    "tenant", [None, "", "not-a-uuid", "{9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f}", 42]
)
def test_a_missing_or_invalid_tenant_is_an_error(offline: EventPublisher, tenant: Any) -> None:
    with pytest.raises(EventValidationError, match="tenant_id") as info:
        offline.publish_task_event(tenant, type="task.created", task_id=uuid4(), task_type="email")
    assert info.value.errors[0]["loc"] == ("tenant_id",)


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_bad_agent_and_task_types_are_rejected_not_rewritten(
    offline: EventPublisher, token: str
) -> None:
    with pytest.raises(InvalidTokenError, match="agentType"):
        offline.publish_agent_event(
            TENANT, type="agent.started", agent_id=uuid4(), agent_type=token
        )
    with pytest.raises(InvalidTokenError, match="taskType"):
        offline.publish_task_event(TENANT, type="task.created", task_id=uuid4(), task_type=token)


def test_wrong_family_type_and_bad_fields_are_validation_errors(offline: EventPublisher) -> None:
    with pytest.raises(EventValidationError, match="type"):
        offline.publish_agent_event(TENANT, type="task.created", agent_id=uuid4(), agent_type="a")
    with pytest.raises(EventValidationError, match="agent_id"):
        offline.publish_agent_event(TENANT, type="agent.started", agent_id="nope", agent_type="a")
    with pytest.raises(EventValidationError, match="payload"):
        offline.publish_agent_event(
            TENANT,
            type="agent.started",
            agent_id=uuid4(),
            agent_type="a",
            payload={"x": float("nan")},
        )
    with pytest.raises(EventValidationError, match="correlation_id"):
        offline.publish_workflow_event(
            TENANT, type="workflow.started", workflow_id=uuid4(), correlation_id="nope"
        )
    with pytest.raises(EventValidationError, match="resource_id"):
        offline.publish_audit_event(
            TENANT,
            type="audit.access",
            action="a",
            resource_type="r",
            resource_id=5,  # type: ignore[arg-type]
        )


def test_publisher_arguments_are_checked() -> None:
    client = syncmsg.Client()
    with pytest.raises(ValueError, match="source"):
        EventPublisher(client, source="")
    with pytest.raises(TypeError, match="codec"):
        EventPublisher(client, codec=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        EventPublisher(client, timeout=0)
    assert EventPublisher(client).source == "aigentflow-api"


def test_stream_specs_follow_the_definitions() -> None:
    spec = stream_spec(AUDIT_EVENTS)
    assert isinstance(spec, StreamSpec)
    assert spec.name == "AUDIT_EVENTS"
    assert spec.subjects == ("audit.>",)
    assert spec.max_age == timedelta(days=365)
    assert spec.max_bytes == 10 * 1024**3
    assert spec.to_api()["max_age"] == AUDIT_EVENTS.to_api_config()["max_age"]
    assert EVENT_DEAD_LETTERS.subjects == ("events.dlq.>",)


def test_correlation_scope_sets_and_restores() -> None:
    first, second = uuid4(), uuid4()
    assert current_correlation_id() is None
    with correlation_scope(first):
        assert current_correlation_id() == first
        with correlation_scope(str(second)):
            assert current_correlation_id() == second
        with correlation_scope(None):
            assert current_correlation_id() is None
        assert current_correlation_id() == first
    assert current_correlation_id() is None
    seen: list[object] = []
    with correlation_scope(first):
        # A new thread starts with an empty context.
        thread = threading.Thread(target=lambda: seen.append(current_correlation_id()))
        thread.start()
        thread.join(5)
    assert seen == [None]
    with pytest.raises(ValueError), correlation_scope("not-a-uuid"):
        pass


# ---------------------------------------------------------------- against nats-server


def test_every_event_type_lands_on_its_exact_subject_in_its_stream(
    event_streams: syncmsg.Client,
) -> None:
    client = event_streams
    js = client.jetstream()
    pub = EventPublisher(client, source="py-tests")
    acks = []
    for family, event_type, subject, stream in EXPECTED:
        ack = publish_one(pub, family, event_type)
        assert isinstance(ack, EventAck)
        assert isinstance(ack, PubAck)
        assert (ack.stream, ack.duplicate) == (stream, False)
        acks.append((ack, subject))
    for ack, subject in acks:
        stored = js.get_msg(ack.stream, ack.seq, timeout=5.0)
        assert stored.subject == subject
        assert stored.headers is not None
        assert ack.event is not None
        assert stored.headers["Nats-Msg-Id"] == str(ack.event.id)
        event = parse_event(stored.data, subject=stored.subject)
        assert event == ack.event
        assert event.source == "py-tests"
        assert event.tenant_id == TENANT
    # And nothing else went anywhere: each stream holds exactly its events.
    for stream in (AGENT_EVENTS, TASK_EVENTS, AUDIT_EVENTS):
        count = sum(1 for _, _, _, name in EXPECTED if name == stream.name)
        assert js.stream_info(stream.name, timeout=5.0).state.messages == count


def test_events_are_seen_on_their_subject_by_a_core_subscription(
    event_streams: syncmsg.Client,
) -> None:
    client = event_streams
    subs = [client.subscribe_sync(f) for f in ("agent.>", "workflow.>", "task.>", "audit.>")]
    try:
        pub = EventPublisher(client)
        for family, event_type, _, _ in EXPECTED:
            publish_one(pub, family, event_type)
        received = []
        for sub, family in zip(subs, ("agent", "workflow", "task", "audit"), strict=True):
            count = sum(1 for f, _, _, _ in EXPECTED if f == family)
            received += [sub.next_msg(timeout=5.0).subject for _ in range(count)]
        assert received == [subject for _, _, subject, _ in EXPECTED]
    finally:
        for sub in subs:
            sub.unsubscribe()


def test_the_event_id_is_the_msg_id_so_a_republish_is_a_duplicate(
    event_streams: syncmsg.Client,
) -> None:
    pub = EventPublisher(event_streams)
    first = publish_one(pub, "task", "task.created")
    assert first.event is not None
    again = pub.publish(first.event)
    assert again.duplicate is True
    assert (again.stream, again.seq) == (first.stream, first.seq)
    info = event_streams.jetstream().stream_info(TASK_EVENTS.name, timeout=5.0)
    assert info.state.messages == 1


def test_rejected_tokens_publish_nothing(event_streams: syncmsg.Client) -> None:
    pub = EventPublisher(event_streams)
    for token in BAD_TOKENS:
        with pytest.raises(InvalidTokenError):
            publish_one(pub, "agent", "agent.started", agent_type=token)
        with pytest.raises(InvalidTokenError):
            publish_one(pub, "task", "task.created", task_type=token)
    js = event_streams.jetstream()
    assert js.stream_info(AGENT_EVENTS.name, timeout=5.0).state.messages == 0
    assert js.stream_info(TASK_EVENTS.name, timeout=5.0).state.messages == 0


def test_explicit_and_scoped_correlation(event_streams: syncmsg.Client) -> None:
    pub = EventPublisher(event_streams)
    explicit, scoped = uuid4(), uuid4()
    assert publish_one(pub, "audit", "audit.access").event.correlation_id is None  # type: ignore[union-attr]
    ack = publish_one(pub, "audit", "audit.access", correlation_id=explicit)
    assert ack.event is not None and ack.event.correlation_id == explicit
    with correlation_scope(scoped):
        assert publish_one(pub, "audit", "audit.access").event.correlation_id == scoped  # type: ignore[union-attr]
        ack = publish_one(pub, "audit", "audit.access", correlation_id=explicit)
        assert ack.event is not None and ack.event.correlation_id == explicit
        # A prebuilt event without a correlation takes the scope's; one with keeps its own.
        built = WorkflowEvent(
            source="py", tenant_id=TENANT, type="workflow.started", workflow_id=uuid4(), payload={}
        )
        assert pub.publish(built).event.correlation_id == scoped  # type: ignore[union-attr]
        kept = built.model_copy(update={"correlation_id": explicit, "id": uuid4()})
        assert pub.publish(kept).event.correlation_id == explicit  # type: ignore[union-attr]
    js = event_streams.jetstream()
    stored = js.get_msg(AUDIT_EVENTS.name, 3, timeout=5.0)
    assert json.loads(stored.data)["correlationId"] == str(scoped)


def test_publish_without_streams_fails_instead_of_losing_the_event(
    no_event_streams: syncmsg.Client,
) -> None:
    client = no_event_streams
    impatient = client.jetstream(no_responders_wait=0.2)
    pub = EventPublisher(client, js=impatient)
    with pytest.raises(syncmsg.NoRespondersError):
        publish_one(pub, "workflow", "workflow.started", timeout=2.0)


def test_ensure_event_streams_creates_then_leaves_or_repairs_them(
    no_event_streams: syncmsg.Client,
) -> None:
    client = no_event_streams
    js = client.jetstream()
    # What the document's TypeScript ensureStreams() creates on servers that ignore its
    # camelCase maxAge/maxBytes/replicas (nats.js's fields are snake_case): no limits.
    js.ensure_stream(StreamSpec(name="TASK_EVENTS", subjects=["task.>"]), timeout=5.0)
    infos = {i.name: i for i in ensure_event_streams(client, timeout=5.0)}
    assert set(infos) == {"AGENT_EVENTS", "TASK_EVENTS", "AUDIT_EVENTS", "EVENT_DEAD_LETTERS"}
    assert infos["AGENT_EVENTS"].action == "created"
    assert infos["TASK_EVENTS"].action == "updated"
    task = js.stream_info("TASK_EVENTS", timeout=5.0).config
    assert task.max_age == timedelta(days=30)
    assert task.max_bytes == 5 * 1024**3
    agent = js.stream_info("AGENT_EVENTS", timeout=5.0).config
    assert set(agent.subjects) == {"agent.>", "workflow.>"}
    assert (agent.max_age, agent.max_bytes, agent.replicas) == (timedelta(days=7), 1024**3, 1)
    again = ensure_event_streams(client, dead_letters=False, timeout=5.0)
    assert [i.name for i in again] == ["AGENT_EVENTS", "TASK_EVENTS", "AUDIT_EVENTS"]
    assert all(i.action in ("unchanged", "created") for i in again)
    for info in again:
        assert js.stream_info(info.name, timeout=5.0).config == info.config


def test_events_built_in_python_publish_unchanged(event_streams: syncmsg.Client) -> None:
    event = AgentEvent(
        source="relay",
        tenant_id=TENANT,
        type="agent.progress",
        agent_id=uuid4(),
        agent_type="übersetzer",
        payload={"pct": 50},
    )
    ack = EventPublisher(event_streams).publish(event)
    stored = event_streams.jetstream().get_msg(ack.stream, ack.seq, timeout=5.0)
    assert stored.subject == "agent.übersetzer.agent.progress"
    assert stored.data == event.to_wire()

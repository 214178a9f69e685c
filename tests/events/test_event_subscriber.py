"""EventSubscriber against nats-server: consumers, wildcard, error isolation, correlation,
retries, dead letters."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
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
    AuditEvent,
    EventPublisher,
    EventRetryPolicy,
    EventSubscriber,
    EventValidationError,
    HandlerError,
    TaskEvent,
    WorkflowEvent,
    consumer_name,
    current_event,
)
from syncmsg.jetstream import (
    DEAD_LETTER_CONSUMER,
    DEAD_LETTER_LAST_ERROR,
    DEAD_LETTER_ORIGINAL_SUBJECT,
)

TENANT = UUID("9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f")


def agent_event(pub: EventPublisher, event_type: str = "agent.started", **over: Any) -> AgentEvent:
    fields: dict[str, Any] = {"agent_id": uuid4(), "agent_type": "planner", "payload": {}}
    ack = pub.publish_agent_event(TENANT, type=event_type, **{**fields, **over})
    assert isinstance(ack.event, AgentEvent)
    return ack.event


def task_event(pub: EventPublisher, event_type: str = "task.created", **over: Any) -> TaskEvent:
    fields: dict[str, Any] = {"task_id": uuid4(), "task_type": "email", "payload": {}}
    ack = pub.publish_task_event(TENANT, type=event_type, **{**fields, **over})
    assert isinstance(ack.event, TaskEvent)
    return ack.event


def dead_letters(
    client: syncmsg.Client, expected: int, wait_until: Callable[..., None]
) -> list[syncmsg.Msg]:
    js = client.jetstream()
    wait_until(
        lambda: js.stream_info(EVENT_DEAD_LETTERS.name, timeout=5.0).state.messages >= expected
    )
    assert js.stream_info(EVENT_DEAD_LETTERS.name, timeout=5.0).state.messages == expected
    return [js.get_msg(EVENT_DEAD_LETTERS.name, seq, timeout=5.0) for seq in range(1, expected + 1)]


def settled(sub: EventSubscriber, family: str) -> Callable[[], bool]:
    """True once the family's consumer has nothing pending or unacknowledged."""
    subscription = sub.subscriptions[family]

    def check() -> bool:
        info = subscription.consumer_info(timeout=5.0)
        return info.num_pending == 0 and info.num_ack_pending == 0

    return check


# ---------------------------------------------------------------- without a server


def test_consumer_names_follow_the_document() -> None:
    sub = EventSubscriber(syncmsg.Client())
    assert sub.consumer_names == {
        "agent": "api-agent-consumer",
        "workflow": "api-workflow-consumer",
        "task": "api-task-consumer",
        "audit": "api-audit-consumer",
    }
    assert consumer_name("billing", "task") == "billing-task-consumer"
    custom = EventSubscriber(
        syncmsg.Client(), service="django", consumer_names={"audit": "compliance-audit"}
    )
    assert custom.consumer_names["agent"] == "django-agent-consumer"
    assert custom.consumer_names["audit"] == "compliance-audit"
    assert custom.dead_letter_subject("audit") == "events.dlq.compliance-audit"


def test_bad_subscriber_arguments_are_refused() -> None:
    client = syncmsg.Client()
    with pytest.raises(syncmsg.InvalidSubjectError):
        EventSubscriber(client, service="my service")
    with pytest.raises(syncmsg.InvalidSubjectError):
        EventSubscriber(client, consumer_names={"agent": "a.b"})
    with pytest.raises(ValueError, match="family"):
        EventSubscriber(client, consumer_names={"agents": "x"})
    with pytest.raises(syncmsg.InvalidSubjectError):
        EventSubscriber(client, dead_letter_prefix="dlq.>")
    with pytest.raises(ValueError, match="workers"):
        EventSubscriber(client, workers=0)
    with pytest.raises(TypeError, match="retry"):
        EventSubscriber(client, retry=3)  # type: ignore[arg-type]
    sub = EventSubscriber(client)
    with pytest.raises(ValueError, match="not a agent event type"):
        sub.on_agent_event("task.created", print)
    with pytest.raises(ValueError, match="not a task event type"):
        sub.on_task_event("created", print)
    with pytest.raises(TypeError):
        sub.on_audit_event("*", "not callable")  # type: ignore[arg-type]


def test_retry_policy_is_validated() -> None:
    assert EventRetryPolicy().max_deliver > len(EventRetryPolicy().backoff)
    with pytest.raises(ValueError):
        EventRetryPolicy(max_deliver=0)
    with pytest.raises(ValueError):
        EventRetryPolicy(max_deliver=2, backoff=(1.0, 2.0))
    with pytest.raises(ValueError):
        EventRetryPolicy(backoff=(1.0, -1.0))
    assert EventRetryPolicy(max_deliver=1, backoff=()).max_deliver == 1


# ---------------------------------------------------------------- against nats-server


def test_consumers_are_durable_with_the_documents_names_streams_and_filters(
    event_streams: syncmsg.Client, subscribers: list[EventSubscriber]
) -> None:
    sub = EventSubscriber(event_streams)
    subscribers.append(sub)
    for register in (
        sub.on_agent_event,
        sub.on_workflow_event,
        sub.on_task_event,
        sub.on_audit_event,
    ):
        register("*", lambda event: None)
    sub.start(timeout=5.0)
    js = event_streams.jetstream()
    expected = {
        "agent": ("api-agent-consumer", AGENT_EVENTS.name, "agent.>"),
        "workflow": ("api-workflow-consumer", AGENT_EVENTS.name, "workflow.>"),
        "task": ("api-task-consumer", TASK_EVENTS.name, "task.>"),
        "audit": ("api-audit-consumer", AUDIT_EVENTS.name, "audit.>"),
    }
    assert set(sub.subscriptions) == set(expected)
    for durable, stream, subject in expected.values():
        info = js.consumer_info(stream, durable, timeout=5.0)
        assert (info.durable, info.filter_subject) == (durable, subject)
        assert info.config["ack_policy"] == "explicit"


def test_only_families_with_handlers_get_a_consumer_and_late_ones_join(
    event_streams: syncmsg.Client, subscribers: list[EventSubscriber], inbox: Any
) -> None:
    sub = EventSubscriber(event_streams, service="late")
    subscribers.append(sub)
    got = inbox()
    sub.on_task_event("task.created", got)
    sub.start(timeout=5.0)
    assert set(sub.subscriptions) == {"task"}
    sub.on_agent_event("agent.started", got)  # after start: its consumer starts now
    assert set(sub.subscriptions) == {"task", "agent"}
    pub = EventPublisher(event_streams)
    sent = {agent_event(pub).id, task_event(pub).id}
    assert {e.id for e in got.take(2)} == sent


def test_wildcard_handlers_see_every_type_and_specific_ones_only_theirs(
    event_streams: syncmsg.Client, subscribers: list[EventSubscriber], inbox: Any
) -> None:
    sub = EventSubscriber(event_streams)
    subscribers.append(sub)
    started, every = inbox(), inbox()
    sub.on_agent_event("agent.started", lambda e: started((e.type.value, e.id)))
    sub.on_agent_event("*", lambda e: every((e.type.value, e.id)))
    sub.start(timeout=5.0)
    pub = EventPublisher(event_streams)
    events = [agent_event(pub, t) for t in ("agent.started", "agent.failed", "agent.progress")]
    assert every.take(3) == [(e.type.value, e.id) for e in events]
    assert started.get() == ("agent.started", events[0].id)
    # Ordered (one worker): everything after the last event has been handled.
    assert started.empty()


def test_one_failing_handler_is_logged_and_does_not_stop_the_others(
    event_streams: syncmsg.Client,
    subscribers: list[EventSubscriber],
    inbox: Any,
    wait_until: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    errors, before, after, every = inbox(), inbox(), inbox(), inbox()

    def broken(event: AgentEvent) -> None:
        raise RuntimeError(f"boom on {event.id}")

    sub = EventSubscriber(event_streams, error_callback=lambda exc, ev: errors((exc, ev)))
    subscribers.append(sub)
    sub.on_agent_event("agent.started", lambda e: before(e.id))
    sub.on_agent_event("agent.started", broken)
    sub.on_agent_event("agent.started", lambda e: after(e.id))
    sub.on_agent_event("*", lambda e: every(e.id))
    sub.start(timeout=5.0)
    pub = EventPublisher(event_streams)
    first, second = agent_event(pub), agent_event(pub)
    assert before.take(2) == [first.id, second.id]
    assert after.take(2) == [first.id, second.id]
    assert every.take(2) == [first.id, second.id]
    reported = errors.take(2)
    assert [str(exc) for exc, _ in reported] == [f"boom on {first.id}", f"boom on {second.id}"]
    assert [ev.id for _, ev in reported] == [first.id, second.id]
    # Without a retry policy the event is acked, as in the document: never redelivered.
    wait_until(settled(sub, "agent"))
    info = sub.subscriptions["agent"].consumer_info(timeout=5.0)
    assert info.num_redelivered == 0
    assert any(
        "handler" in r.getMessage() and str(first.id) in r.getMessage() and r.exc_info
        for r in caplog.records
    )
    assert sub.stats()["handler_errors"] == 2


def test_correlation_follows_the_chain_through_handlers(
    event_streams: syncmsg.Client, subscribers: list[EventSubscriber], inbox: Any
) -> None:
    client = event_streams
    pub = EventPublisher(client, source="orchestrator")
    worker_pub = EventPublisher(client, source="worker")
    seen_current, audits = inbox(), inbox()

    def on_task(event: TaskEvent) -> None:
        seen_current(current_event())
        # No correlation_id given: it carries the handled event's correlation.
        worker_pub.publish_agent_event(
            event.tenant_id, type="agent.started", agent_id=uuid4(), agent_type="planner"
        )

    def on_agent(event: AgentEvent) -> None:
        worker_pub.publish_audit_event(
            event.tenant_id,
            type="audit.access",
            action="agent.run",
            resource_type="agent",
            resource_id=str(event.agent_id),
        )

    sub = EventSubscriber(client, service="chain")
    subscribers.append(sub)
    sub.on_task_event("task.created", on_task)
    sub.on_agent_event("agent.started", on_agent)
    sub.on_audit_event("*", audits)
    sub.start(timeout=5.0)

    chain = uuid4()
    root = task_event(pub, correlation_id=chain)
    assert seen_current.get() == root
    audit = audits.get()
    assert isinstance(audit, AuditEvent)
    assert (audit.correlation_id, audit.source) == (chain, "worker")

    # A root event without a correlation id starts a chain named by its own id.
    bare = task_event(pub)
    assert bare.correlation_id is None
    assert audits.get().correlation_id == bare.id

    # An explicit correlation_id inside a handler wins.
    other = uuid4()
    sub.on_task_event(
        "task.assigned",
        lambda e: worker_pub.publish_audit_event(
            e.tenant_id,
            type="audit.security",
            action="x",
            resource_type="t",
            resource_id="1",
            correlation_id=other,
        ),
    )
    task_event(pub, "task.assigned", correlation_id=chain)
    assert audits.get().correlation_id == other
    # Outside handlers nothing leaks into the caller's context.
    assert task_event(pub).correlation_id is None
    assert audits.get().correlation_id is not None


def test_retry_policy_naks_with_backoff_then_dead_letters(
    event_streams: syncmsg.Client,
    subscribers: list[EventSubscriber],
    inbox: Any,
    wait_until: Callable[..., None],
) -> None:
    calls: dict[UUID, int] = {}
    lock = threading.Lock()
    flaky_done, errors = inbox(), inbox()

    def handler(event: TaskEvent) -> None:
        with lock:
            calls[event.id] = calls.get(event.id, 0) + 1
            count = calls[event.id]
        if event.payload.get("mode") == "flaky" and count >= 2:
            flaky_done(event.id)
            return
        raise RuntimeError(f"attempt {count} failed")

    sub = EventSubscriber(
        event_streams,
        service="retry",
        retry=EventRetryPolicy(max_deliver=3, backoff=(0.1, 0.2)),
        error_callback=lambda exc, ev: errors(ev.id if ev else None),
    )
    subscribers.append(sub)
    sub.on_task_event("*", handler)
    sub.start(timeout=5.0)
    pub = EventPublisher(event_streams)
    flaky = task_event(pub, payload={"mode": "flaky"})
    doomed = task_event(pub, payload={"mode": "always"})

    assert flaky_done.get() == flaky.id
    [letter] = dead_letters(event_streams, 1, wait_until)
    assert calls == {flaky.id: 2, doomed.id: 3}
    assert letter.headers is not None
    assert letter.subject == "events.dlq.retry-task-consumer"
    assert letter.headers[DEAD_LETTER_ORIGINAL_SUBJECT] == "task.email.task.created"
    assert letter.headers[DEAD_LETTER_CONSUMER] == "retry-task-consumer"
    assert letter.headers[DEAD_LETTER_LAST_ERROR].startswith("HandlerError: 1 of 1 handlers")
    assert "(delivery 3 of 3)" in letter.headers[DEAD_LETTER_LAST_ERROR]
    assert "attempt 3 failed" in letter.headers[DEAD_LETTER_LAST_ERROR]
    assert json.loads(letter.data)["id"] == str(doomed.id)
    wait_until(settled(sub, "task"))
    assert calls == {flaky.id: 2, doomed.id: 3}
    stats = sub.stats()
    assert (stats["retried"], stats["dead_lettered"], stats["handler_errors"]) == (3, 1, 4)
    assert stats["consumers"]["task"]["dead_lettered"] == 1
    # The delays travel with the naks: the consumer keeps its full ack wait.
    info = sub.subscriptions["task"].consumer_info(timeout=5.0)
    assert info.backoff == ()
    assert info.ack_wait is not None and info.ack_wait.total_seconds() == 30


def test_invalid_messages_are_dead_lettered_once_and_never_redelivered(
    event_streams: syncmsg.Client,
    subscribers: list[EventSubscriber],
    inbox: Any,
    wait_until: Callable[..., None],
) -> None:
    client = event_streams
    js = client.jetstream()
    handled, invalid = inbox(), inbox()
    sub = EventSubscriber(
        client,
        retry=EventRetryPolicy(max_deliver=5, backoff=(0.05,)),
        error_callback=lambda exc, ev: invalid(exc) if ev is None else None,
    )
    subscribers.append(sub)
    sub.on_agent_event("*", handled)
    sub.start(timeout=5.0)

    good = json.loads(json.dumps(_agent_wire()))
    no_tenant = {k: v for k, v in good.items() if k != "tenantId"}
    cases: list[tuple[str, bytes]] = [
        ("agent.planner.agent.started", b"not json at all"),
        ("agent.planner.agent.started", b"[1, 2, 3]"),
        ("agent.planner.agent.started", json.dumps(no_tenant).encode()),
        ("agent.planner.agent.started", json.dumps({**good, "tenantId": "nope"}).encode()),
        ("agent.planner.agent.started", json.dumps({**good, "type": "agent.exploded"}).encode()),
        # Valid event, wrong subject: it must not pose as another agent type.
        ("agent.impostor.agent.started", json.dumps(good).encode()),
        # A task event on an agent subject.
        ("agent.planner.agent.started", json.dumps(_task_wire()).encode()),
        ("agent.planner.agent.started", b"\xff\xfe"),
    ]
    for subject, data in cases:
        js.publish(subject, data, timeout=5.0)
    valid = json.dumps(good).encode()
    js.publish("agent.planner.agent.started", valid, timeout=5.0)

    assert handled.get().id == UUID(good["id"])
    letters = dead_letters(client, len(cases), wait_until)
    assert [m.data for m in letters] == [data for _, data in cases]
    for letter, (subject, _) in zip(letters, cases, strict=True):
        assert letter.headers is not None
        assert letter.headers[DEAD_LETTER_ORIGINAL_SUBJECT] == subject
        assert letter.headers[DEAD_LETTER_LAST_ERROR].startswith("EventValidationError: ")
        assert letter.headers["Syncmsg-Delivery-Count"] == "1"
    errors = invalid.take(len(cases))
    assert all(isinstance(e, EventValidationError) for e in errors)
    wait_until(settled(sub, "agent"))
    info = sub.subscriptions["agent"].consumer_info(timeout=5.0)
    assert info.num_redelivered == 0
    assert handled.empty()
    assert sub.stats()["invalid"] == len(cases)


def test_a_restarted_subscriber_continues_where_it_stopped(
    event_streams: syncmsg.Client, subscribers: list[EventSubscriber], inbox: Any
) -> None:
    got = inbox()
    sub = EventSubscriber(event_streams, service="restart")
    subscribers.append(sub)
    sub.on_workflow_event("*", got)
    sub.start(timeout=5.0)
    pub = EventPublisher(event_streams)
    first = pub.publish_workflow_event(TENANT, type="workflow.started", workflow_id=uuid4())
    assert got.get() == first.event
    sub.stop(timeout=5.0)
    assert not sub.is_running and sub.subscriptions == {}
    while_down = pub.publish_workflow_event(
        TENANT, type="workflow.step.started", workflow_id=uuid4(), step_id="s-1"
    )
    sub.start(timeout=5.0)
    received = got.get()
    assert isinstance(received, WorkflowEvent)
    assert received == while_down.event
    assert received.step_id == "s-1"
    assert got.empty()


def test_each_service_gets_every_event_and_instances_of_one_service_share(
    event_streams: syncmsg.Client,
    other_client: syncmsg.Client,
    subscribers: list[EventSubscriber],
    inbox: Any,
    wait_until: Callable[..., None],
) -> None:
    seen: dict[str, list[UUID]] = {"a1": [], "a2": [], "b": []}
    lock = threading.Lock()

    def recorder(name: str) -> Callable[[TaskEvent], None]:
        def record(event: TaskEvent) -> None:
            with lock:
                seen[name].append(event.id)

        return record

    for name, service, client in (
        ("a1", "svc-a", event_streams),
        ("a2", "svc-a", other_client),
        ("b", "svc-b", event_streams),
    ):
        sub = EventSubscriber(client, service=service)
        subscribers.append(sub)
        sub.on_task_event("*", recorder(name))
        sub.start(timeout=5.0)
    pub = EventPublisher(event_streams)
    sent = [task_event(pub).id for _ in range(40)]

    def done() -> bool:
        with lock:
            return len(seen["b"]) == 40 and len(seen["a1"]) + len(seen["a2"]) == 40

    wait_until(done)
    assert seen["b"] == sent
    assert sorted(seen["a1"] + seen["a2"], key=sent.index) == sent


def test_handler_errors_raise_handler_error_with_the_causes() -> None:
    err = HandlerError("2 failed", errors=[ValueError("a"), KeyError("b")])
    assert isinstance(err, syncmsg.SyncMsgError)
    assert [type(e) for e in err.errors] == [ValueError, KeyError]


def _agent_wire() -> dict[str, Any]:
    return {
        "id": str(uuid4()),
        "timestamp": "2026-01-02T03:04:05.678Z",
        "source": "aigentflow-api",
        "tenantId": str(TENANT),
        "type": "agent.started",
        "agentId": str(uuid4()),
        "agentType": "planner",
        "payload": {"k": "v"},
    }


def _task_wire() -> dict[str, Any]:
    return {
        "id": str(uuid4()),
        "timestamp": "2026-01-02T03:04:05.678Z",
        "source": "aigentflow-api",
        "tenantId": str(TENANT),
        "type": "task.created",
        "taskId": str(uuid4()),
        "taskType": "planner",
        "payload": {},
    }

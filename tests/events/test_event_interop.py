"""Interop with the TypeScript services, and encrypted events end to end, on nats-server."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

import syncmsg
from syncmsg.events import (
    EVENT_DEAD_LETTERS,
    KEY_ID_HEADER,
    AgentEvent,
    AuditEvent,
    EncryptingCodec,
    EventPublisher,
    EventSubscriber,
    MissingKeyError,
    PayloadCipher,
    TaskEvent,
    WorkflowEvent,
    parse_event,
    subject_for,
)
from syncmsg.jetstream import DEAD_LETTER_LAST_ERROR

FIXTURES = Path(__file__).parent / "fixtures"
TENANT = UUID("9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f")
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
ISO_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
NAMES = ["agent_event.json", "workflow_event.json", "task_event.json", "audit_event.json"]


def fixture(name: str) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return obj


def js_stringify(obj: Any) -> bytes:
    """What ``JSON.stringify`` writes: compact, non-ASCII as raw UTF-8."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def ts_subject(obj: dict[str, Any]) -> str:
    """The subject the TypeScript EventPublisherService builds (design doc 34.5)."""
    family = obj["type"].split(".")[0]
    if family == "agent":
        return f"agent.{obj['agentType']}.{obj['type']}"
    if family == "task":
        return f"task.{obj['taskType']}.{obj['type']}"
    return f"{family}.{obj['type']}"


def subscribe_all(
    client: syncmsg.Client, got: Callable[[Any], None], **options: Any
) -> EventSubscriber:
    sub = EventSubscriber(client, **options)
    sub.on_agent_event("*", got)
    sub.on_workflow_event("*", got)
    sub.on_task_event("*", got)
    sub.on_audit_event("*", got)
    return sub.start(timeout=5.0)


@pytest.mark.parametrize("how", ["core", "jetstream"])
def test_events_published_the_typescript_way_are_consumed(
    event_streams: syncmsg.Client, subscribers: list[EventSubscriber], inbox: Any, how: str
) -> None:
    client = event_streams
    got = inbox()
    subscribers.append(subscribe_all(client, got))
    js = client.jetstream()
    for name in NAMES:
        obj = fixture(name)
        # nats.js: this.js.publish(subject, sc.encode(JSON.stringify(fullEvent))), no headers.
        if how == "core":
            client.publish(ts_subject(obj), js_stringify(obj))
        else:
            js.publish(ts_subject(obj), js_stringify(obj), timeout=5.0)
    client.flush(timeout=5.0)
    received = {event.id: event for event in got.take(len(NAMES))}
    for name in NAMES:
        obj = fixture(name)
        event = received[UUID(obj["id"])]
        assert (
            type(event)
            is {
                "agent": AgentEvent,
                "workflow": WorkflowEvent,
                "task": TaskEvent,
                "audit": AuditEvent,
            }[obj["type"].split(".")[0]]
        )
        assert event.to_wire_dict() == obj
        assert event.tenant_id == UUID(obj["tenantId"])
    assert got.empty()


def test_events_from_the_publisher_have_the_fixture_shape(event_streams: syncmsg.Client) -> None:
    client = event_streams
    js = client.jetstream()
    pub = EventPublisher(client)  # source "aigentflow-api", like the document's publisher
    correlation = uuid4()
    acks = {
        "agent_event.json": pub.publish_agent_event(
            TENANT,
            type="agent.started",
            agent_id=uuid4(),
            agent_type="planner",
            payload={"goal": "x", "note": "Grüße ✓"},
            correlation_id=correlation,
        ),
        "workflow_event.json": pub.publish_workflow_event(
            TENANT,
            type="workflow.step.completed",
            workflow_id=uuid4(),
            step_id="extract-invoices",
            payload={"durationMs": 1},
        ),
        "task_event.json": pub.publish_task_event(
            TENANT,
            type="task.assigned",
            task_id=uuid4(),
            task_type="email",
            payload={"assignee": "agent-42"},
            correlation_id=correlation,
        ),
        "audit_event.json": pub.publish_audit_event(
            TENANT,
            type="audit.mutation",
            action="invoice.update",
            resource_type="invoice",
            resource_id="inv-2026-0042",
            user_id=uuid4(),
            metadata={"ip": "203.0.113.7"},
        ),
    }
    for name, ack in acks.items():
        expected = fixture(name)
        stored = js.get_msg(ack.stream, ack.seq, timeout=5.0)
        assert stored.subject == ts_subject(expected)
        obj = json.loads(stored.data)
        # Same keys, in the same order, each value of the same JSON type.
        assert list(obj) == list(expected)
        for key, value in expected.items():
            assert type(obj[key]) is type(value), key
        for key in ("id", "tenantId", "correlationId", "agentId", "workflowId", "taskId", "userId"):
            if key in obj:
                assert UUID_RE.fullmatch(obj[key]) or obj[key] == str(TENANT), key
        assert ISO_RE.fullmatch(obj["timestamp"])
        assert obj["source"] == "aigentflow-api"
        assert obj["tenantId"] == str(TENANT)
        # Validates as the zod schema does (strict mode), and is exactly JSON.stringify's text.
        event = parse_event(stored.data, subject=stored.subject, strict=True)
        assert stored.data == js_stringify(obj) == event.to_wire()
        assert stored.headers is not None and stored.headers["Nats-Msg-Id"] == obj["id"]
        assert [k for k in stored.headers if not k.startswith("Nats-")] == []


def test_encrypted_events_flow_end_to_end(
    event_streams: syncmsg.Client,
    subscribers: list[EventSubscriber],
    inbox: Any,
    wait_until: Callable[..., None],
) -> None:
    pytest.importorskip("cryptography")
    client = event_streams
    js = client.jetstream()
    key = PayloadCipher.generate_key()
    codec = EncryptingCodec(PayloadCipher({"k-1": key}))
    got = inbox()
    subscribers.append(subscribe_all(client, got, service="secure", codec=codec))
    pub = EventPublisher(client, codec=codec)
    secret = {"ssn": "078-05-1120", "nested": {"list": [1, 2.5, None]}}
    task = pub.publish_task_event(
        TENANT, type="task.created", task_id=uuid4(), task_type="email", payload=secret
    )
    audit = pub.publish_audit_event(
        TENANT,
        type="audit.security",
        action="login",
        resource_type="user",
        resource_id="u1",
        metadata=secret,
    )
    received = {e.id: e for e in got.take(2)}
    assert received[task.event.id].payload == secret  # type: ignore[union-attr]
    assert received[audit.event.id].metadata == secret  # type: ignore[union-attr]
    assert received[task.event.id] == task.event  # type: ignore[union-attr]

    # On the wire: the envelope, readable routing fields, the key id header.
    stored = js.get_msg(task.stream, task.seq, timeout=5.0)
    assert stored.subject == subject_for(task.event)  # type: ignore[arg-type]
    obj = json.loads(stored.data)
    assert set(obj["payload"]) == {"enc", "v", "kid", "nonce", "ct"}
    assert b"078-05-1120" not in stored.data
    assert obj["tenantId"] == str(TENANT) and obj["type"] == "task.created"
    assert stored.headers is not None
    assert stored.headers[KEY_ID_HEADER] == "k-1"
    assert stored.headers["Nats-Msg-Id"] == obj["id"]

    # A service that lacks the key dead-letters the event instead of looping on it.
    wrong = EncryptingCodec(PayloadCipher({"k-other": PayloadCipher.generate_key()}))
    blind = EventSubscriber(client, service="blind", codec=wrong)
    subscribers.append(blind)
    never = inbox()
    blind.on_task_event("*", never)
    blind.start(timeout=5.0)
    wait_until(lambda: js.stream_info(EVENT_DEAD_LETTERS.name, timeout=5.0).state.messages == 1)
    letter = js.get_msg(EVENT_DEAD_LETTERS.name, 1, timeout=5.0)
    assert letter.headers is not None
    assert letter.headers[DEAD_LETTER_LAST_ERROR].startswith(MissingKeyError.__name__)
    assert never.empty()

    # A plaintext event is refused by an encrypting subscriber (no silent downgrade).
    EventPublisher(client).publish_task_event(
        TENANT, type="task.failed", task_id=uuid4(), task_type="email", payload={"x": 1}
    )
    # Dead-lettered by both: "secure" (plaintext refused) and "blind".
    wait_until(lambda: js.stream_info(EVENT_DEAD_LETTERS.name, timeout=5.0).state.messages >= 3)
    assert js.stream_info(EVENT_DEAD_LETTERS.name, timeout=5.0).state.messages == 3
    assert got.empty()


def test_the_encrypted_fixture_from_a_typescript_peer_is_decrypted(
    event_streams: syncmsg.Client, subscribers: list[EventSubscriber], inbox: Any
) -> None:
    pytest.importorskip("cryptography")
    client = event_streams
    codec = EncryptingCodec(PayloadCipher({"k-2026-01": bytes(range(32))}))
    got = inbox()
    subscribers.append(subscribe_all(client, got, service="secure-fixture", codec=codec))
    obj = fixture("agent_event_encrypted.json")
    client.publish(ts_subject(obj), js_stringify(obj), headers={KEY_ID_HEADER: "k-2026-01"})
    event = got.get()
    assert event.to_wire_dict() == fixture("agent_event.json")

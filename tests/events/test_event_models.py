"""Event models against fixtures written by hand from the design document's zod schemas."""

from __future__ import annotations

import copy
import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from syncmsg._errors import PayloadError
from syncmsg.events import (
    EVENT_MODELS,
    AgentEvent,
    AgentEventType,
    AuditEvent,
    AuditEventType,
    BaseMessage,
    EventValidationError,
    TaskEvent,
    TaskEventType,
    WorkflowEvent,
    WorkflowEventType,
    event_family,
    parse_event,
)

FIXTURES = Path(__file__).parent / "fixtures"
TENANT = UUID("9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f")
FAMILY_FIXTURES = {
    "agent_event.json": AgentEvent,
    "workflow_event.json": WorkflowEvent,
    "task_event.json": TaskEvent,
    "audit_event.json": AuditEvent,
}


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def stringify(obj: Any) -> bytes:
    """What JSON.stringify writes for a parsed JSON value (compact, raw UTF-8)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def variant(case: dict[str, Any]) -> dict[str, Any]:
    obj: dict[str, Any] = copy.deepcopy(load(case["fixture"]))
    for key in case.get("unset", []):
        del obj[key]
    obj.update(case.get("set", {}))
    return obj


def make(model: type[BaseMessage], **fields: Any) -> Any:
    defaults: dict[str, dict[str, Any]] = {
        "agent": {"type": "agent.started", "agent_id": uuid4(), "agent_type": "planner"},
        "workflow": {"type": "workflow.started", "workflow_id": uuid4()},
        "task": {"type": "task.created", "task_id": uuid4(), "task_type": "email"},
        "audit": {
            "type": "audit.access",
            "action": "read",
            "resource_type": "invoice",
            "resource_id": "inv-1",
            "metadata": {},
        },
    }
    data: dict[str, Any] = {"source": "py", "tenant_id": TENANT, **defaults[model.family]}
    if model.body_field == "payload":
        data["payload"] = {}
    data.update(fields)
    return model(**data)


# --------------------------------------------------------------------- fixtures


@pytest.mark.parametrize(("name", "model"), FAMILY_FIXTURES.items())
def test_fixture_parses_and_is_written_back_byte_for_byte(
    name: str, model: type[BaseMessage]
) -> None:
    raw = (FIXTURES / name).read_bytes()
    event = model.from_wire(raw)
    # The TypeScript publisher writes base fields then event fields; so do we.
    assert event.to_wire() == stringify(load(name))
    assert parse_event(raw) == event
    assert type(parse_event(raw)) is model


def test_agent_fixture_fields() -> None:
    event = AgentEvent.from_wire((FIXTURES / "agent_event.json").read_bytes())
    assert event.id == UUID("3b241101-e2bb-4255-8caf-4136c566a962")
    assert event.timestamp == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    assert event.source == "aigentflow-api"
    assert event.tenant_id == TENANT
    assert event.correlation_id == UUID("c0a80101-0000-4000-8000-000000000001")
    assert event.type is AgentEventType.STARTED
    assert event.agent_type == "planner"
    assert event.payload["context"] == {"dryRun": False, "parent": None}
    assert event.model_extra == {}


def test_audit_fixture_fields() -> None:
    event = AuditEvent.from_wire((FIXTURES / "audit_event.json").read_bytes())
    assert event.type is AuditEventType.MUTATION
    assert (event.action, event.resource_type, event.resource_id) == (
        "invoice.update",
        "invoice",
        "inv-2026-0042",
    )
    assert event.user_id == UUID("e3b0c442-98fc-4c14-9afb-f4c8996fb924")
    assert event.metadata["changes"] == {"amount": [100, 120]}


@pytest.mark.parametrize(
    "case", load("valid_variants.json"), ids=lambda c: c["name"].replace(" ", "-")
)
def test_zod_accepts_so_we_accept(case: dict[str, Any]) -> None:
    obj = variant(case)
    model = FAMILY_FIXTURES[case["fixture"]]
    event = model.from_wire(stringify(obj))
    expected = {**obj, **case.get("wire", {})}
    assert json.loads(event.to_wire()) == expected
    assert model.from_wire(event.to_wire()) == event


@pytest.mark.parametrize(
    "case", load("invalid_cases.json"), ids=lambda c: c["name"].replace(" ", "-")
)
def test_zod_refuses_so_we_refuse(case: dict[str, Any]) -> None:
    obj = variant(case)
    model = FAMILY_FIXTURES[case["fixture"]]
    with pytest.raises(EventValidationError) as info:
        model.from_wire(stringify(obj))
    assert isinstance(info.value, PayloadError)
    locs = {".".join(str(p) for p in err["loc"]) for err in info.value.errors}
    assert case["loc"] in locs, str(info.value)
    assert case["loc"] in str(info.value)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"null",
        b"[]",
        b'"agent.started"',
        b"{",
        b"\xef\xbb\xbf{}",  # a byte-order mark: JSON.parse refuses it
        b"\xff\xfe{}",
        b'{"payload": NaN}',
        b'{"payload": Infinity}',
        b"{}",
        b'{"type": 5}',
        b'{"type": "order.created"}',
    ],
)
def test_not_an_event_at_all(raw: bytes) -> None:
    with pytest.raises(EventValidationError):
        parse_event(raw)
    with pytest.raises(EventValidationError):
        AgentEvent.from_wire(raw)


def test_error_messages_do_not_echo_payload_values() -> None:
    obj = load("agent_event.json")
    obj["payload"] = {"ssn": "123-45-6789"}
    obj["agentId"] = "secret-agent-name"
    with pytest.raises(EventValidationError) as info:
        AgentEvent.from_wire(stringify(obj))
    assert "secret-agent-name" not in str(info.value)
    assert "agentId" in str(info.value)
    assert all("input" not in err for err in info.value.errors)


def test_from_wire_accepts_str_bytearray_and_memoryview() -> None:
    raw = (FIXTURES / "task_event.json").read_bytes()
    expected = TaskEvent.from_wire(raw)
    assert TaskEvent.from_wire(raw.decode()) == expected
    assert TaskEvent.from_wire(bytearray(raw)) == expected
    assert TaskEvent.from_wire(memoryview(raw)) == expected


# --------------------------------------------------------------------- round trips


@pytest.mark.parametrize("kind", list(AgentEventType))
def test_every_agent_type_round_trips(kind: AgentEventType) -> None:
    event = make(AgentEvent, type=kind.value, payload={"k": kind.value})
    assert event.type is kind
    back = AgentEvent.from_wire(event.to_wire())
    assert back == event
    assert json.loads(event.to_wire())["type"] == kind.value


@pytest.mark.parametrize("kind", list(WorkflowEventType))
def test_every_workflow_type_round_trips(kind: WorkflowEventType) -> None:
    event = make(WorkflowEvent, type=kind, step_id="s1")
    assert WorkflowEvent.from_wire(event.to_wire()) == event
    assert json.loads(event.to_wire())["type"] == kind.value


@pytest.mark.parametrize("kind", list(TaskEventType))
def test_every_task_type_round_trips(kind: TaskEventType) -> None:
    event = make(TaskEvent, type=kind)
    assert TaskEvent.from_wire(event.to_wire()) == event
    assert json.loads(event.to_wire())["type"] == kind.value


@pytest.mark.parametrize("kind", list(AuditEventType))
def test_every_audit_type_round_trips(kind: AuditEventType) -> None:
    event = make(AuditEvent, type=kind, user_id=uuid4(), metadata={"ip": "203.0.113.7"})
    assert AuditEvent.from_wire(event.to_wire()) == event
    assert json.loads(event.to_wire())["type"] == kind.value


def test_enum_values_are_exactly_the_documents() -> None:
    assert [m.value for m in AgentEventType] == [
        "agent.started",
        "agent.completed",
        "agent.failed",
        "agent.progress",
        "agent.blocked",
    ]
    assert [m.value for m in WorkflowEventType] == [
        "workflow.started",
        "workflow.completed",
        "workflow.failed",
        "workflow.step.started",
        "workflow.step.completed",
    ]
    assert [m.value for m in TaskEventType] == [
        "task.created",
        "task.assigned",
        "task.started",
        "task.completed",
        "task.failed",
        "task.cancelled",
    ]
    assert [m.value for m in AuditEventType] == [
        "audit.access",
        "audit.mutation",
        "audit.security",
        "audit.compliance",
    ]
    assert str(WorkflowEventType.STEP_STARTED) == "workflow.step.started"


def test_wire_field_names_are_the_documents() -> None:
    def keys(model: type[BaseMessage]) -> list[str]:
        return [f.alias or n for n, f in model.model_fields.items()]

    base = ["id", "timestamp", "source", "tenantId", "correlationId"]
    assert keys(BaseMessage) == base
    assert keys(AgentEvent) == [*base, "type", "agentId", "agentType", "payload"]
    assert keys(WorkflowEvent) == [*base, "type", "workflowId", "stepId", "payload"]
    assert keys(TaskEvent) == [*base, "type", "taskId", "taskType", "payload"]
    assert keys(AuditEvent) == [
        *base,
        "type",
        "action",
        "resourceType",
        "resourceId",
        "userId",
        "metadata",
    ]


_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


_ALL_KEYS = {
    key
    for model in EVENT_MODELS.values()
    for name, field in model.model_fields.items()
    for key in (name, field.alias or name)
}


def _not_a_field(key: str) -> bool:
    return key not in _ALL_KEYS


@settings(max_examples=200, deadline=None)
@given(
    payload=st.dictionaries(st.text(), _JSON, max_size=6),
    family=st.sampled_from(["agent", "workflow", "task", "audit"]),
)
def test_arbitrary_json_payloads_round_trip(payload: dict[str, Any], family: str) -> None:
    model = EVENT_MODELS[family]
    event = make(model, **{model.body_field: payload})
    wire = event.to_wire()
    back = model.from_wire(wire)
    assert back == event
    assert back.to_wire() == wire
    assert json.loads(wire)[model.body_field] == payload


@settings(max_examples=100, deadline=None)
@given(extras=st.dictionaries(st.text(min_size=1).filter(_not_a_field), _JSON, max_size=4))
def test_unknown_fields_survive_a_round_trip(extras: dict[str, Any]) -> None:
    obj = {**load("workflow_event.json"), **extras}
    event = WorkflowEvent.from_wire(stringify(obj))
    assert json.loads(event.to_wire()) == obj
    assert event.model_extra == extras


# --------------------------------------------------------------------- unknown fields


def test_newer_peer_fields_are_kept_and_re_emitted() -> None:
    raw = (FIXTURES / "agent_event_newer_peer.json").read_bytes()
    event = AgentEvent.from_wire(raw)
    assert event.type is AgentEventType.PROGRESS
    assert event.model_extra == {
        "schemaVersion": 2,
        "trace": {"traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "sampled": True},
        "priority": None,
        "agent_id": "snake-case keys are not fields on the wire",
    }
    # The field itself comes from the camelCase key only.
    assert event.agent_id == UUID("5e802dbf-a7c7-406a-ae7b-58120a395dda")
    assert json.loads(event.to_wire()) == load("agent_event_newer_peer.json")
    # A null unknown field stays null (only the schema's optional fields are dropped).
    assert b'"priority":null' in event.to_wire()


def test_copy_keeps_unknown_fields() -> None:
    event = AgentEvent.from_wire((FIXTURES / "agent_event_newer_peer.json").read_bytes())
    moved = event.model_copy(update={"source": "relay"})
    assert json.loads(moved.to_wire())["schemaVersion"] == 2
    assert json.loads(moved.to_wire())["source"] == "relay"


def test_base_message_keeps_family_fields_as_unknown_fields() -> None:
    raw = (FIXTURES / "audit_event.json").read_bytes()
    base = BaseMessage.from_wire(raw)
    assert base.tenant_id == TENANT
    assert base.model_extra is not None
    assert base.model_extra["type"] == "audit.mutation"
    assert json.loads(base.to_wire()) == load("audit_event.json")


# --------------------------------------------------------------------- python side


def test_python_construction_defaults_and_camel_case_output() -> None:
    before = datetime.now(timezone.utc) - timedelta(milliseconds=1)
    event = make(TaskEvent, correlation_id=None)
    assert event.id.version == 4
    assert before <= event.timestamp <= datetime.now(timezone.utc)
    assert event.timestamp.microsecond % 1000 == 0
    wire = json.loads(event.to_wire())
    assert list(wire) == [
        "id",
        "timestamp",
        "source",
        "tenantId",
        "type",
        "taskId",
        "taskType",
        "payload",
    ]
    assert "correlationId" not in wire


def test_aliases_are_accepted_in_python_too() -> None:
    event = AgentEvent(
        source="py",
        tenantId=str(TENANT),
        type="agent.failed",
        agentId=str(uuid4()),
        agentType="planner",
        payload={},
    )
    assert event.tenant_id == TENANT


def test_model_dump_json_matches_to_wire() -> None:
    # The core client's generic encoder sends pydantic models with model_dump_json(by_alias).
    event = make(AuditEvent, user_id=None, metadata={"a": [1, 2.5]})
    assert event.model_dump_json(by_alias=True).encode() == event.to_wire()
    assert event.model_dump_json().encode() == event.to_wire()


def test_optional_fields_are_omitted_when_none() -> None:
    for event in (
        make(AgentEvent),
        make(WorkflowEvent),
        make(AuditEvent),
    ):
        wire = json.loads(event.to_wire())
        assert "correlationId" not in wire
        assert "stepId" not in wire
        assert "userId" not in wire
        assert None not in wire.values()


def test_uuids_are_written_lower_case() -> None:
    event = make(TaskEvent, tenant_id="9F1C2D3E-4B5A-4C6D-8E7F-0A1B2C3D4E5F")
    assert json.loads(event.to_wire())["tenantId"] == str(TENANT)


@pytest.mark.parametrize(
    "tenant",
    [None, "", "acme", "9f1c2d3e4b5a4c6d8e7f0a1b2c3d4e5f", 5, b"0123456789abcdef"],
)
def test_missing_or_invalid_tenant_is_an_error(tenant: Any) -> None:
    with pytest.raises(ValidationError, match="tenant"):
        make(AgentEvent, tenant_id=tenant)


def test_tenant_is_required() -> None:
    with pytest.raises(ValidationError, match=r"tenant_id|tenantId"):
        AgentEvent(source="py", type="agent.started", agent_id=uuid4(), agent_type="x", payload={})


def test_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        make(AgentEvent, timestamp=datetime(2026, 1, 2, 3, 4, 5))


def test_aware_timestamp_is_converted_to_utc_and_truncated() -> None:
    cet = timezone(timedelta(hours=1))
    event = make(AgentEvent, timestamp=datetime(2026, 1, 2, 4, 4, 5, 678999, tzinfo=cet))
    assert event.timestamp == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    assert json.loads(event.to_wire())["timestamp"] == "2026-01-02T03:04:05.678Z"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused(bad: float) -> None:
    with pytest.raises(ValidationError, match="NaN"):
        make(AgentEvent, payload={"x": [1, {"y": bad}]})


def test_non_string_keys_are_refused() -> None:
    with pytest.raises(ValidationError):
        make(AgentEvent, payload={1: "x"})
    with pytest.raises(ValidationError, match="keys must be strings"):
        make(AgentEvent, payload={"x": {1: "y"}})


def test_payload_must_be_a_mapping() -> None:
    with pytest.raises(ValidationError):
        make(AgentEvent, payload=[1, 2])


def test_strings_are_not_coerced() -> None:
    with pytest.raises(ValidationError):
        make(AgentEvent, agent_type=42)


def test_events_are_immutable() -> None:
    event = make(AgentEvent)
    with pytest.raises(ValidationError):
        event.source = "other"


def test_unserialisable_payload_value_is_a_clear_error() -> None:
    event = make(AgentEvent, payload={"x": object()})
    with pytest.raises(EventValidationError, match="cannot be written as JSON"):
        event.to_wire()


def test_non_json_python_values_are_converted_like_pydantic_json() -> None:
    uid = uuid4()
    event = make(TaskEvent, payload={"ref": uid, "tags": ("a", "b")})
    assert json.loads(event.to_wire())["payload"] == {"ref": str(uid), "tags": ["a", "b"]}


# --------------------------------------------------------------------- lenient reading


def test_lenient_mode_accepts_offsets_and_null_optionals() -> None:
    obj = load("agent_event.json")
    obj["timestamp"] = "2026-01-02T04:04:05.678901+01:00"
    obj["correlationId"] = None
    with pytest.raises(EventValidationError):
        AgentEvent.from_wire(stringify(obj))
    event = AgentEvent.from_wire(stringify(obj), strict=False)
    assert event.timestamp == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    assert event.correlation_id is None
    wire = json.loads(event.to_wire())
    assert wire["timestamp"] == "2026-01-02T03:04:05.678Z"
    assert "correlationId" not in wire


def test_lenient_mode_still_requires_the_tenant() -> None:
    obj = load("agent_event.json")
    obj["tenantId"] = None
    with pytest.raises(EventValidationError, match="tenantId"):
        AgentEvent.from_wire(stringify(obj), strict=False)


# --------------------------------------------------------------------- dispatch


@pytest.mark.parametrize(
    ("event_type", "model"),
    [
        ("agent.started", AgentEvent),
        ("workflow.step.completed", WorkflowEvent),
        ("task.cancelled", TaskEvent),
        ("audit.security", AuditEvent),
        ("agent.planner.agent.started", AgentEvent),
        (TaskEventType.CREATED, TaskEvent),
    ],
)
def test_event_family(event_type: str, model: type[BaseMessage]) -> None:
    assert event_family(event_type) is model


@pytest.mark.parametrize("event_type", ["", "orders.created", "Agent.started", "agents.x"])
def test_event_family_unknown(event_type: str) -> None:
    with pytest.raises(EventValidationError, match="unknown event family"):
        event_family(event_type)


def test_parse_event_checks_the_arrival_subject() -> None:
    raw = (FIXTURES / "agent_event.json").read_bytes()
    assert isinstance(parse_event(raw, subject="agent.planner.agent.started"), AgentEvent)
    with pytest.raises(EventValidationError, match=r"belongs on 'agent\.planner\.agent\.started'"):
        parse_event(raw, subject="agent.executor.agent.started")
    with pytest.raises(EventValidationError, match="belongs on"):
        parse_event(raw, subject="task.planner.agent.started")


def test_parse_event_refuses_an_event_whose_subject_cannot_exist() -> None:
    obj = load("task_event.json")
    obj["taskType"] = "a.b"
    with pytest.raises(EventValidationError, match="taskType"):
        parse_event(stringify(obj), subject="task.a.b.task.assigned")
    # Without a subject to check, the event itself is valid (zod accepts it).
    assert parse_event(stringify(obj)).task_type == "a.b"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "key",
    ["__class__", "__dict__", "__proto__", "constructor", "model_config", "model_extra",
     "family", "body_field", "to_wire", "__pydantic_extra__", "_private"],
)  # fmt: skip
def test_hostile_unknown_keys_are_plain_data(key: str) -> None:
    obj = {**load("agent_event.json"), key: {"x": 1}}
    event = AgentEvent.from_wire(stringify(obj))
    assert type(event) is AgentEvent
    assert event.family == "agent"
    assert event.body_field == "payload"
    assert json.loads(event.to_wire()) == obj


def test_deeply_nested_json_is_a_clear_error() -> None:
    raw = b'{"payload":' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    with pytest.raises(EventValidationError, match="not valid JSON"):
        parse_event(raw)


def test_package_docstring_example() -> None:
    import doctest

    import syncmsg.events

    assert doctest.testmod(syncmsg.events).failed == 0

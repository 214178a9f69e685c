"""Stream definitions (design doc 34.3)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest

from syncmsg._errors import ConfigurationError
from syncmsg.events import (
    AGENT_EVENTS,
    AUDIT_EVENTS,
    EVENT_STREAMS,
    TASK_EVENTS,
    AgentEvent,
    AuditEvent,
    EventStreamDef,
    TaskEvent,
    WorkflowEvent,
    event_stream_specs,
    stream_for,
)

GIB = 1024**3


def test_streams_match_the_document() -> None:
    assert [(s.name, s.subjects, s.max_age, s.max_bytes) for s in EVENT_STREAMS] == [
        ("AGENT_EVENTS", ("agent.>", "workflow.>"), timedelta(days=7), 1 * GIB),
        ("TASK_EVENTS", ("task.>",), timedelta(days=30), 5 * GIB),
        ("AUDIT_EVENTS", ("audit.>",), timedelta(days=365), 10 * GIB),
    ]
    for stream in EVENT_STREAMS:
        assert stream.storage == "file"
        assert stream.retention == "limits"
        assert stream.replicas == 1


def test_api_config_uses_nanoseconds_like_the_document() -> None:
    config = AGENT_EVENTS.to_api_config()
    assert config["max_age"] == 7 * 24 * 60 * 60 * 1000 * 1000000
    assert TASK_EVENTS.to_api_config()["max_age"] == 30 * 24 * 60 * 60 * 1000 * 1000000
    assert AUDIT_EVENTS.to_api_config()["max_age"] == 365 * 24 * 60 * 60 * 1000 * 1000000
    assert config == {
        "name": "AGENT_EVENTS",
        "subjects": ["agent.>", "workflow.>"],
        "retention": "limits",
        "max_age": 604_800_000_000_000,
        "max_bytes": 1024 * 1024 * 1024,
        "storage": "file",
        "num_replicas": 1,
        "description": "Agent and workflow events",
    }


def test_max_age_ns_is_exact_for_sub_second_ages() -> None:
    stream = dataclasses.replace(AGENT_EVENTS, max_age=timedelta(seconds=1, microseconds=1))
    assert stream.max_age_ns == 1_000_001_000


@pytest.mark.parametrize("replicas", [1, 3, 5])
def test_replicas_are_configurable(replicas: int) -> None:
    specs = event_stream_specs(replicas)
    assert [s.replicas for s in specs] == [replicas] * 3
    assert [s.to_api_config()["num_replicas"] for s in specs] == [replicas] * 3
    assert [s.name for s in specs] == [s.name for s in EVENT_STREAMS]
    assert EVENT_STREAMS[0].replicas == 1  # the module constants are unchanged


@pytest.mark.parametrize("replicas", [0, 6, -1, 1.0, "3", True])
def test_bad_replicas(replicas: Any) -> None:
    with pytest.raises(ConfigurationError, match="replicas"):
        event_stream_specs(replicas)
    with pytest.raises(ConfigurationError):
        AGENT_EVENTS.with_replicas(replicas)


def test_definitions_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        AGENT_EVENTS.replicas = 3  # type: ignore[misc]
    assert isinstance(AGENT_EVENTS, EventStreamDef)


def test_stream_for() -> None:
    assert stream_for(AgentEvent) is AGENT_EVENTS
    assert stream_for(WorkflowEvent) is AGENT_EVENTS
    assert stream_for(TaskEvent) is TASK_EVENTS
    assert stream_for(AuditEvent) is AUDIT_EVENTS
    event = TaskEvent(
        source="py",
        tenant_id=uuid4(),
        type="task.created",
        task_id=uuid4(),
        task_type="x",
        payload={},
    )
    assert stream_for(event) is TASK_EVENTS


def test_every_subject_lands_in_exactly_one_stream() -> None:
    prefixes = [subject.split(".")[0] for s in EVENT_STREAMS for subject in s.subjects]
    assert sorted(prefixes) == ["agent", "audit", "task", "workflow"]

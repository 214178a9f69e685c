"""Subject building (design doc 34.5) and subject-token injection attempts."""

from __future__ import annotations

import unicodedata
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncmsg._errors import InvalidSubjectError
from syncmsg.events import (
    AgentEvent,
    AgentEventType,
    AuditEvent,
    AuditEventType,
    InvalidTokenError,
    TaskEvent,
    TaskEventType,
    WorkflowEvent,
    WorkflowEventType,
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

TENANT = uuid4()


def test_document_example() -> None:
    assert agent_subject("planner", AgentEventType.STARTED) == "agent.planner.agent.started"
    assert agent_subject("planner", "agent.started") == "agent.planner.agent.started"


@pytest.mark.parametrize("kind", list(AgentEventType))
def test_agent_subjects(kind: AgentEventType) -> None:
    assert agent_subject("coder", kind) == f"agent.coder.{kind.value}"


@pytest.mark.parametrize("kind", list(WorkflowEventType))
def test_workflow_subjects(kind: WorkflowEventType) -> None:
    assert workflow_subject(kind) == f"workflow.{kind.value}"


@pytest.mark.parametrize("kind", list(TaskEventType))
def test_task_subjects(kind: TaskEventType) -> None:
    assert task_subject("email", kind) == f"task.email.{kind.value}"


@pytest.mark.parametrize("kind", list(AuditEventType))
def test_audit_subjects(kind: AuditEventType) -> None:
    assert audit_subject(kind) == f"audit.{kind.value}"


def test_subject_for_each_family() -> None:
    common: dict[str, Any] = {"source": "py", "tenant_id": TENANT}
    agent = AgentEvent(
        **common, type="agent.blocked", agent_id=uuid4(), agent_type="reviewer", payload={}
    )
    workflow = WorkflowEvent(
        **common, type="workflow.step.started", workflow_id=uuid4(), payload={}
    )
    task = TaskEvent(
        **common, type="task.cancelled", task_id=uuid4(), task_type="crawl", payload={}
    )
    audit = AuditEvent(
        **common,
        type="audit.compliance",
        action="export",
        resource_type="report",
        resource_id="r1",
        metadata={},
    )
    assert subject_for(agent) == "agent.reviewer.agent.blocked"
    assert subject_for(workflow) == "workflow.workflow.step.started"
    assert subject_for(task) == "task.crawl.task.cancelled"
    assert subject_for(audit) == "audit.audit.compliance"


def test_subject_for_refuses_an_event_with_a_bad_agent_type() -> None:
    event = AgentEvent(
        source="py", tenant_id=TENANT, type="agent.started", agent_id=uuid4(),
        agent_type="x.>", payload={},
    )  # fmt: skip
    with pytest.raises(InvalidTokenError, match="agentType"):
        subject_for(event)


def test_subject_for_refuses_non_events() -> None:
    with pytest.raises(TypeError):
        subject_for(object())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "a.b",
        "planner.>",
        ">",
        "*",
        "plan*",
        "a>b",
        " planner",
        "planner ",
        "plan ner",
        "plan\tner",
        "plan\nner",
        "plan\r\nPUB evil 0",
        "plan\x00ner",
        "plan\x7fner",
        "plan\u0085ner",  # NEL
        "plan\u00a0ner",  # no-break space
        "plan\u2028ner",  # line separator
        "plan\u3000ner",  # ideographic space
        "plan\u200bner",  # zero-width space (format)
        "plan\u202ener",  # right-to-left override
        "plan\ufeffner",  # byte-order mark
        "plan\ud800ner",  # lone surrogate
        "plan\ue000ner",  # private use
        "plan\U000e0001",  # language tag (format)
    ],
)
def test_bad_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidTokenError):
        agent_subject(token, AgentEventType.STARTED)
    with pytest.raises(InvalidTokenError):
        task_subject(token, TaskEventType.CREATED)
    with pytest.raises(InvalidSubjectError):  # InvalidTokenError is an InvalidSubjectError
        check_subject_token(token)


@pytest.mark.parametrize("token", [None, 5, b"planner", ["planner"]])
def test_non_string_tokens_are_refused(token: Any) -> None:
    with pytest.raises(InvalidTokenError, match="must be a str"):
        agent_subject(token, AgentEventType.STARTED)


@pytest.mark.parametrize(
    "token", ["planner", "data-loader_v2", "Planner", "übersetzer", "计划者", "a:b", "$x", "🤖"]
)
def test_good_tokens_are_kept_unchanged(token: str) -> None:
    assert agent_subject(token, "agent.started") == f"agent.{token}.agent.started"
    assert check_subject_token(token) is token


def test_error_names_the_field() -> None:
    with pytest.raises(InvalidTokenError, match=r"taskType 'a\.b' must not contain '\.'"):
        task_subject("a.b", "task.created")
    with pytest.raises(InvalidTokenError, match="agentType must not be empty"):
        agent_subject("", "agent.started")


@pytest.mark.parametrize(
    ("builder", "kind"),
    [
        (lambda k: agent_subject("x", k), "task.created"),
        (lambda k: agent_subject("x", k), "agent.paused"),
        (lambda k: agent_subject("x", k), TaskEventType.STARTED),
        (lambda k: task_subject("x", k), "agent.started"),
        (workflow_subject, "workflow.step"),
        (workflow_subject, "workflow.>"),
        (audit_subject, "audit.*"),
        (audit_subject, "access"),
    ],
)
def test_wrong_event_type_is_refused(builder: Any, kind: Any) -> None:
    with pytest.raises(InvalidSubjectError, match="event type"):
        builder(kind)


def test_filters() -> None:
    assert agent_filter() == "agent.*.>"
    assert agent_filter("planner") == "agent.planner.>"
    assert agent_filter(event_type=AgentEventType.FAILED) == "agent.*.agent.failed"
    assert agent_filter("planner", "agent.failed") == "agent.planner.agent.failed"
    assert workflow_filter() == "workflow.>"
    assert workflow_filter("workflow.step.started") == "workflow.workflow.step.started"
    assert task_filter() == "task.*.>"
    assert task_filter("email", TaskEventType.FAILED) == "task.email.task.failed"
    assert task_filter(event_type="task.failed") == "task.*.task.failed"
    assert audit_filter() == "audit.>"
    assert audit_filter(AuditEventType.SECURITY) == "audit.audit.security"
    with pytest.raises(InvalidTokenError):
        agent_filter("*")
    with pytest.raises(InvalidTokenError):
        task_filter(">")


@settings(max_examples=1000, deadline=None)
@given(token=st.text(max_size=12), kind=st.sampled_from(list(AgentEventType)))
def test_fuzz_agent_token_never_escapes(token: str, kind: AgentEventType) -> None:
    try:
        subject = agent_subject(token, kind)
    except InvalidTokenError:
        return
    tokens = subject.split(".")
    assert tokens[0] == "agent"
    assert tokens[1] == token
    assert ".".join(tokens[2:]) == kind.value
    assert len(tokens) == 2 + kind.value.count(".") + 1
    assert "*" not in subject
    assert ">" not in subject
    assert not any(c.isspace() for c in subject)
    assert not any(unicodedata.category(c)[0] in "CZ" for c in subject)
    subject.encode("utf-8")  # never a lone surrogate


@settings(max_examples=500, deadline=None)
@given(
    token=st.text(alphabet=st.sampled_from(list("ab.*> \t\r\n\x00\u00a0\u200b\u2028")), max_size=6)
)
def test_fuzz_task_token_with_hostile_alphabet(token: str) -> None:
    try:
        subject = task_subject(token, TaskEventType.CREATED)
    except InvalidTokenError:
        assert token == "" or set(token) - {"a", "b"}
        return
    assert set(token) <= {"a", "b"}
    assert subject == f"task.{token}.task.created"
    assert len(subject.split(".")) == 4

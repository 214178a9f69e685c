"""publish_on_commit and friends: nothing leaves before the commit, nothing after a rollback."""

from __future__ import annotations

import logging
from typing import Any
from uuid import uuid4

import pytest
from django.db import transaction

import syncmsg
from syncmsg.django import (
    close_client,
    get_client,
    jetstream_publish_on_commit,
    publish_agent_event_on_commit,
    publish_audit_event_on_commit,
    publish_event_on_commit,
    publish_on_commit,
    publish_task_event_on_commit,
    publish_workflow_event_on_commit,
)
from syncmsg.events import EventValidationError, TaskEvent, TaskEventType, correlation_scope

TENANT = "7d0f3c1e-5b7a-4c2e-9f3a-2b1d4e6f8a90"


def _marker(sub: syncmsg.SyncSubscription, name: str) -> None:
    """Publish a marker through the process client and expect it to be the next message:
    anything published before it (on the same client, same thread) would arrive first."""
    client = get_client()
    client.publish(f"c.marker.{name}", b"")
    client.flush()
    assert sub.next_msg(timeout=5).subject == f"c.marker.{name}"


def test_core_publish_waits_for_the_commit(django_nats: Any) -> None:
    with syncmsg.connect(django_nats.url) as watcher, watcher.subscribe_sync("c.>") as sub:
        watcher.flush()
        with transaction.atomic():
            publish_on_commit("c.created", {"n": 1}, headers={"H": "v"})
            _marker(sub, "inside")  # not sent yet
        msg = sub.next_msg(timeout=5)
        assert (msg.subject, msg.json(), msg.headers) == ("c.created", {"n": 1}, {"H": "v"})

        publish_on_commit("c.autocommit", "now")  # no transaction: at once
        assert sub.next_msg(timeout=5).text() == "now"


def test_rollback_publishes_nothing(django_nats: Any) -> None:
    with syncmsg.connect(django_nats.url) as watcher, watcher.subscribe_sync("c.>") as sub:
        watcher.flush()
        with pytest.raises(RuntimeError), transaction.atomic():
            publish_on_commit("c.lost", b"x")
            jetstream_publish_on_commit("taskboard.lost", b"x")
            publish_task_event_on_commit(
                TENANT, type="task.created", task_id=uuid4(), task_type="email"
            )
            raise RuntimeError("roll back")
        _marker(sub, "after-rollback")

        with transaction.atomic():  # a savepoint rolled back drops only its own callbacks
            publish_on_commit("c.outer", b"")
            with pytest.raises(RuntimeError), transaction.atomic():
                publish_on_commit("c.inner", b"")
                raise RuntimeError("inner")
        assert sub.next_msg(timeout=5).subject == "c.outer"
        _marker(sub, "after-savepoint")
    js = get_client().jetstream()
    assert js.stream_info("TASKBOARD").state.messages == 0
    assert js.stream_info("TASK_EVENTS").state.messages == 0


def test_bad_input_raises_inside_the_block(django_nats: Any) -> None:
    with pytest.raises(syncmsg.InvalidSubjectError), transaction.atomic():
        publish_on_commit("bad subject", b"")
    with pytest.raises(syncmsg.PayloadError), transaction.atomic():
        publish_on_commit("ok", object())  # type: ignore[arg-type]
    with pytest.raises(syncmsg.InvalidHeaderError), transaction.atomic():
        jetstream_publish_on_commit("ok", b"", headers={"Bad Name": "x"})
    with pytest.raises(EventValidationError), transaction.atomic():
        publish_task_event_on_commit(None, type="task.created", task_id=uuid4(), task_type="x")  # type: ignore[arg-type]
    with pytest.raises(EventValidationError), transaction.atomic():
        publish_agent_event_on_commit(
            TENANT,
            type="agent.started",
            agent_id=uuid4(),
            agent_type="p",
            payload=[1],  # type: ignore[arg-type]
        )
    with pytest.raises(TypeError):
        publish_event_on_commit({"not": "an event"})  # type: ignore[type-var]


def test_jetstream_and_event_publishes_after_commit(django_nats: Any) -> None:
    task_id = uuid4()
    with correlation_scope(uuid4()) as correlation, transaction.atomic():
        ident = jetstream_publish_on_commit("taskboard.note", {"a": 1})
        again = jetstream_publish_on_commit("taskboard.note", {"a": 1}, msg_id=ident)
        task = publish_task_event_on_commit(
            TENANT, type=TaskEventType.CREATED, task_id=task_id, task_type="email"
        )
        agent = publish_agent_event_on_commit(
            TENANT, type="agent.started", agent_id=uuid4(), agent_type="planner"
        )
        workflow = publish_workflow_event_on_commit(
            TENANT, type="workflow.started", workflow_id=uuid4(), step_id="s1"
        )
        audit = publish_audit_event_on_commit(
            TENANT,
            type="audit.mutation",
            action="create",
            resource_type="task",
            resource_id=str(task_id),
            metadata={"by": "test"},
        )
        prebuilt = TaskEvent(
            source="elsewhere",
            tenant_id=TENANT,
            type="task.completed",
            task_id=task_id,
            task_type="email",
            payload={},
        )
        completed = publish_event_on_commit(prebuilt)
        js = get_client().jetstream()
        assert js.stream_info("TASK_EVENTS").state.messages == 0  # not before the commit
    assert ident == again and ident
    for event in (task, agent, workflow, audit, completed):
        assert event.correlation_id == correlation
    assert task.source == "taskboard" and completed.source == "elsewhere"
    assert js.stream_info("TASKBOARD").state.messages == 1  # the same msg_id, stored once
    assert js.stream_info("TASK_EVENTS").state.messages == 2
    assert js.stream_info("AGENT_EVENTS").state.messages == 2
    assert js.stream_info("AUDIT_EVENTS").state.messages == 1
    stored = TaskEvent.from_wire(js.get_msg("TASK_EVENTS", 1).data)
    assert stored.id == task.id


def test_a_failed_publish_after_commit_raises_unless_robust(
    django_nats: Any, caplog: pytest.LogCaptureFixture
) -> None:
    too_big = b"x" * (2 * 1024 * 1024)  # over the server's max_payload
    with syncmsg.connect(django_nats.url) as watcher, watcher.subscribe_sync("c.>") as sub:
        watcher.flush()
        with caplog.at_level(logging.ERROR), transaction.atomic():
            publish_on_commit("c.big", too_big, robust=True)
            publish_on_commit("c.after-robust", b"")
        assert sub.next_msg(timeout=5).subject == "c.after-robust"
        assert any("on_commit" in r.getMessage() for r in caplog.records)

        with pytest.raises(syncmsg.PayloadTooLargeError), transaction.atomic():
            publish_on_commit("c.big", too_big)


@pytest.mark.timeout(40)  # unbounded, each wait below would be publish_retry's minute
def test_the_jetstream_timeout_bounds_the_wait_after_the_commit(
    django_nats: Any, wait_until: Any
) -> None:
    from django.conf import settings
    from django.test import override_settings

    bounded = {**settings.SYNCMSG, "jetstream": {"timeout": 1.0}}
    with override_settings(SYNCMSG=bounded):
        client = get_client()
        django_nats.stop()
        wait_until(lambda: not client.is_connected, 10)
        # The ack's own timeout or the bound's: either way a TimeoutError, soon.
        with pytest.raises(syncmsg.TimeoutError), transaction.atomic():
            jetstream_publish_on_commit("taskboard.down", b"")
        with pytest.raises(syncmsg.TimeoutError), transaction.atomic():
            publish_task_event_on_commit(
                TENANT, type="task.created", task_id=uuid4(), task_type="email"
            )
        with pytest.raises(syncmsg.TimeoutError), transaction.atomic():
            jetstream_publish_on_commit("taskboard.down", b"", timeout=0.5)  # the call's own
        # A process with no client yet: connecting is bounded by the same timeout.
        close_client(timeout=1.0)
        refused = pytest.raises((syncmsg.NatsConnectionError, syncmsg.TimeoutError))
        with refused, transaction.atomic():
            jetstream_publish_on_commit("taskboard.down", b"")
        django_nats.start()
        with transaction.atomic():
            msg_id = jetstream_publish_on_commit("taskboard.up", b"")
        stored = get_client().jetstream().stream_info("TASKBOARD").state.messages
        assert stored >= 1 and msg_id

"""The example project's views through Django's test client: events only after commit,
written to the outbox (and published by a relay) or published on commit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from django.conf import settings
from django.test import Client as DjangoClient
from django.test import override_settings
from taskboard.models import Task

import syncmsg
from syncmsg.django import get_client
from syncmsg.django.outbox import Relay
from syncmsg.events import TaskEvent


@pytest.fixture(autouse=True, params=["outbox", "on_commit"])
def publish_mode(request: Any) -> Iterator[str]:
    with override_settings(TASKBOARD_PUBLISH=request.param):
        yield request.param


def _relay() -> None:
    """Publish what the views wrote to the outbox (nothing in on_commit mode)."""
    if settings.TASKBOARD_PUBLISH == "outbox":
        Relay().publish_pending(timeout=30)


def _events(server: Any) -> list[TaskEvent]:
    """Every event stored in TASK_EVENTS, in order."""
    with syncmsg.connect(server.url, timeout=5.0) as client:
        js = client.jetstream()
        count = js.stream_info("TASK_EVENTS").state.messages
        return [
            TaskEvent.from_wire(js.get_msg("TASK_EVENTS", seq).data) for seq in range(1, count + 1)
        ]


def test_post_creates_a_task_and_publishes_task_created(django_nats: Any) -> None:
    web = DjangoClient()
    response = web.post(
        "/tasks/",
        data=json.dumps({"title": "write the docs", "kind": "docs"}),
        content_type="application/json",
        headers={"X-Request-Id": "0b8e2f54-1c3d-4e5f-8a9b-0c1d2e3f4a5b"},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    task = Task.objects.get(pk=body["id"])
    assert str(task.event_id) == body["event_id"]

    _relay()
    (event,) = _events(django_nats)
    assert event.id == task.event_id
    assert event.task_id == task.id
    assert event.task_type == "docs"
    assert event.type.value == "task.created"
    assert event.source == "taskboard"
    assert event.payload == {"title": "write the docs"}
    assert event.correlation_id == UUID("0b8e2f54-1c3d-4e5f-8a9b-0c1d2e3f4a5b")


def test_invalid_requests_publish_nothing(django_nats: Any) -> None:
    get_client()  # connects and ensures the streams
    web = DjangoClient()
    assert web.post("/tasks/", data={"title": ""}).status_code == 400
    bad_kind = web.post("/tasks/", data={"title": "x", "kind": "a.b"})
    assert bad_kind.status_code == 400
    assert "taskType" in bad_kind.json()["error"] or "task_type" in bad_kind.json()["error"]
    assert not Task.objects.exists()  # rolled back with the event
    assert web.get("/tasks/").status_code == 405
    _relay()
    assert _events(django_nats) == []


def test_form_post_detail_and_completion(django_nats: Any) -> None:
    web = DjangoClient()
    created = web.post("/tasks/", data={"title": "from a form"}).json()
    detail = web.get(f"/tasks/{created['id']}/").json()
    assert detail["state"] == "new" and detail["kind"] == "general"

    first = web.post(f"/tasks/{created['id']}/complete/")
    again = web.post(f"/tasks/{created['id']}/complete/")
    assert first.status_code == again.status_code == 202
    assert first.json()["message_id"] == f"task-{created['id']}-completed"
    _relay()
    with syncmsg.connect(django_nats.url) as client:
        info = client.jetstream().stream_info("TASKBOARD")
        assert info.state.messages == 1  # the retried completion was stored once
    assert web.get("/tasks/6f1d2c3b-0000-4000-8000-000000000000/").status_code == 404


def test_task_events_carry_the_revision_in_order(django_nats: Any) -> None:
    web = DjangoClient()
    created = web.post("/tasks/", data={"title": "lifecycle", "kind": "email"}).json()
    for event_type in ("task.assigned", "task.started", "task.completed"):
        reply = web.post(f"/tasks/{created['id']}/events/", data={"type": event_type})
        assert reply.status_code == 201, reply.content
    assert (
        web.post(f"/tasks/{created['id']}/events/", data={"type": "task.created"}).status_code
        == 400
    )
    assert web.get(f"/tasks/{created['id']}/").json()["revision"] == 3
    _relay()
    events = _events(django_nats)
    assert [(e.type.value, e.payload.get("revision")) for e in events] == [
        ("task.created", None),
        ("task.assigned", 1),
        ("task.started", 2),
        ("task.completed", 3),
    ]

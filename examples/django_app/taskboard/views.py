"""The task board's API: JSON in, JSON out.

Events are written to the outbox in the same transaction as the task (the default), or,
with ``TASKBOARD_PUBLISH=on_commit``, published by the request thread once the transaction
has committed. The two functions take the same arguments; see docs/django.md for when to
choose which.
"""

import json
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from syncmsg.django import jetstream_publish_on_commit, outbox, publish_task_event_on_commit
from syncmsg.events import (
    EventValidationError,
    InvalidTokenError,
    TaskEvent,
    TaskEventType,
    correlation_scope,
)

from .models import Task


def _body(request: HttpRequest) -> dict[str, Any]:
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    return request.POST.dict()


def _publish_task_event(
    task: Task, event_type: TaskEventType, payload: dict[str, Any]
) -> TaskEvent:
    """Built and validated now; published only if the surrounding transaction commits."""
    publish = (
        publish_task_event_on_commit
        if settings.TASKBOARD_PUBLISH == "on_commit"
        else outbox.publish_task_event  # ordered per task: the key is "task:<id>"
    )
    return publish(
        task.tenant_id, type=event_type, task_id=task.id, task_type=task.kind, payload=payload
    )


def _correlation(request: HttpRequest) -> UUID | None:
    try:
        return UUID(request.headers.get("X-Request-Id", ""))
    except ValueError:
        return None


@csrf_exempt  # a JSON API for other services; use your API authentication here
@require_POST
def create_task(request: HttpRequest) -> JsonResponse:
    """Create a task and publish ``task.created`` once the transaction has committed."""
    data = _body(request)
    title = str(data.get("title", "")).strip()
    if not title:
        return JsonResponse({"error": "title is required"}, status=400)
    kind = str(data.get("kind") or "general")
    try:
        with correlation_scope(_correlation(request)), transaction.atomic():
            task = Task.objects.create(
                tenant_id=settings.TASKBOARD_TENANT_ID, title=title[:200], kind=kind
            )
            event = _publish_task_event(task, TaskEventType.CREATED, {"title": task.title})
            task.event_id = event.id
            task.save(update_fields=["event_id"])
    except (EventValidationError, InvalidTokenError) as exc:  # e.g. kind="a.b"
        return JsonResponse({"error": " ".join(str(exc).split())}, status=400)
    return JsonResponse(task.as_json(), status=201)


@require_GET
def task_detail(request: HttpRequest, task_id: UUID) -> JsonResponse:
    return JsonResponse(get_object_or_404(Task, pk=task_id).as_json())


@csrf_exempt
@require_POST
def complete_task(request: HttpRequest, task_id: UUID) -> JsonResponse:
    """Ask for completion: a plain JetStream message with a business-key message id, so
    completing the same task twice (a retried request) is stored once."""
    with transaction.atomic():
        task = get_object_or_404(Task.objects.select_for_update(), pk=task_id)
        subject = f"taskboard.completed.{task.kind}"
        data = {"task_id": str(task.id), "title": task.title}
        msg_id = f"task-{task.id}-completed"
        if settings.TASKBOARD_PUBLISH == "on_commit":
            jetstream_publish_on_commit(subject, data, msg_id=msg_id)
        else:
            outbox.publish(subject, data, msg_id=msg_id, key=f"task:{task.id}")
    return JsonResponse({"id": str(task.id), "message_id": msg_id}, status=202)


_LATER_EVENTS = {t.value: t for t in TaskEventType if t is not TaskEventType.CREATED}


@csrf_exempt
@require_POST
def task_event(request: HttpRequest, task_id: UUID) -> JsonResponse:
    """Record what happened to a task (``{"type": "task.started"}``): its revision goes up
    by one and the event carries it, so consumers see each task's events in order."""
    event_type = _LATER_EVENTS.get(str(_body(request).get("type", "")))
    if event_type is None:
        return JsonResponse({"error": f"type must be one of {sorted(_LATER_EVENTS)}"}, status=400)
    with correlation_scope(_correlation(request)), transaction.atomic():
        # The row lock orders concurrent requests for one task: their events are written,
        # and published, in the order their transactions commit.
        task = get_object_or_404(Task.objects.select_for_update(), pk=task_id)
        task.revision += 1
        task.save(update_fields=["revision"])
        event = _publish_task_event(task, event_type, {"revision": task.revision})
    return JsonResponse({**task.as_json(), "event_id": str(event.id)}, status=201)

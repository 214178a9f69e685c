"""The task board's API: JSON in, JSON out."""

import json
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from syncmsg.django import jetstream_publish_on_commit, publish_task_event_on_commit
from syncmsg.events import (
    EventValidationError,
    InvalidTokenError,
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
            # Built and validated now; published only if this block commits.
            event = publish_task_event_on_commit(
                task.tenant_id,
                type=TaskEventType.CREATED,
                task_id=task.id,
                task_type=task.kind,
                payload={"title": task.title},
            )
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
        msg_id = jetstream_publish_on_commit(
            f"taskboard.completed.{task.kind}",
            {"task_id": str(task.id), "title": task.title},
            msg_id=f"task-{task.id}-completed",
        )
    return JsonResponse({"id": str(task.id), "message_id": msg_id}, status=202)

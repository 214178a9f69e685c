"""The example's URLs, and ``POST /crash/<how>/``: a task and its ``task.created`` event
written the way the example's view writes them, and then the process dies.

* ``before-commit``: SIGKILL inside the transaction (it never commits);
* ``rollback``: an exception inside the transaction (a 500, rolled back);
* ``after-commit``: SIGKILL right after the commit, before anything is published. With
  ``TASKBOARD_PUBLISH=on_commit`` that is the window in which the event is lost; with the
  outbox the relay publishes it.
"""

import os
import signal

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@csrf_exempt
def crash(request: HttpRequest, how: str) -> JsonResponse:
    from taskboard.models import Task
    from taskboard.views import _publish_task_event

    from syncmsg.events import TaskEventType

    with transaction.atomic():
        task = Task.objects.create(
            tenant_id=settings.TASKBOARD_TENANT_ID, title=request.POST["title"], kind="crash"
        )
        if how == "after-commit":
            transaction.on_commit(_die)  # runs first, before an on-commit publish
        event = _publish_task_event(task, TaskEventType.CREATED, {"title": task.title})
        task.event_id = event.id
        task.save(update_fields=["event_id"])
        if how == "before-commit":
            _die()
        if how == "rollback":
            raise RuntimeError("rolled back on purpose")
    return JsonResponse(task.as_json(), status=201)


urlpatterns = [
    path("crash/<str:how>/", crash),
    path("", include("example_site.urls")),
]

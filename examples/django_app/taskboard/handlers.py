"""Durable handlers, run by ``python manage.py syncmsg_worker``.

JetStream delivers at least once (a worker killed before its ack, a redelivery after a
timeout): each handler records the message id under a unique constraint, in the same
transaction as its work, so a message is applied exactly once.
"""

import os
import time

from django.conf import settings
from django.db import transaction
from django.db.models import F

from syncmsg import Msg
from syncmsg.django import event_handler, handler
from syncmsg.events import TaskEvent, TaskEventType

from .models import ProcessedMessage, Task


def _first_time(message_id: str, kind: str, task_id: object) -> bool:
    """Record the message; False (and count the delivery) if it was processed before."""
    record, created = ProcessedMessage.objects.get_or_create(
        message_id=message_id, defaults={"kind": kind, "task_id": task_id, "pid": os.getpid()}
    )
    if not created:
        ProcessedMessage.objects.filter(pk=record.pk).update(deliveries=F("deliveries") + 1)
    return created


@event_handler(TaskEventType.CREATED)
def task_created(event: TaskEvent) -> None:
    if settings.TASKBOARD_HANDLER_DELAY:
        time.sleep(settings.TASKBOARD_HANDLER_DELAY)  # simulated work (a mail, an API call)
    with transaction.atomic():
        if _first_time(str(event.id), event.type.value, event.task_id):
            Task.objects.filter(pk=event.task_id, state="new").update(state="queued")


@handler("taskboard.completed.*", durable="taskboard-completions", max_deliver=5)
def task_completed(msg: Msg) -> None:
    data = msg.json()
    message_id = (msg.headers or {}).get("Nats-Msg-Id") or f"seq-{msg.metadata.sequence_stream}"
    with transaction.atomic():
        if _first_time(str(message_id), "taskboard.completed", data["task_id"]):
            Task.objects.filter(pk=data["task_id"]).update(state="done")

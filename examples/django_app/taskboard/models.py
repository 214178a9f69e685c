import uuid

from django.db import models


class Task(models.Model):
    STATES = (("new", "new"), ("queued", "queued"), ("done", "done"))

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant_id = models.UUIDField()
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=50, default="general")  # the event's taskType
    state = models.CharField(max_length=10, choices=STATES, default="new")
    event_id = models.UUIDField(null=True, blank=True)  # the task.created event
    revision = models.PositiveIntegerField(default=0)  # +1 with each later event
    created_at = models.DateTimeField(auto_now_add=True)

    def as_json(self) -> dict[str, object]:
        return {
            "id": str(self.id),
            "title": self.title,
            "kind": self.kind,
            "state": self.state,
            "revision": self.revision,
            "event_id": str(self.event_id) if self.event_id else None,
        }


class ProcessedMessage(models.Model):
    """One row per message a handler has processed: the unique key makes handling
    idempotent (JetStream delivers at least once), and ``deliveries`` counts how often
    a handler saw the same message."""

    message_id = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=50)
    task_id = models.UUIDField(null=True)
    deliveries = models.PositiveIntegerField(default=1)
    pid = models.IntegerField()
    processed_at = models.DateTimeField(auto_now_add=True)

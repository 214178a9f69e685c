"""The outbox tables: one row per message to publish, and the single-relay lease.

Threading: Django models; each thread uses its own database connection.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models
from django.db.models import Q
from django.utils import timezone

__all__ = ["OutboxLease", "OutboxMessage"]


class OutboxMessage(models.Model):  # type: ignore[misc]  # Django ships no type hints
    """A message written in the same transaction as the data it announces.

    The relay publishes pending rows (``published`` is null) in ``id`` order, with
    ``Nats-Msg-Id: <msg_id>``, and sets ``published`` when JetStream has acknowledged the
    message. Rows sharing a ``key`` are published one after the other, in ``id`` order,
    even across failures; rows without a key may overtake each other when a publish fails.
    """

    id = models.BigAutoField(primary_key=True)
    subject = models.TextField()
    payload = models.BinaryField()
    headers = models.JSONField(null=True, blank=True)
    msg_id = models.CharField(
        max_length=255, help_text="the Nats-Msg-Id: JetStream stores it once per duplicate window"
    )
    key = models.CharField(
        max_length=255,
        null=True,
        blank=True,
        help_text="rows of one key are published in order (an event's aggregate)",
    )
    created = models.DateTimeField(default=timezone.now)
    available = models.DateTimeField(
        default=timezone.now, help_text="not sent before this (the backoff after a failure)"
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    published = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "syncmsg"
        db_table = "syncmsg_outbox"
        verbose_name = "outbox message"
        indexes: ClassVar[list[Any]] = [
            # The relay's and the health view's queries only look at pending rows.
            models.Index(
                fields=["id"], condition=Q(published__isnull=True), name="syncmsg_outbox_pending"
            ),
            models.Index(fields=["published"], name="syncmsg_outbox_published"),
        ]

    def __str__(self) -> str:
        state = "published" if self.published else "pending"
        return f"#{self.id} {self.subject} ({state})"

    @property
    def is_published(self) -> bool:
        return self.published is not None

    def payload_bytes(self) -> bytes:
        """The payload as bytes (database drivers return memoryview or bytes)."""
        value: Any = self.payload
        return bytes(value) if not isinstance(value, bytes) else value


class OutboxLease(models.Model):  # type: ignore[misc]
    """Single-relay mode: the relay named by ``owner`` may publish until ``expires``."""

    name = models.CharField(max_length=64, primary_key=True)
    owner = models.CharField(max_length=255)
    expires = models.DateTimeField()

    class Meta:
        app_label = "syncmsg"
        db_table = "syncmsg_outbox_lease"

    def __str__(self) -> str:
        return f"{self.name}: {self.owner} until {self.expires.isoformat()}"

"""The outbox tables (syncmsg.django.outbox)."""

from typing import Any, ClassVar

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):  # type: ignore[misc]  # Django ships no type hints
    initial = True

    dependencies: ClassVar[list[tuple[str, str]]] = []

    operations: ClassVar[list[Any]] = [
        migrations.CreateModel(
            name="OutboxLease",
            fields=[
                ("name", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("owner", models.CharField(max_length=255)),
                ("expires", models.DateTimeField()),
            ],
            options={
                "db_table": "syncmsg_outbox_lease",
            },
        ),
        migrations.CreateModel(
            name="OutboxMessage",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("subject", models.TextField()),
                ("payload", models.BinaryField()),
                ("headers", models.JSONField(blank=True, null=True)),
                (
                    "msg_id",
                    models.CharField(
                        help_text="the Nats-Msg-Id: JetStream stores it once per duplicate window",
                        max_length=255,
                    ),
                ),
                (
                    "key",
                    models.CharField(
                        blank=True,
                        help_text="rows of one key are published in order (an event's aggregate)",
                        max_length=255,
                        null=True,
                    ),
                ),
                ("created", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "available",
                    models.DateTimeField(
                        default=django.utils.timezone.now,
                        help_text="not sent before this (the backoff after a failure)",
                    ),
                ),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("last_error", models.TextField(blank=True, default="")),
                ("published", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "verbose_name": "outbox message",
                "db_table": "syncmsg_outbox",
                "indexes": [
                    models.Index(
                        condition=models.Q(("published__isnull", True)),
                        fields=["id"],
                        name="syncmsg_outbox_pending",
                    ),
                    models.Index(fields=["published"], name="syncmsg_outbox_published"),
                ],
            },
        ),
    ]

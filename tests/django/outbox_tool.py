"""Subprocess helper of the outbox's process tests (DJANGO_SETTINGS_MODULE=outbox_site).

``python outbox_tool.py write N [PER_TRANSACTION]``: N tasks, each with its
``task.created`` event in the outbox, committed PER_TRANSACTION (1) at a time; and N/10
rolled-back transactions, which leave nothing.

``python outbox_tool.py relay-dies-before-marking``: a relay that SIGKILLs itself after
its first round was published and acknowledged, before it marks the rows.
"""

import dataclasses
import os
import signal
import sys

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402
from taskboard.models import Task  # noqa: E402

from syncmsg.django import outbox  # noqa: E402
from syncmsg.django.outbox import Relay  # noqa: E402


def write(count: int, per_transaction: int) -> None:
    for start in range(0, count, per_transaction):
        with transaction.atomic():
            for i in range(start, min(start + per_transaction, count)):
                task = Task.objects.create(
                    tenant_id=settings.TASKBOARD_TENANT_ID, title=f"written {i}", kind="batch"
                )
                event = outbox.publish_task_event(
                    task.tenant_id, type="task.created", task_id=task.id, task_type=task.kind
                )
                Task.objects.filter(pk=task.pk).update(event_id=event.id)
        for _ in range(start, min(start + per_transaction, count), 10):
            try:
                with transaction.atomic():
                    task = Task.objects.create(
                        tenant_id=settings.TASKBOARD_TENANT_ID, title="rolled back", kind="batch"
                    )
                    outbox.publish_task_event(
                        task.tenant_id, type="task.created", task_id=task.id, task_type="batch"
                    )
                    raise RuntimeError("roll back")
            except RuntimeError:
                pass
    print(f"wrote {count}", flush=True)


class DiesBeforeMarking(Relay):
    def _mark(self, outcome):  # type: ignore[no-untyped-def]
        print(f"published {len(outcome.acked)}, dying before marking them", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    elif sys.argv[1] == "relay-dies-before-marking":
        from syncmsg.django import conf

        # Patient, so that the whole round is acknowledged however loaded the machine is.
        options = dataclasses.replace(conf.options().outbox, publish_timeout=30.0)
        DiesBeforeMarking(options=options).run_once()
        raise SystemExit("the relay should have died")
    else:
        raise SystemExit(f"unknown command {sys.argv[1]!r}")

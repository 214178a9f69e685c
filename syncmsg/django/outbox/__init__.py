"""A transactional outbox: publish a message exactly once with the commit that caused it.

Enable it with ``SYNCMSG["outbox"] = {}`` (see :class:`syncmsg.django.conf.OutboxOptions`
for the keys) and ``manage.py migrate``; then, inside a transaction::

    from django.db import transaction
    from syncmsg.django import outbox

    with transaction.atomic():
        order = Order.objects.create(...)
        outbox.publish("orders.created", {"id": order.pk}, key=f"order:{order.pk}")
        outbox.publish_task_event(tenant_id, type="task.created", task_id=..., task_type="email")

The row is written in the transaction (the caller never waits on NATS); a relay
(``manage.py syncmsg_worker`` runs one, ``manage.py syncmsg_relay`` runs one alone)
publishes it after the commit with ``Nats-Msg-Id`` = the row's ``msg_id``, so a re-send
after a crash is stored once. See docs/django.md, "Outbox".

Threading: the ``publish*`` functions run on the caller's thread and database connection;
:class:`Relay` runs on its own thread (``syncmsg-outbox-relay``) or the caller's.
"""

from __future__ import annotations

from typing import Any

from syncmsg.django.outbox._relay import Relay
from syncmsg.django.outbox._status import Backlog, backlog
from syncmsg.django.outbox._write import (
    publish,
    publish_agent_event,
    publish_audit_event,
    publish_event,
    publish_task_event,
    publish_workflow_event,
)

__all__ = [
    "Backlog",
    "OutboxLease",
    "OutboxMessage",
    "Relay",
    "backlog",
    "publish",
    "publish_agent_event",
    "publish_audit_event",
    "publish_event",
    "publish_task_event",
    "publish_workflow_event",
]


def __getattr__(name: str) -> Any:
    # The models need Django's app registry: imported on first use, not with the package.
    if name in ("OutboxMessage", "OutboxLease"):
        from syncmsg.django.outbox import _models

        return getattr(_models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

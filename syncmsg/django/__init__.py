"""Django integration: one process-wide client, publishing on commit, a health view, workers.

Add ``"syncmsg.django"`` to ``INSTALLED_APPS`` and configure it with a ``SYNCMSG``
dict (every key optional; the ``NATS_*`` environment fills in the rest)::

    SYNCMSG = {"url": "nats://nats:4222", "event_streams": True, "service": "billing"}

::

    from django.db import transaction
    from syncmsg.django import get_client, publish_task_event_on_commit

    def create_task(request):
        with transaction.atomic():
            task = Task.objects.create(...)
            event = publish_task_event_on_commit(
                task.tenant_id, type="task.created", task_id=task.id, task_type="email"
            )                               # published once the block commits, never if not
        get_client().publish("tasks.seen", {"id": str(task.id)})   # right now

Messages that must go out exactly once with their commit go through the transactional
outbox (``SYNCMSG["outbox"] = {}``; a relay in ``syncmsg_worker`` or ``syncmsg_relay``
publishes them)::

    from syncmsg.django import outbox

    with transaction.atomic():
        order = Order.objects.create(...)
        outbox.publish("orders.created", {"id": order.pk}, key=f"order:{order.pk}")

Durable handlers go in each app's ``handlers.py`` and run under
``python manage.py syncmsg_worker``::

    from syncmsg.django import event_handler, handler, service

    @event_handler("task.created")
    def on_created(event): ...

    @handler("orders.>", durable="billing-orders")
    def on_order(msg): ...

    billing = service("billing", version="1.0.0")   # a NATS micro service (syncmsg.services)

    @billing.endpoint("charge")
    def charge(request): ...

See docs/django.md. Threading: every function here may be called from any thread; the
client is created once per process (again after ``fork()``), lazily, under a lock.
"""

from syncmsg.django._commit import (
    jetstream_publish_on_commit,
    publish_agent_event_on_commit,
    publish_audit_event_on_commit,
    publish_event_on_commit,
    publish_on_commit,
    publish_task_event_on_commit,
    publish_workflow_event_on_commit,
)
from syncmsg.django._process import (
    close_client,
    current_client,
    get_client,
    get_jetstream,
    get_publisher,
)
from syncmsg.django._registry import (
    DurableHandler,
    EventHandler,
    ServiceEntry,
    autodiscover,
    event_handler,
    handler,
    registered_handlers,
    service,
)

__all__ = [
    "DurableHandler",
    "EventHandler",
    "ServiceEntry",
    "autodiscover",
    "close_client",
    "current_client",
    "event_handler",
    "get_client",
    "get_jetstream",
    "get_publisher",
    "handler",
    "jetstream_publish_on_commit",
    "publish_agent_event_on_commit",
    "publish_audit_event_on_commit",
    "publish_event_on_commit",
    "publish_on_commit",
    "publish_task_event_on_commit",
    "publish_workflow_event_on_commit",
    "registered_handlers",
    "service",
]

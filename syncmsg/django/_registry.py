"""Handlers registered with :func:`handler` and :func:`event_handler`, and services
declared with :func:`service`, for the worker.

Decorate functions in an app's ``handlers.py``; ``manage.py syncmsg_worker`` imports the
``handlers`` module of every installed app (as the admin does with ``admin.py``) and runs
what was registered. Registering only records the function; nothing connects or
subscribes until a worker starts.

Threading: registration takes a lock and may happen on any thread (normally at import).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from syncmsg._subjects import check_publish_subject, check_subscribe_subject, check_token
from syncmsg.jetstream import DeliverPolicy

if TYPE_CHECKING:
    from syncmsg.services import ServiceSpec, StatsHandler

__all__ = [
    "DurableHandler",
    "EventHandler",
    "ServiceEntry",
    "autodiscover",
    "event_handler",
    "handler",
    "registered_handlers",
    "service",
]

F = TypeVar("F", bound=Callable[..., Any])

_FAMILIES = ("agent", "workflow", "task", "audit")


def _qualified(func: Callable[..., Any]) -> str:
    module = getattr(func, "__module__", None) or "?"
    return f"{module}.{getattr(func, '__qualname__', repr(func))}"


@dataclasses.dataclass(frozen=True)
class DurableHandler:
    """``func(msg)`` for each message of a durable JetStream consumer (see :func:`handler`)."""

    func: Callable[..., Any]
    subject: str
    durable: str
    options: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)

    @property
    def name(self) -> str:
        return _qualified(self.func)

    def describe(self) -> str:
        return f"{self.name}: {self.subject} (durable {self.durable})"

    def key(self) -> tuple[str, ...]:
        return ("durable", self.name, self.subject, self.durable)


@dataclasses.dataclass(frozen=True)
class EventHandler:
    """``func(event)`` for typed events of one type or family (see :func:`event_handler`)."""

    func: Callable[..., Any]
    family: str
    event_type: str  # a wire value, or "*"

    @property
    def name(self) -> str:
        return _qualified(self.func)

    def describe(self) -> str:
        kind = f"{self.family}.*" if self.event_type == "*" else self.event_type
        return f"{self.name}: {kind} events"

    def key(self) -> tuple[str, ...]:
        return ("event", self.name, self.family, self.event_type)


@dataclasses.dataclass(frozen=True)
class ServiceEntry:
    """A NATS micro service the worker starts (see :func:`service`)."""

    spec: ServiceSpec

    @property
    def name(self) -> str:
        return self.spec.name

    def describe(self) -> str:
        subjects = ", ".join(e.subject or e.name for e in self.spec.endpoints) or "no endpoints"
        return f"service {self.spec.name} {self.spec.config.version}: {subjects}"

    def key(self) -> tuple[str, ...]:
        return ("service", self.spec.name)


AnyHandler = DurableHandler | EventHandler | ServiceEntry

_lock = threading.Lock()
_handlers: list[AnyHandler] = []


def _register(entry: AnyHandler) -> None:
    key = entry.key()
    with _lock:
        for i, old in enumerate(_handlers):
            if old.key() == key:  # the same module imported again: keep the newest function
                _handlers[i] = entry
                return
        _handlers.append(entry)


def handler(
    subject: str,
    *,
    durable: str,
    stream: str | None = None,
    workers: int | None = None,
    manual_ack: bool = False,
    max_ack_pending: int = 1000,
    ack_wait: float = 30.0,
    max_deliver: int = 5,
    backoff: Sequence[float] | None = None,
    dead_letter: str | None = None,
    deliver_policy: DeliverPolicy | str = DeliverPolicy.ALL,
    prefetch: int | None = None,
) -> Callable[[F], F]:
    """Register ``func(msg: syncmsg.Msg)`` as the handler of a durable JetStream consumer.

    The options are those of :meth:`syncmsg.JetStream.subscribe`: returning acks the
    message, raising naks it (after ``backoff``), and the last allowed delivery goes to
    ``dead_letter``. Every worker process running it shares the durable consumer
    ``durable``, so the messages are split between them. Choose ``durable`` once: a new
    name is a new consumer, which starts again from the beginning of the stream
    (``deliver_policy="new"`` starts from now)::

        from syncmsg.django import handler

        @handler("orders.created", durable="billing-orders", max_deliver=5,
                 dead_letter="dlq.orders")
        def bill(msg):
            Invoice.objects.get_or_create(order_id=msg.json()["id"])
    """
    check_subscribe_subject(subject)
    check_token(durable, "durable name")
    if dead_letter is not None:
        check_publish_subject(dead_letter, "dead_letter subject")
    if workers is not None and workers < 1:
        raise ValueError("workers must be at least 1")
    options: dict[str, Any] = {
        "stream": stream,
        "workers": workers,
        "manual_ack": manual_ack,
        "max_ack_pending": max_ack_pending,
        "ack_wait": ack_wait,
        "max_deliver": max_deliver,
        "backoff": tuple(backoff) if backoff else None,
        "dead_letter": dead_letter,
        "deliver_policy": DeliverPolicy(deliver_policy),
        "prefetch": prefetch,
    }

    def register(func: F) -> F:
        if not callable(func):
            raise TypeError("handler() decorates a function")
        _register(DurableHandler(func, subject, durable, options))
        return func

    return register


def _family_and_type(event_type: object, family: str | None) -> tuple[str, str]:
    from syncmsg.events import FAMILIES

    if isinstance(event_type, Enum):
        for name, spec in FAMILIES.items():
            if isinstance(event_type, spec.types):
                if family not in (None, name):
                    raise ValueError(f"{event_type!s} is not a {family} event type")
                return name, str(event_type.value)
        raise ValueError(f"{event_type!r} is not an event type")
    if not isinstance(event_type, str):
        raise TypeError("event_type must be an event type enum member or a string")
    if event_type == "*":
        if family not in FAMILIES:
            raise ValueError(f"event_handler('*') needs family=, one of {', '.join(_FAMILIES)}")
        assert family is not None
        return family, "*"
    prefix, _, rest = event_type.partition(".")
    if prefix not in FAMILIES or not rest:
        raise ValueError(
            f"{event_type!r} is not an event type: expected e.g. 'task.created' or 'task.*'"
        )
    if family not in (None, prefix):
        raise ValueError(f"{event_type!r} is not a {family} event type")
    if rest == "*":
        return prefix, "*"
    try:
        return prefix, str(FAMILIES[prefix].types(event_type).value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in FAMILIES[prefix].types)
        raise ValueError(
            f"{event_type!r} is not a {prefix} event type: expected '{prefix}.*' or one of "
            f"{allowed}"
        ) from None


def event_handler(event_type: object, *, family: str | None = None) -> Callable[[F], F]:
    """Register ``func(event)`` for typed events (:mod:`syncmsg.events`).

    ``event_type`` is an event type (``TaskEventType.CREATED`` or ``"task.created"``), or
    ``"task.*"`` (or ``"*"`` with ``family="task"``) for every type of a family. The worker
    runs them with an :class:`~syncmsg.events.EventSubscriber` whose ``service`` is
    ``SYNCMSG["service"]``: one durable consumer per family, ``{service}-task-consumer``
    and so on, shared by every worker process of the service::

        from syncmsg.django import event_handler

        @event_handler("task.created")
        def start_task(event: TaskEvent) -> None:
            Task.objects.filter(pk=event.task_id).update(state="queued")
    """
    name, wire = _family_and_type(event_type, family)

    def register(func: F) -> F:
        if not callable(func):
            raise TypeError("event_handler() decorates a function")
        _register(EventHandler(func, name, wire))
        return func

    return register


def service(
    name: str,
    *,
    version: str,
    description: str = "",
    metadata: dict[str, str] | None = None,
    queue_group: str | None = "q",
    workers: int = 8,
    stats_handler: StatsHandler | None = None,
) -> ServiceSpec:
    """Declare a NATS micro service (:mod:`syncmsg.services`) that the worker runs next to
    the durable consumers; declare its endpoints with the returned spec's ``endpoint``
    decorator. The arguments are those of :func:`syncmsg.services.add_service`; each
    handler call gets fresh database connections, as a request does::

        from syncmsg.django import service

        billing = service("billing", version="1.2.0", description="Charges")

        @billing.endpoint("charge", request_model=Charge)
        def charge(request):
            return {"receipt": Payment.objects.create(**request.parse().model_dump()).pk}

    Every worker process runs one instance; the instances share the requests (queue group
    ``"q"``). Declaring the same name again (a module imported twice) replaces it.
    """
    from syncmsg.services import ServiceSpec

    spec = ServiceSpec(
        name,
        version=version,
        description=description,
        metadata=metadata,
        queue_group=queue_group,
        workers=workers,
        stats_handler=stats_handler,
    )
    _register(ServiceEntry(spec))
    return spec


def registered_handlers() -> tuple[AnyHandler, ...]:
    """Everything registered so far, in registration order."""
    with _lock:
        return tuple(_handlers)


def unregister(func: Callable[..., Any]) -> None:
    """Forget every registration of ``func`` (for tests)."""
    with _lock:
        _handlers[:] = [entry for entry in _handlers if getattr(entry, "func", None) is not func]


def autodiscover(module: str = "handlers") -> tuple[AnyHandler, ...]:
    """Import ``<app>.<module>`` of every installed app that has one; return the handlers."""
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules(module)
    return registered_handlers()

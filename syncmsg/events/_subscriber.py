"""Durable consumers that dispatch typed events to handlers, as the TypeScript subscriber does.

Threading:

* ``on_*_event``, :meth:`EventSubscriber.start` and :meth:`EventSubscriber.stop` may be
  called from any thread but the client's event-loop thread; the registry is guarded by a
  lock, and a handler registered while running takes effect from the next message.
* Each family's durable consumer (``js.subscribe``) has its own pool of worker threads,
  ``syncmsg-js-<sid>-<i>`` (``workers`` each, default 1: events of a family are handled in
  stream order). On a worker the message is decoded (and decrypted), then the handlers
  registered for its type and for ``'*'`` run one after the other, on that worker thread,
  with the event's correlation in the context (:mod:`syncmsg.events._context`).
* Handlers may block, publish events and call the client; they must not call :meth:`stop`
  of their own subscriber (it waits for them).

Delivery outcomes, per message:

=================================  =========================================================
the message                        what happens
=================================  =========================================================
fails validation or decryption     dead-lettered with the error and terminated, at once;
                                   handlers are not called, it is never redelivered
handlers all return                acked
a handler raises, no retry policy  logged (and passed to ``error_callback``), the other
                                   handlers still run, then acked (the TypeScript behaviour)
a handler raises, with ``retry``   the other handlers still run, then the message is nak'd
                                   with the policy's backoff; on the last allowed delivery it
                                   is dead-lettered and terminated
=================================  =========================================================

With a retry policy, redelivered events run *every* handler again, including those that
succeeded: handlers must be idempotent (the event ``id`` is a natural de-duplication key).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from syncmsg import _instrumentation
from syncmsg._deadline import Deadline
from syncmsg._errors import PayloadError, SyncMsgError
from syncmsg._subjects import check_token
from syncmsg.events._codec import EventCodec
from syncmsg.events._context import handling
from syncmsg.events._errors import EventValidationError, HandlerError
from syncmsg.events._models import (
    AgentEvent,
    AgentEventType,
    AuditEvent,
    AuditEventType,
    Event,
    TaskEvent,
    TaskEventType,
    WorkflowEvent,
    WorkflowEventType,
    _EventTypeEnum,
)
from syncmsg.events._streams import (
    AGENT_EVENTS,
    AUDIT_EVENTS,
    DEAD_LETTER_PREFIX,
    TASK_EVENTS,
    EventStreamDef,
)
from syncmsg.jetstream import dead_letter

if TYPE_CHECKING:
    from syncmsg._client import Client
    from syncmsg._msg import Msg
    from syncmsg.jetstream import JetStream, JetStreamSubscription

__all__ = [
    "FAMILIES",
    "EventErrorCallback",
    "EventRetryPolicy",
    "EventSubscriber",
    "consumer_name",
]

log = logging.getLogger("syncmsg.events")

EventT = TypeVar("EventT", bound=AgentEvent | WorkflowEvent | TaskEvent | AuditEvent)
EventErrorCallback = Callable[[BaseException, "Event | None"], object]
"""``error_callback(error, event)``: a handler failed (``event`` is the event), or a message
was dead-lettered as invalid (``event`` is None)."""

WILDCARD = "*"


@dataclasses.dataclass(frozen=True)
class _Family:
    name: str
    model: type[Event]
    types: type[_EventTypeEnum]
    stream: EventStreamDef
    filter: str


FAMILIES: Mapping[str, _Family] = {
    "agent": _Family("agent", AgentEvent, AgentEventType, AGENT_EVENTS, "agent.>"),
    "workflow": _Family("workflow", WorkflowEvent, WorkflowEventType, AGENT_EVENTS, "workflow.>"),
    "task": _Family("task", TaskEvent, TaskEventType, TASK_EVENTS, "task.>"),
    "audit": _Family("audit", AuditEvent, AuditEventType, AUDIT_EVENTS, "audit.>"),
}
"""The four consumers: family → model, stream and filter subject."""


def consumer_name(service: str, family: str) -> str:
    """The durable name of a family's consumer: ``{service}-{family}-consumer``.

    ``consumer_name("api", "agent") == "api-agent-consumer"``, the TypeScript name.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown event family {family!r}: expected one of {', '.join(FAMILIES)}")
    return check_token(f"{service}-{family}-consumer", "consumer name")


@dataclasses.dataclass(frozen=True)
class EventRetryPolicy:
    """Retry events whose handlers raised: nak with backoff, then dead-letter.

    An event is delivered at most ``max_deliver`` times; after delivery ``n`` fails it
    is nak'd with a delay of ``backoff[n - 1]`` seconds (the last step repeats; no backoff:
    at once). When delivery ``max_deliver`` fails too, it is dead-lettered and terminated.
    ``max_deliver`` must be larger than the number of backoff steps.

    The delays are sent with each nak, not set as the consumer's ``backoff``: the server
    would use the first step as the ack wait of every first delivery, cutting the time a
    handler has before a redelivery from ``ack_wait`` down to ``backoff[0]``.
    """

    max_deliver: int = 5
    backoff: tuple[float, ...] = (1.0, 10.0, 60.0, 300.0)

    def __post_init__(self) -> None:
        if isinstance(self.max_deliver, bool) or not isinstance(self.max_deliver, int):
            raise TypeError("max_deliver must be an int")
        if self.max_deliver < 1:
            raise ValueError("max_deliver must be at least 1")
        if any(not step > 0 for step in self.backoff):
            raise ValueError("backoff steps must be positive numbers of seconds")
        if self.backoff and self.max_deliver <= len(self.backoff):
            raise ValueError("max_deliver must be larger than the number of backoff steps")


# Without a retry policy, handler failures are acked, so a message only comes back when its
# process died (or lost the connection) while holding it. After this many deliveries it is
# dead-lettered instead of being handed to yet another process.
_CRASH_MAX_DELIVER = 5


class _Registry(Generic[EventT]):
    """Handlers of one family, by event type (``'*'``: every type)."""

    def __init__(self, family: _Family) -> None:
        self.family = family
        self.handlers: dict[str, list[Callable[[EventT], object]]] = {}

    def key(self, event_type: object) -> str:
        if event_type == WILDCARD:
            return WILDCARD
        try:
            return str(self.family.types(event_type).value)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in self.family.types)
            raise ValueError(
                f"{event_type!r} is not a {self.family.name} event type: expected '*' or one "
                f"of {allowed}"
            ) from None


class EventSubscriber:
    """Handlers for agent, workflow, task and audit events, on durable JetStream consumers.

    Register handlers with :meth:`on_agent_event` & co. (an event type, or ``'*'`` for
    every type of the family), then :meth:`start`. Each family with at least one handler
    gets a durable consumer, created or updated on :meth:`start`:

    ========  ===========================  ===============  ==============
    family    durable (``service="api"``)  stream           filter
    ========  ===========================  ===============  ==============
    agent     ``api-agent-consumer``       ``AGENT_EVENTS`` ``agent.>``
    workflow  ``api-workflow-consumer``    ``AGENT_EVENTS`` ``workflow.>``
    task      ``api-task-consumer``        ``TASK_EVENTS``  ``task.>``
    audit     ``api-audit-consumer``       ``AUDIT_EVENTS`` ``audit.>``
    ========  ===========================  ===============  ==============

    ``service`` names the consumers ``{service}-{family}-consumer``, so that each service
    gets every event (every process of one service shares its consumers, and so the work);
    ``consumer_names`` overrides single names, e.g. ``{"audit": "compliance-audit"}``.

    ``codec`` decodes messages (default: plain JSON; pass the publisher's
    :class:`~syncmsg.events.EncryptingCodec` for encrypted events). ``retry`` switches on
    redelivery of events whose handlers raised (see :class:`EventRetryPolicy`); without it
    a failing handler is logged and the event acked, as on the TypeScript side. Invalid events
    are dead-lettered to ``{dead_letter_prefix}.{consumer name}`` (the
    ``EVENT_DEAD_LETTERS`` stream of :func:`ensure_event_streams` keeps them) and
    terminated. ``error_callback(error, event)`` hears of each handler failure and each
    invalid event. ``workers`` threads per consumer run the handlers (1 keeps order).
    ``js`` is the JetStream context (default ``client.jetstream()``).
    """

    def __init__(
        self,
        client: Client,
        *,
        service: str = "api",
        consumer_names: Mapping[str, str] | None = None,
        codec: EventCodec | None = None,
        retry: EventRetryPolicy | None = None,
        dead_letter_prefix: str = DEAD_LETTER_PREFIX,
        workers: int = 1,
        ack_wait: float = 30.0,
        max_ack_pending: int = 1000,
        error_callback: EventErrorCallback | None = None,
        timeout: float | None = None,
        js: JetStream | None = None,
    ) -> None:
        if codec is not None and not isinstance(codec, EventCodec):
            raise TypeError("codec must be an EventCodec (or an EncryptingCodec)")
        if retry is not None and not isinstance(retry, EventRetryPolicy):
            raise TypeError("retry must be an EventRetryPolicy")
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        names = {family: consumer_name(service, family) for family in FAMILIES}
        for family, name in (consumer_names or {}).items():
            if family not in FAMILIES:
                raise ValueError(
                    f"unknown event family {family!r} in consumer_names: "
                    f"expected one of {', '.join(FAMILIES)}"
                )
            names[family] = check_token(name, "consumer name")
        for token in dead_letter_prefix.split("."):
            check_token(token, "dead_letter_prefix token")
        self._client = client
        self._names = names
        self._codec = codec or EventCodec()
        self._retry = retry
        self._dead_letter_prefix = dead_letter_prefix
        self._workers = workers
        self._ack_wait = ack_wait
        self._max_ack_pending = max_ack_pending
        self._error_callback = error_callback
        self._timeout = timeout
        self._jetstream = js
        self._lock = threading.RLock()
        self._registries: dict[str, _Registry[Any]] = {f: _Registry(FAMILIES[f]) for f in FAMILIES}
        self._subs: dict[str, JetStreamSubscription] = {}
        self._started = False
        self._counts_lock = threading.Lock()
        self._counts = {
            "handled": 0,
            "handler_errors": 0,
            "invalid": 0,
            "retried": 0,
            "dead_lettered": 0,
        }

    def __repr__(self) -> str:
        state = "started" if self._started else "stopped"
        return f"<EventSubscriber {state} consumers={sorted(self._subs)}>"

    def __enter__(self) -> EventSubscriber:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ registration
    def on_agent_event(
        self, event_type: AgentEventType | str, handler: Callable[[AgentEvent], object]
    ) -> Callable[[AgentEvent], object]:
        """Call ``handler(event)`` for agent events of ``event_type`` (``'*'``: all)."""
        return self._register("agent", event_type, handler)

    def on_workflow_event(
        self, event_type: WorkflowEventType | str, handler: Callable[[WorkflowEvent], object]
    ) -> Callable[[WorkflowEvent], object]:
        """Call ``handler(event)`` for workflow events of ``event_type`` (``'*'``: all)."""
        return self._register("workflow", event_type, handler)

    def on_task_event(
        self, event_type: TaskEventType | str, handler: Callable[[TaskEvent], object]
    ) -> Callable[[TaskEvent], object]:
        """Call ``handler(event)`` for task events of ``event_type`` (``'*'``: all)."""
        return self._register("task", event_type, handler)

    def on_audit_event(
        self, event_type: AuditEventType | str, handler: Callable[[AuditEvent], object]
    ) -> Callable[[AuditEvent], object]:
        """Call ``handler(event)`` for audit events of ``event_type`` (``'*'``: all)."""
        return self._register("audit", event_type, handler)

    def _register(
        self, family: str, event_type: object, handler: Callable[[EventT], object]
    ) -> Callable[[EventT], object]:
        if not callable(handler):
            raise TypeError("handler must be callable")
        registry = self._registries[family]
        type_key = registry.key(event_type)
        with self._lock:
            # Copy on write: dispatching threads read the lists without the lock.
            handlers: dict[str, list[Callable[[EventT], object]]] = dict(registry.handlers)
            handlers[type_key] = [*handlers.get(type_key, ()), handler]
            registry.handlers = handlers
            subscribe_now = self._started and family not in self._subs
        if subscribe_now:
            self._subscribe(family, self._timeout)
        return handler

    # ------------------------------------------------------------------ lifecycle
    @property
    def consumer_names(self) -> dict[str, str]:
        """The durable consumer name of each family."""
        return dict(self._names)

    @property
    def subscriptions(self) -> dict[str, JetStreamSubscription]:
        """The running consumers' subscriptions, by family."""
        with self._lock:
            return dict(self._subs)

    @property
    def is_running(self) -> bool:
        return self._started

    def stats(self) -> dict[str, Any]:
        """Counters: ``handled`` events, ``handler_errors``, ``invalid`` (dead-lettered)
        messages, events ``retried`` (nak'd) and ``dead_lettered`` after their last
        delivery, and each running consumer's subscription stats."""
        with self._counts_lock:
            data: dict[str, Any] = dict(self._counts)
        data["consumers"] = {family: sub.stats() for family, sub in self.subscriptions.items()}
        return data

    def _count(self, what: str) -> None:
        with self._counts_lock:
            self._counts[what] += 1

    def dead_letter_subject(self, family: str) -> str:
        """Where the ``family`` consumer's dead letters go."""
        return f"{self._dead_letter_prefix}.{self._names[family]}"

    def start(self, timeout: float | None = None) -> EventSubscriber:
        """Create (or update) the durable consumer of each family that has handlers and
        start handling; returns the subscriber. Idempotent.

        The event streams must exist (:func:`ensure_event_streams`). Each consumer's
        creation is bounded by ``timeout``; if one fails, those already started are stopped
        and the error is raised.
        """
        timeout = self._timeout if timeout is None else timeout
        with self._lock:
            if self._started:
                return self
            self._started = True
            families = [f for f, registry in self._registries.items() if registry.handlers]
        if not families:
            log.warning("syncmsg: EventSubscriber started without handlers: nothing to consume")
        try:
            for family in families:
                self._subscribe(family, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop consuming: handlers finish the events in hand (bounded by ``timeout``,
        default ``config.drain_timeout``), then each subscription ends. The durable
        consumers stay on the server, so a restarted subscriber continues where this one
        stopped. Idempotent; :meth:`start` may be called again afterwards.
        """
        with self._lock:
            subs = list(self._subs.items())
            self._subs.clear()
            self._started = False
        if not subs:
            return
        wait = timeout if timeout is not None else self._client.config.drain_timeout
        deadline = Deadline(wait)
        failures: list[str] = []
        for family, sub in subs:
            try:
                sub.drain(max(deadline.left(), 0.001))
            except SyncMsgError as exc:
                failures.append(f"{family}: {exc}")
        if failures:
            log.warning("syncmsg: EventSubscriber.stop: %s", "; ".join(failures))

    def _subscribe(self, family: str, timeout: float | None) -> None:
        spec = FAMILIES[family]
        retry = self._retry
        durable = self._names[family]

        def on_message(msg: Msg) -> None:
            self._dispatch(spec, msg)

        with self._lock:
            if not self._started or family in self._subs:
                return
            js = self._jetstream if self._jetstream is not None else self._client.jetstream()
            sub = js.subscribe(
                spec.filter,
                on_message,
                durable=durable,
                stream=spec.stream.name,
                workers=self._workers,
                max_ack_pending=self._max_ack_pending,
                ack_wait=self._ack_wait,
                max_deliver=retry.max_deliver if retry else _CRASH_MAX_DELIVER,
                dead_letter=self.dead_letter_subject(family),
                description=f"{family} events ({spec.filter}), syncmsg EventSubscriber",
                timeout=timeout,
            )
            self._subs[family] = sub
        log.info(
            "syncmsg: consuming %s events from %s/%s (%s)",
            family,
            spec.stream.name,
            durable,
            spec.filter,
        )

    # ------------------------------------------------------------------ worker threads
    def _dispatch(self, family: _Family, msg: Msg) -> None:
        try:
            event = self._codec.decode(msg.data, msg.headers, subject=msg.subject)
            if not isinstance(event, family.model):
                raise EventValidationError(
                    f"a {event.type.value} event does not belong on the {family.name} "
                    f"consumer ({msg.subject!r})"
                )
        except PayloadError as exc:  # EventValidationError, DecryptionError
            self._count("invalid")
            log.warning(
                "syncmsg: invalid %s event on %r, dead-lettering it: %s",
                family.name,
                msg.subject,
                " ".join(str(exc).split()),
            )
            self._report(exc, None)
            _instrumentation.handler_failed(exc)
            dead_letter(msg, exc)  # raises DeadLetterError: nak'd, tried again later
            return
        registry = self._registries[family.name]
        handlers = registry.handlers  # a snapshot: lists are replaced, never mutated
        chosen = [*handlers.get(event.type.value, ()), *handlers.get(WILDCARD, ())]
        errors: list[BaseException] = []
        with handling(event), _instrumentation.event_scope(event, handling=True):
            for handler in chosen:
                try:
                    handler(event)
                except Exception as exc:
                    errors.append(exc)
                    _instrumentation.handler_failed(exc)
                    self._count("handler_errors")
                    log.exception(
                        "syncmsg: %s handler %s failed for event %s (%s)",
                        event.type.value,
                        getattr(handler, "__qualname__", repr(handler)),
                        event.id,
                        msg.subject,
                    )
                    self._report(exc, event)
        self._count("handled")
        retry = self._retry
        if not errors or retry is None:
            return  # acked by the subscription on return
        delivered = _delivery(msg)
        error = HandlerError(
            f"{len(errors)} of {len(chosen)} handlers failed for {event.type.value} event "
            f"{event.id} (delivery {delivered} of {retry.max_deliver}): "
            + "; ".join(f"{type(e).__name__}: {e}" for e in errors),
            errors=errors,
        )
        if delivered >= retry.max_deliver:
            self._count("dead_lettered")
            dead_letter(msg, error)  # raises DeadLetterError: nak'd, tried again later
            return
        delay = None
        if retry.backoff:
            delay = retry.backoff[min(max(delivered, 1), len(retry.backoff)) - 1]
        self._count("retried")
        log.warning(
            "syncmsg: %s event %s will be redelivered%s (delivery %d of %d failed)",
            event.type.value,
            event.id,
            f" in {delay:g}s" if delay else "",
            delivered,
            retry.max_deliver,
        )
        msg.nak(delay)

    def _report(self, error: BaseException, event: Event | None) -> None:
        callback = self._error_callback
        if callback is None:
            return
        try:
            callback(error, event)
        except Exception:
            log.exception("syncmsg: EventSubscriber error_callback raised")


def _delivery(msg: Msg) -> int:
    try:
        return msg.metadata.num_delivered
    except ValueError:
        return 0

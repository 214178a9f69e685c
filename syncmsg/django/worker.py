"""The long-lived worker behind ``manage.py syncmsg_worker``.

:class:`Worker` subscribes every registered handler (see :mod:`syncmsg.django._registry`):
each :func:`~syncmsg.django.handler` gets its durable JetStream consumer, and the
:func:`~syncmsg.django.event_handler` functions share one
:class:`~syncmsg.events.EventSubscriber` (one durable consumer per event family), and
each :func:`~syncmsg.django.service` is started as a NATS micro service
(:mod:`syncmsg.services`), its handlers wrapped like the others.

Threading: :meth:`Worker.start`, :meth:`Worker.wait` and :meth:`Worker.stop` run on the
caller's thread (the command's main thread). Handlers run on syncmsg's worker threads
(``syncmsg-js-<sid>-<i>``), never on a request thread, so each call is wrapped the way
Django wraps a request: query log reset and stale connections closed before, connections
closed after (:func:`django.db.close_old_connections`, which honours ``CONN_MAX_AGE``).

Stopping (:meth:`Worker.stop`): every consumer stops asking for messages; messages the
server sends after that are given back at once (nak); the messages already in hand are
handled and acked; then the subscriptions end, all under one deadline. A message whose
handler has not finished by then is not acked and comes back after ``ack_wait``. Services
stop at the same time: they drain, answering the requests they hold (``Service.stop``).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from syncmsg._client import Client
from syncmsg._errors import SyncMsgError
from syncmsg._msg import Msg
from syncmsg.django import conf
from syncmsg.django._registry import AnyHandler, DurableHandler, EventHandler, ServiceEntry
from syncmsg.jetstream import JetStream, JetStreamSubscription

__all__ = ["Worker", "django_call"]

log = logging.getLogger("syncmsg.django")


def django_call(func: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap a handler as Django wraps a request: fresh database connections around it."""

    @functools.wraps(func)
    def call(arg: Any) -> Any:
        from django import db

        db.reset_queries()
        db.close_old_connections()
        try:
            return func(arg)
        finally:
            db.close_old_connections()

    return call


class _PrefetchJetStream(JetStream):
    """A JetStream context whose subscriptions hold at most ``prefetch`` messages, so that
    a stopping worker has few in hand to finish (EventSubscriber takes no prefetch)."""

    def __init__(self, client: Client, prefetch: int, **options: Any) -> None:
        super().__init__(client, **options)
        self._prefetch = prefetch

    def subscribe(  # type: ignore[override]  # durable consumers only, never ordered ones
        self, subject: str, handler: Callable[[Msg], Any], **options: Any
    ) -> JetStreamSubscription:
        if options.get("prefetch") is None:
            options["prefetch"] = self._prefetch
        sub: JetStreamSubscription = super().subscribe(subject, handler, **options)
        return sub


class Worker:
    """Runs handlers on durable consumers until stopped.

    ``handlers`` default to everything registered (call
    :func:`~syncmsg.django.autodiscover` first). ``client`` defaults to the process
    client (:func:`~syncmsg.django.get_client`), which also ensures the configured
    streams. ``options`` default to ``SYNCMSG["worker"]``; ``service`` to
    ``SYNCMSG["service"]``.
    """

    def __init__(
        self,
        handlers: Sequence[AnyHandler] | None = None,
        *,
        client: Client | None = None,
        options: conf.WorkerOptions | None = None,
        service: str | None = None,
        jetstream: dict[str, Any] | None = None,
    ) -> None:
        if handlers is None:
            from syncmsg.django._registry import registered_handlers

            handlers = registered_handlers()
        self.handlers = tuple(handlers)
        self._client = client
        self._options = options
        self._service = service
        self._jetstream = jetstream
        self._subs: list[Any] = []  # JetStreamSubscription
        self._events: Any = None  # EventSubscriber
        self._services: list[Any] = []  # syncmsg.services.Service
        self._started = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = "running" if self._started else "stopped"
        return f"<syncmsg.django.Worker {state} handlers={len(self.handlers)}>"

    @property
    def client(self) -> Client:
        if self._client is None:
            from syncmsg.django._process import get_client

            self._client = get_client()
        return self._client

    def start(self, timeout: float | None = None) -> None:
        """Create (or update) the durable consumers and start handling.

        If one subscription fails, those already made are stopped and the error raised.
        """
        with self._lock:
            if self._started:
                return
            self._started = True
        given = (self._options, self._service, self._jetstream)
        settings = conf.load() if any(value is None for value in given) else None
        options = self._options or (settings.worker if settings else conf.WorkerOptions())
        service = self._service or (settings.service if settings else conf.DEFAULT_SERVICE)
        js_options = self._jetstream
        if js_options is None:
            js_options = settings.jetstream if settings else {}
        client = self.client
        try:
            durable = [h for h in self.handlers if isinstance(h, DurableHandler)]
            events = [h for h in self.handlers if isinstance(h, EventHandler)]
            js = _PrefetchJetStream(client, options.effective_prefetch, **js_options)
            for entry in durable:
                opts = {k: v for k, v in entry.options.items() if v is not None}
                opts.setdefault("workers", options.workers)
                sub = js.subscribe(
                    entry.subject,
                    django_call(entry.func),
                    durable=entry.durable,
                    description=f"syncmsg_worker: {entry.name}",
                    timeout=timeout,
                    **opts,
                )
                self._subs.append(sub)
                log.info("syncmsg: worker consuming %s", entry.describe())
            if events:
                self._events = self._event_subscriber(client, js, events, options, service, timeout)
            for declared in (h for h in self.handlers if isinstance(h, ServiceEntry)):
                self._services.append(
                    declared.spec.start(client, wrap=django_call, timeout=timeout)
                )
                log.info("syncmsg: worker running %s", declared.describe())
        except BaseException:
            self.stop(timeout or 5.0)
            raise

    def _event_subscriber(
        self,
        client: Client,
        js: JetStream,
        events: Sequence[EventHandler],
        options: conf.WorkerOptions,
        service: str,
        timeout: float | None,
    ) -> Any:
        from syncmsg.events import EventRetryPolicy, EventSubscriber

        retry = EventRetryPolicy() if options.retry == "default" else options.retry
        subscriber = EventSubscriber(
            client,
            js=js,
            service=service,
            retry=retry,
            workers=options.workers,
            ack_wait=options.ack_wait,
            max_ack_pending=options.max_ack_pending,
            timeout=timeout,
        )
        register = {
            "agent": subscriber.on_agent_event,
            "workflow": subscriber.on_workflow_event,
            "task": subscriber.on_task_event,
            "audit": subscriber.on_audit_event,
        }
        for entry in events:
            register[entry.family](entry.event_type, django_call(entry.func))
            log.info("syncmsg: worker consuming %s", entry.describe())
        return subscriber.start()

    def subscriptions(self) -> list[Any]:
        """Every running JetStream subscription (durable handlers and event consumers)."""
        subs = list(self._subs)
        if self._events is not None:
            subs.extend(self._events.subscriptions.values())
        return subs

    def services(self) -> list[Any]:
        """Every running service (:class:`syncmsg.services.Service`)."""
        return list(self._services)

    def stats(self) -> dict[str, Any]:
        """Per-subscription counters (handled, acked, nakked, redelivered, ...)."""
        return {f"{sub.stream}/{sub.durable}": sub.stats() for sub in self.subscriptions()}

    def wait(self, stop: threading.Event, poll: float = 0.5) -> bool:
        """Block until ``stop`` is set (True) or the connection is closed for good (False)."""
        while not stop.wait(poll):
            if self.client.is_closed:
                log.error("syncmsg: the worker's connection is closed; stopping")
                return False
        return True

    def stop(self, timeout: float | None = None) -> bool:
        """Stop taking messages, finish and ack those in hand, end the subscriptions.

        Everything happens under one deadline (default ``SYNCMSG["worker"]
        ["shutdown_timeout"]``). Returns False when some handlers had not finished by then
        (their messages were not acked and will be delivered again).
        """
        if timeout is None:
            timeout = (self._options or conf.load().worker).shutdown_timeout
        deadline = time.monotonic() + timeout
        failures: list[str] = []

        def drain(sub: Any) -> None:
            try:
                sub.drain(max(deadline - time.monotonic(), 0.001))
            except SyncMsgError as exc:
                failures.append(str(exc))

        def stop_service(svc: Any) -> None:
            if not svc.stop(max(deadline - time.monotonic(), 0.001)):
                failures.append(f"service {svc.name!r} did not answer every request in hand")

        # Every consumer stops pulling at once; then each finishes what it holds.
        threads = [
            threading.Thread(
                target=drain, args=(sub,), name=f"syncmsg-stop-{sub.durable}", daemon=True
            )
            for sub in self.subscriptions()
        ]
        threads += [
            threading.Thread(
                target=stop_service, args=(svc,), name=f"syncmsg-stop-{svc.name}", daemon=True
            )
            for svc in self._services
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0) + 1.0)
        finished = not failures and not any(thread.is_alive() for thread in threads)
        for failure in failures:
            log.warning("syncmsg: worker stop: %s", failure)
        if self._events is not None:
            self._events.stop(max(deadline - time.monotonic(), 0.001))
            self._events = None
        self._subs.clear()
        self._services.clear()
        with self._lock:
            self._started = False
        return finished

"""The seam between the core (and its layers) and an instrumentation such as ``syncmsg.otel``.

Threading: :data:`active` is read by every thread that publishes, requests, subscribes or
handles a message (caller threads, worker threads, the acks thread), with one attribute
load; it is set by :func:`install` and :func:`uninstall`, from any thread, rarely (a plain
assignment: readers see the old hooks or the new ones, never half of either). Hooks run on
the thread of the call they observe; that is the event-loop thread only for syncmsg's own
acks and naks sent from it (``publish`` of a ``$JS.ACK`` subject, ``settled``), which never
block.

When nothing is installed, :data:`active` is None and each seam costs one attribute check:
``publish`` looks at it once per call, subscriptions once when they are made (their
callbacks are wrapped then, not checked per message). The core never imports
``syncmsg.otel`` or OpenTelemetry at module level: :func:`enable` imports it when a
:class:`~syncmsg.Config` asks for ``tracing``.

:class:`Hooks` is the whole interface, in the order the seams meet a message: sending
(``publish``, ``request``, ``js_publish``, ``js_publish_async``), handling (``process``
and ``js_process`` wrap a subscription's callback at subscribe time; ``received`` reports
messages taken by ``next_msg``/``fetch``), settling (``settled``, ``dead_lettered``),
what the layers above know about the message being handled (``handler_failed``,
``service_call``, ``event``), and ``stamp`` for messages that someone else sends later (the
Django outbox). A send hook calls back into the public method it was called from, with the
headers in a :class:`TracedHeaders`, which tells the method that the hook has already seen
this call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import concurrent.futures

    from syncmsg._msg import Msg
    from syncmsg._types import Headers

__all__ = [
    "Hooks",
    "TracedHeaders",
    "active",
    "dead_lettered",
    "enable",
    "event_scope",
    "handler_failed",
    "install",
    "uninstall",
]


class TracedHeaders(dict[str, Any]):
    """Headers a send hook has seen (and into which it may have put a trace context).

    A publish, request or JetStream publish whose ``headers`` are of this type goes
    straight on: the hook that made them is the caller.
    """

    __slots__ = ()


class Hooks(Protocol):
    """What an instrumentation provides; every method runs on the thread named."""

    # -- sending (the caller's thread) -------------------------------------------------------
    def publish(
        self, client: Any, subject: str, data: Any, headers: Headers | None, reply: str | None
    ) -> None:
        """Send ``client.publish(...)`` (again, with :class:`TracedHeaders`)."""

    def request(
        self,
        client: Any,
        subject: str,
        data: Any,
        headers: Headers | None,
        timeout: float | None,
        retry: Any,
    ) -> Msg:
        """Send ``client.request(...)`` (again, with :class:`TracedHeaders`)."""

    def js_publish(self, send: Callable[..., Any], subject: str, **options: Any) -> Any:
        """Call ``send(subject, **options)``, a JetStream publish, and return its PubAck."""

    def js_publish_async(
        self, send: Callable[..., concurrent.futures.Future[Any]], subject: str, **options: Any
    ) -> concurrent.futures.Future[Any]:
        """Call ``send(subject, **options)`` and return its future."""

    # -- handling (wrapped on the subscribing thread, run on worker threads) -----------------
    def process(
        self, client: Any, subject: str, queue: str, callback: Callable[[Msg], Any]
    ) -> Callable[[Msg], Any]:
        """The callback of a core subscription, wrapped."""

    def js_process(self, subscription: Any, handle: Callable[[Msg], Any]) -> Callable[[Msg], Any]:
        """What a JetStream subscription's workers run for each message, wrapped."""

    def received(self, subscription: Any, msgs: list[Any], started_ns: int) -> None:
        """``msgs`` were taken by ``next_msg``/``fetch`` (the reading thread)."""

    # -- settling and the layers above (the thread handling the message) --------------------
    def settled(self, msg: Msg, body: bytes) -> None:
        """``msg`` was settled with ``body`` (``+ACK``, ``-NAK``, ``+TERM``...), from any
        thread."""

    def dead_lettered(self, msg: Msg, subject: str | None, reason: str) -> None:
        """``msg`` was moved to ``subject`` (None: only terminated), because of ``reason``."""

    def handler_failed(self, error: BaseException) -> None:
        """A handler raised and the layer answered for it (an error reply, a nak)."""

    def service_call(self, service: str, endpoint: str, error_code: str | None) -> None:
        """The current message is a request to a service endpoint."""

    def event(self, event: Any, *, handling: bool) -> contextlib.AbstractContextManager[None]:
        """A typed event is being published (``handling=False``) or handled."""

    def stamp(self, headers: dict[str, Any] | None) -> dict[str, Any] | None:
        """``headers`` with the current trace context added, for a message that another
        thread or process sends later (the Django outbox's relay); the caller's thread."""


#: The installed hooks; None when nothing is instrumented.
active: Hooks | None = None


def install(hooks: Hooks) -> None:
    """Make ``hooks`` the active instrumentation (clients already made see it at once;
    subscriptions made before keep their unwrapped callbacks)."""
    global active
    active = hooks


def uninstall() -> None:
    global active
    active = None


def enable() -> None:
    """Turn on ``syncmsg.otel`` (``Config(tracing=True)``); raises
    :class:`~syncmsg.ConfigurationError` when its extra is not installed."""
    if active is not None:
        return
    from syncmsg import otel

    otel.instrument()


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


def event_scope(event: Any, *, handling: bool) -> contextlib.AbstractContextManager[None]:
    """Tell the instrumentation (if any) about the typed event being published or handled,
    for the spans made inside the block."""
    hooks = active
    if hooks is None:
        return _nothing()
    return hooks.event(event, handling=handling)


# Seams off the hot path (failures, dead letters), read ``active`` once, like the others.
def handler_failed(error: BaseException) -> None:
    """Tell the instrumentation (if any) that a handler raised and the layer answered."""
    hooks = active
    if hooks is not None:
        hooks.handler_failed(error)


def dead_lettered(msg: Msg, subject: str | None, reason: str) -> None:
    """Tell the instrumentation (if any) that ``msg`` was dead-lettered."""
    hooks = active
    if hooks is not None:
        hooks.dead_lettered(msg, subject, reason)

"""The hooks that :func:`syncmsg.otel.instrument` installs: spans, metrics, propagation.

Threading: each hook runs on the thread named in :class:`syncmsg._instrumentation.Hooks`.
Send hooks run on the caller's thread, so the span they start is a child of the caller's
current span, and the context goes into the message headers there; nothing is handed to
the event-loop thread but the headers. Process wrappers run on the subscription's worker
threads (``syncmsg-sub-<sid>-<i>``, ``syncmsg-js-<sid>-<i>``): each takes the context out
of the message's headers, attaches it, and makes the process span current around the
callback, so that the callback, and what it publishes, continue the sender's trace. A
JetStream ``publish_async`` span ends on the thread that resolves its future. Settle
spans run where ack/nak/term are called.

The names follow the OpenTelemetry messaging semantic conventions (1.27 and later):
operation types ``send``, ``receive``, ``process`` and ``settle``; NATS's own facts
(JetStream stream, sequences, delivery count, services) are ``messaging.nats.*``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from syncmsg._codec import encode_payload
from syncmsg._instrumentation import TracedHeaders

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider
    from opentelemetry.util.types import Attributes

    from syncmsg._msg import Msg
    from syncmsg._types import Headers

__all__ = ["Tracing", "extract_context"]

SCHEMA_URL = "https://opentelemetry.io/schemas/1.27.0"
SYSTEM = "nats"

# The conventions' attribute names, spelled once.
A_SYSTEM = "messaging.system"
A_DESTINATION = "messaging.destination.name"
A_TEMPLATE = "messaging.destination.template"
A_TEMPORARY = "messaging.destination.temporary"
A_SUBSCRIPTION = "messaging.destination.subscription.name"
A_GROUP = "messaging.consumer.group.name"
A_OPERATION_TYPE = "messaging.operation.type"
A_OPERATION_NAME = "messaging.operation.name"
A_MESSAGE_ID = "messaging.message.id"
A_CONVERSATION = "messaging.message.conversation_id"
A_BODY_SIZE = "messaging.message.body.size"
A_BATCH = "messaging.batch.message_count"
A_ERROR = "error.type"
A_STREAM = "messaging.nats.stream"
A_STREAM_SEQUENCE = "messaging.nats.stream.sequence"
A_CONSUMER_SEQUENCE = "messaging.nats.consumer.sequence"
A_DELIVERY_COUNT = "messaging.nats.message.delivery_count"
A_DUPLICATE = "messaging.nats.message.duplicate"
A_SERVICE = "messaging.nats.service.name"
A_ENDPOINT = "messaging.nats.service.endpoint"
A_SERVICE_ERROR = "messaging.nats.service.error"
A_EVENT_TYPE = "syncmsg.event.type"
A_DEAD_LETTER_SUBJECT = "messaging.nats.dead_letter.subject"
A_DEAD_LETTER_REASON = "messaging.nats.dead_letter.reason"

MSG_ID_HEADER = "Nats-Msg-Id"
INBOX_PREFIX = "_INBOX."

# Settle bodies (JetStream's ack protocol) and the operation name each one is.
SETTLE_NAMES = {b"+ACK": "ack", b"-NAK": "nak", b"+TERM": "term", b"+WPI": "in_progress"}

#: What the event being published on this thread adds to its publish span.
_publishing_event: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "syncmsg_publishing_event", default=None
)


class _HeaderGetter(Getter[Mapping[str, Any]]):
    """Reads headers as OpenTelemetry's propagators ask: exact key first, then any case
    (a peer may have written ``Traceparent``)."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            lowered = key.lower()
            for name, candidate in carrier.items():
                if name.lower() == lowered:
                    value = candidate
                    break
            else:
                return None
        return [value] if isinstance(value, str) else list(value)

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return list(carrier)


_getter = _HeaderGetter()
_EMPTY: Mapping[str, Any] = {}


def extract_context(headers: Mapping[str, Any] | None) -> Context:
    """The context the sender's propagator wrote into ``headers`` (empty when none)."""
    return propagate.extract(headers or _EMPTY, getter=_getter)


def _traced(headers: Headers | None, span: Span | None) -> TracedHeaders:
    """A copy of ``headers`` with ``span``'s context (and the current baggage) in it."""
    traced = TracedHeaders(headers or _EMPTY)
    if span is not None:
        propagate.inject(traced, context=trace.set_span_in_context(span))
    return traced


def _size(data: Any) -> tuple[bytes, int]:
    payload = data if type(data) is bytes else encode_payload(data)
    return payload, len(payload)


def _internal(subject: str) -> bool:
    """``$JS.API``, acks, ``$SRV`` discovery, ``$SYS``, KV's ``$KV`` and the object store's
    ``$O``: the protocol and syncmsg's own stores, not the application's messages."""
    return subject.startswith("$")


def _in_trace() -> bool:
    """Whether this thread has a current span (of its own, or a sender's attached)."""
    return trace.get_current_span().get_span_context().is_valid


def _link(headers: Mapping[str, Any] | None) -> Link | None:
    span_context = trace.get_current_span(extract_context(headers)).get_span_context()
    return Link(span_context) if span_context.is_valid else None


def _fail(span: Span, error: BaseException) -> None:
    span.record_exception(error)
    span.set_attribute(A_ERROR, type(error).__qualname__)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))


def _js_attributes(msg: Msg, attributes: dict[str, Any]) -> None:
    """Add what a JetStream message's ack subject and headers tell."""
    try:
        meta = msg.metadata
    except ValueError:
        return
    attributes[A_STREAM] = meta.stream
    attributes[A_SUBSCRIPTION] = meta.consumer
    attributes[A_STREAM_SEQUENCE] = meta.sequence_stream
    attributes[A_CONSUMER_SEQUENCE] = meta.sequence_consumer
    attributes[A_DELIVERY_COUNT] = meta.num_delivered


def _message_attributes(msg: Msg) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        A_DESTINATION: msg.subject,
        A_BODY_SIZE: len(msg.data),
    }
    headers = msg.headers
    if headers:
        msg_id = headers.get(MSG_ID_HEADER)
        if isinstance(msg_id, str):
            attributes[A_MESSAGE_ID] = msg_id
    return attributes


class Tracing:
    """The :class:`syncmsg._instrumentation.Hooks` of OpenTelemetry."""

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        from syncmsg import __version__

        self.tracer = trace.get_tracer(
            "syncmsg", __version__, tracer_provider=tracer_provider, schema_url=SCHEMA_URL
        )
        meter = metrics.get_meter(
            "syncmsg", __version__, meter_provider=meter_provider, schema_url=SCHEMA_URL
        )
        self.sent = meter.create_counter(
            "messaging.client.sent.messages",
            unit="{message}",
            description="Messages the client sent (publishes, requests, JetStream publishes).",
        )
        self.consumed = meter.create_counter(
            "messaging.client.consumed.messages",
            unit="{message}",
            description="Messages handed to callbacks and handlers, or taken by reads.",
        )
        self.operation_duration = meter.create_histogram(
            "messaging.client.operation.duration",
            unit="s",
            description="How long a request took until its reply, or a JetStream publish "
            "until its ack.",
        )
        self.process_duration = meter.create_histogram(
            "messaging.process.duration",
            unit="s",
            description="How long a callback, handler or service endpoint took.",
        )
        self.in_flight = meter.create_up_down_counter(
            "syncmsg.process.in_flight",
            unit="{message}",
            description="Messages a subscription's callbacks or handlers are handling now.",
        )

    # -- sending (the caller's thread) -------------------------------------------------------
    def _send_span(
        self,
        operation: str,
        subject: str,
        size: int,
        kind: SpanKind,
        headers: Headers | None,
        extra: Attributes = None,
    ) -> Span:
        """A send span, child of the current span; or, when there is none and ``headers``
        already carry a context (a message the Django outbox stamped when it was written),
        of that context."""
        temporary = subject.startswith(INBOX_PREFIX)
        attributes: dict[str, Any] = {
            A_SYSTEM: SYSTEM,
            A_DESTINATION: subject,
            A_OPERATION_TYPE: "send",
            A_OPERATION_NAME: operation,
            A_BODY_SIZE: size,
        }
        if temporary:
            attributes[A_TEMPORARY] = True
        if extra:
            attributes.update(extra)
        event = _publishing_event.get()
        if event:
            attributes.update(event)
        name = f"{operation} {'(temporary)' if temporary else subject}"
        parent = None
        if headers and not _in_trace():
            parent = extract_context(headers)
        return self.tracer.start_span(name, parent, kind=kind, attributes=attributes)

    def _count_sent(self, operation: str, subject: str, started: float | None, error: str) -> None:
        """Count one send; ``started`` (None for a core publish, which only queues the
        message) also records how long it took until the server's answer."""
        attributes = {
            A_SYSTEM: SYSTEM,
            A_OPERATION_NAME: operation,
            A_DESTINATION: "(temporary)" if subject.startswith(INBOX_PREFIX) else subject,
        }
        if error:
            attributes[A_ERROR] = error
        self.sent.add(1, attributes)
        if started is not None:
            self.operation_duration.record(time.perf_counter() - started, attributes)

    def publish(
        self, client: Any, subject: str, data: Any, headers: Headers | None, reply: str | None
    ) -> None:
        if _internal(subject) or (subject.startswith(INBOX_PREFIX) and not _in_trace()):
            # The protocol's own; or a reply sent outside any trace ($SRV discovery's), which
            # would be a trace of one span.
            client.publish(subject, data, headers=TracedHeaders(headers or _EMPTY), reply=reply)
            return
        payload, size = _size(data)
        span = self._send_span("publish", subject, size, SpanKind.PRODUCER, headers)
        error = ""
        try:
            client.publish(subject, payload, headers=_traced(headers, span), reply=reply)
        except BaseException as exc:
            error = type(exc).__qualname__
            _fail(span, exc)
            raise
        finally:
            span.end()
            self._count_sent("publish", subject, None, error)

    def request(
        self,
        client: Any,
        subject: str,
        data: Any,
        headers: Headers | None,
        timeout: float | None,
        retry: Any,
    ) -> Msg:
        if _internal(subject):
            answer: Msg = client.request(
                subject, data, headers=TracedHeaders(headers or _EMPTY), timeout=timeout,
                retry=retry,
            )  # fmt: skip
            return answer
        started = time.perf_counter()
        payload, size = _size(data)
        span = self._send_span("request", subject, size, SpanKind.CLIENT, headers)
        error = ""
        try:
            with trace.use_span(span, end_on_exit=False):
                answer = client.request(
                    subject, payload, headers=_traced(headers, span), timeout=timeout,
                    retry=retry,
                )  # fmt: skip
            span.set_attribute("messaging.nats.reply.body.size", len(answer.data))
            return answer
        except BaseException as exc:
            error = type(exc).__qualname__
            _fail(span, exc)
            raise
        finally:
            span.end()
            self._count_sent("request", subject, started, error)

    def js_publish(self, send: Callable[..., Any], subject: str, **options: Any) -> Any:
        if _internal(subject):  # a KV put, an object store's chunk or its meta
            return send(subject, headers=TracedHeaders(options.pop("headers") or _EMPTY), **options)
        started = time.perf_counter()
        payload, size = _size(options.pop("data"))
        span = self._js_span(subject, size, options.get("msg_id"), options.get("headers"))
        error = ""
        try:
            ack = send(
                subject, data=payload, headers=_traced(options.pop("headers"), span), **options
            )
            self._acked(span, ack)
            return ack
        except BaseException as exc:
            error = type(exc).__qualname__
            _fail(span, exc)
            raise
        finally:
            span.end()
            self._count_sent("publish", subject, started, error)

    def js_publish_async(
        self, send: Callable[..., concurrent.futures.Future[Any]], subject: str, **options: Any
    ) -> concurrent.futures.Future[Any]:
        if _internal(subject):
            return send(subject, headers=TracedHeaders(options.pop("headers") or _EMPTY), **options)
        started = time.perf_counter()
        payload, size = _size(options.pop("data"))
        span = self._js_span(subject, size, options.get("msg_id"), options.get("headers"))
        try:
            future = send(
                subject, data=payload, headers=_traced(options.pop("headers"), span), **options
            )
        except BaseException as exc:
            _fail(span, exc)
            span.end()
            self._count_sent("publish", subject, started, type(exc).__qualname__)
            raise

        def done(future: concurrent.futures.Future[Any]) -> None:
            """The thread that resolves the future (the acks thread, or a caller's)."""
            error = ""
            if future.cancelled():
                error = "cancelled"
                span.set_status(Status(StatusCode.ERROR, "cancelled"))
            elif (exc := future.exception()) is not None:
                error = type(exc).__qualname__
                _fail(span, exc)
            else:
                self._acked(span, future.result())
            span.end()
            self._count_sent("publish", subject, started, error)

        future.add_done_callback(done)
        return future

    def _js_span(
        self, subject: str, size: int, msg_id: str | None, headers: Headers | None
    ) -> Span:
        extra = {A_MESSAGE_ID: msg_id} if msg_id else None
        return self._send_span("publish", subject, size, SpanKind.PRODUCER, headers, extra)

    @staticmethod
    def _acked(span: Span, ack: Any) -> None:
        span.set_attribute(A_STREAM, ack.stream)
        span.set_attribute(A_STREAM_SEQUENCE, ack.seq)
        if ack.duplicate:
            span.set_attribute(A_DUPLICATE, True)

    # -- handling (worker threads) --------------------------------------------------------
    def _wrap(
        self,
        name: str,
        base: dict[str, Any],
        js: bool,
        callback: Callable[[Msg], Any],
    ) -> Callable[[Msg], Any]:
        """``callback`` inside a process span whose parent is the sender's context."""
        tracer = self.tracer
        in_flight, consumed, duration = self.in_flight, self.consumed, self.process_duration
        measured = {
            k: base[k]
            for k in (A_SYSTEM, A_OPERATION_NAME, A_TEMPLATE, A_SUBSCRIPTION, A_GROUP)
            if k in base
        }

        def traced(msg: Msg) -> Any:
            """A worker thread of the subscription."""
            attributes = {**base, **_message_attributes(msg)}
            if js:
                _js_attributes(msg, attributes)
            token = otel_context.attach(extract_context(msg.headers))
            in_flight.add(1, measured)
            started = time.perf_counter()
            error = ""
            try:
                with tracer.start_as_current_span(
                    name,
                    kind=SpanKind.CONSUMER,
                    attributes=attributes,
                    record_exception=False,
                    set_status_on_exception=False,
                ) as span:
                    try:
                        return callback(msg)
                    except BaseException as exc:
                        error = type(exc).__qualname__
                        _fail(span, exc)
                        raise
            finally:
                otel_context.detach(token)
                in_flight.add(-1, measured)
                outcome = {**measured, A_ERROR: error} if error else measured
                consumed.add(1, outcome)
                duration.record(time.perf_counter() - started, outcome)

        return traced

    def process(
        self, client: Any, subject: str, queue: str, callback: Callable[[Msg], Any]
    ) -> Callable[[Msg], Any]:
        base: dict[str, Any] = {
            A_SYSTEM: SYSTEM,
            A_OPERATION_TYPE: "process",
            A_OPERATION_NAME: "process",
            A_TEMPLATE: subject,
        }
        if queue:
            base[A_GROUP] = queue
        if _internal(subject):  # $SRV discovery: the protocol, not the application
            return callback
        temporary = subject.startswith(INBOX_PREFIX)
        return self._wrap(
            f"process {'(temporary)' if temporary else subject}", base, False, callback
        )

    def js_process(self, subscription: Any, handle: Callable[[Msg], Any]) -> Callable[[Msg], Any]:
        if _internal(subscription.subject or ""):  # a KV watch, an object store's reads
            return handle
        base: dict[str, Any] = {
            A_SYSTEM: SYSTEM,
            A_OPERATION_TYPE: "process",
            A_OPERATION_NAME: "process",
            A_SUBSCRIPTION: subscription.name,
            A_STREAM: subscription.stream,
        }
        if subscription.subject:
            base[A_TEMPLATE] = subscription.subject
        return self._wrap(f"process {subscription.stream}", base, True, handle)

    def received(self, subscription: Any, msgs: list[Any], started_ns: int) -> None:
        """A receive span from the read's start to now, linked to each message's sender."""
        if not msgs or _internal(subscription.subject or ""):
            return
        links = links_of(msgs)
        orphan = not links and not _in_trace()  # a trace of one span: counted, not traced
        stream = getattr(subscription, "stream", None)
        attributes: dict[str, Any] = {
            A_SYSTEM: SYSTEM,
            A_OPERATION_TYPE: "receive",
            A_OPERATION_NAME: "receive",
        }
        measured = dict(attributes)
        if stream:
            attributes[A_STREAM] = measured[A_STREAM] = stream
            attributes[A_SUBSCRIPTION] = measured[A_SUBSCRIPTION] = subscription.name
        if len(msgs) == 1:
            attributes.update(_message_attributes(msgs[0]))
            if stream:
                _js_attributes(msgs[0], attributes)
        else:
            attributes[A_BATCH] = len(msgs)
        if subscription.subject:
            attributes[A_TEMPLATE] = measured[A_TEMPLATE] = subscription.subject
        self.consumed.add(len(msgs), measured)
        if orphan:
            return
        where = stream or subscription.subject
        span = self.tracer.start_span(
            f"receive {where}",
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=links,
            start_time=started_ns,
        )
        span.end()

    # -- settling and the layers above (the thread handling the message) -----------------
    def settled(self, msg: Msg, body: bytes) -> None:
        """A settle span, child of the current (process) span, linked to the sender."""
        operation = SETTLE_NAMES.get(body[:4]) or SETTLE_NAMES.get(body[:5]) or "settle"
        attributes: dict[str, Any] = {
            A_SYSTEM: SYSTEM,
            A_OPERATION_TYPE: "settle",
            A_OPERATION_NAME: operation,
            A_DESTINATION: msg.subject,
        }
        _js_attributes(msg, attributes)
        link = _link(msg.headers)
        span = self.tracer.start_span(
            f"{operation} {attributes.get(A_STREAM, msg.subject)}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            links=[link] if link is not None else None,
        )
        span.end()

    def dead_lettered(self, msg: Msg, subject: str | None, reason: str) -> None:
        attributes: dict[str, Any] = {A_DEAD_LETTER_REASON: reason}
        if subject is not None:
            attributes[A_DEAD_LETTER_SUBJECT] = subject
        trace.get_current_span().add_event("dead_letter", attributes)

    def handler_failed(self, error: BaseException) -> None:
        _fail(trace.get_current_span(), error)

    def service_call(self, service: str, endpoint: str, error_code: str | None) -> None:
        span = trace.get_current_span()
        span.set_attribute(A_SERVICE, service)
        span.set_attribute(A_ENDPOINT, endpoint)
        if error_code:
            span.set_attribute(A_SERVICE_ERROR, error_code)
            if error_code.startswith("5"):
                span.set_status(Status(StatusCode.ERROR, error_code))

    @contextlib.contextmanager
    def event(self, event: Any, *, handling: bool) -> Iterator[None]:
        attributes = _event_attributes(event)
        if handling:
            trace.get_current_span().set_attributes(attributes)
            yield
            return
        token = _publishing_event.set(attributes)
        try:
            yield
        finally:
            _publishing_event.reset(token)

    def stamp(self, headers: dict[str, Any] | None) -> dict[str, Any] | None:
        if not _in_trace():
            return headers
        stamped = dict(headers or _EMPTY)
        propagate.inject(stamped)
        return stamped


def _event_attributes(event: Any) -> dict[str, str]:
    attributes: dict[str, str] = {}
    correlation = getattr(event, "correlation_id", None)
    if correlation is not None:
        attributes[A_CONVERSATION] = str(correlation)
    kind = getattr(event, "type", None)
    if kind is not None:
        attributes[A_EVENT_TYPE] = str(getattr(kind, "value", kind))
    return attributes


def links_of(msgs: Iterable[Msg]) -> list[Link]:
    """Links to the senders of ``msgs`` (those that sent a context)."""
    return [link for msg in msgs if (link := _link(msg.headers)) is not None]

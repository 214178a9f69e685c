"""Spans, context propagation and metrics of syncmsg.otel, against a real nats-server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _otel_helpers import Inbox, Traces
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import syncmsg
import syncmsg.otel
from syncmsg.jetstream import StreamSpec
from syncmsg.testing import wait_until

HERE = Path(__file__).parent
_names = iter(range(1, 1_000_000))


def unique(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{next(_names)}"


def ids(span: ReadableSpan) -> tuple[int, int]:
    return span.context.trace_id, span.context.span_id


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


@pytest.fixture
def stream(client: syncmsg.Client) -> Iterator[str]:
    name = unique("OT")
    js = client.jetstream()
    js.ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"], storage="memory"))
    yield name
    if not client.is_closed:
        js.delete_stream(name)


# ---------------------------------------------------------------------------- core
def test_publish_then_consume_in_another_process_is_one_trace(
    traces: Traces, client: syncmsg.Client, nats_url: str
) -> None:
    subject = unique("cross")
    child = subprocess.Popen(
        [sys.executable, str(HERE / "otel_child.py"), nats_url, subject],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        with traces.tracer.start_as_current_span("view") as view:
            client.publish(subject, {"order": 1})
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    assert child.returncode == 0, err
    theirs = {s["name"]: s for s in map(json.loads, out.splitlines())}
    (publish,) = traces.named(f"publish {subject}")
    assert publish.kind is SpanKind.PRODUCER
    assert parent_of(publish) == view.get_span_context().span_id
    process = theirs[f"process {subject}"]
    trace_id = f"{publish.context.trace_id:032x}"
    assert process["kind"] == "CONSUMER"
    assert process["trace_id"] == trace_id
    assert process["parent_id"] == f"{publish.context.span_id:016x}"
    # The callback ran in a worker thread with the process span current, so its own
    # publish continues the trace, under the process span.
    assert process["current_span"] == process["span_id"]
    assert process["thread"].startswith("syncmsg-sub-")
    follow_up = theirs[f"publish {subject}.done"]
    assert (follow_up["trace_id"], follow_up["parent_id"]) == (trace_id, process["span_id"])
    attributes = process["attributes"]
    assert attributes["messaging.system"] == "nats"
    assert attributes["messaging.operation.type"] == "process"
    assert attributes["messaging.destination.name"] == subject
    assert attributes["messaging.message.body.size"] == len(b'{"order":1}')


def test_a_callback_sees_its_process_span_and_the_senders_baggage(
    traces: Traces, client: syncmsg.Client, inbox: Callable[[], Inbox]
) -> None:
    subject = unique("current")
    got = inbox()

    def callback(msg: syncmsg.Msg) -> None:
        got(
            (
                trace.get_current_span().get_span_context().span_id,
                threading.current_thread().name,
                baggage.get_baggage("tenant"),
            )
        )

    client.subscribe(subject, callback, workers=3, queue="workers")
    token = otel_context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        with traces.tracer.start_as_current_span("caller"):
            client.publish(subject, b"x")
    finally:
        otel_context.detach(token)
    span_id, thread, tenant = got.get()
    (process,) = traces.wait_for(f"process {subject}")
    assert span_id == process.context.span_id
    assert thread.startswith("syncmsg-sub-")
    assert tenant == "acme"
    assert process.attributes is not None
    assert process.attributes["messaging.consumer.group.name"] == "workers"
    # The caller's thread is left as it was.
    assert not trace.get_current_span().get_span_context().is_valid


def test_request_service_reply_is_one_trace(traces: Traces, client: syncmsg.Client) -> None:
    name = unique("svc")
    svc = client.add_service(name, version="1.0.0")
    try:
        svc.add_endpoint("double", lambda r: {"n": r.json()["n"] * 2}, subject=f"{name}.double")
        with traces.tracer.start_as_current_span("view") as view:
            assert client.request(f"{name}.double", {"n": 2}, timeout=5).json() == {"n": 4}
        (request,) = traces.wait_for(f"request {name}.double")
        (process,) = traces.wait_for(f"process {name}.double")
        (reply,) = traces.wait_for("publish (temporary)")
    finally:
        svc.stop()
    assert request.kind is SpanKind.CLIENT
    assert parent_of(request) == view.get_span_context().span_id
    assert process.context.trace_id == request.context.trace_id
    assert parent_of(process) == request.context.span_id
    assert parent_of(reply) == process.context.span_id
    assert process.attributes is not None
    assert process.attributes["messaging.nats.service.name"] == name
    assert process.attributes["messaging.nats.service.endpoint"] == "double"
    assert reply.attributes is not None and reply.attributes["messaging.destination.temporary"]
    assert request.attributes is not None
    assert request.attributes["messaging.operation.name"] == "request"
    # The JetStream API and the services' own subjects are not traced.
    assert not [s for s in traces.spans() if "$" in s.name]


def test_handler_exceptions_are_recorded_with_error_status(
    traces: Traces, client: syncmsg.Client
) -> None:
    subject = unique("boom")
    errors: list[BaseException] = []

    def fails(msg: syncmsg.Msg) -> None:
        raise RuntimeError("no stock")

    client.subscribe(subject, fails, error_callback=lambda exc, msg: errors.append(exc))
    name = unique("svc")
    svc = client.add_service(name, version="1.0.0")
    try:
        svc.add_endpoint("fail", fails, subject=f"{name}.fail")
        client.publish(subject, b"x")
        with pytest.raises(syncmsg.RemoteError):
            client.request(f"{name}.fail", b"x", timeout=5)
        with pytest.raises(syncmsg.NoRespondersError):
            client.request(unique("nobody"), b"x", timeout=5)
        (core,) = traces.wait_for(f"process {subject}")
        (endpoint,) = traces.wait_for(f"process {name}.fail")
    finally:
        svc.stop()
    for span in (core, endpoint):
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes is not None
        assert span.attributes["error.type"] == "RuntimeError"
        (event,) = [e for e in span.events if e.name == "exception"]
        assert event.attributes is not None
        assert event.attributes["exception.message"] == "no stock"
    assert endpoint.attributes is not None
    assert str(endpoint.attributes["messaging.nats.service.error"]).startswith("500")
    (request,) = [s for s in traces.spans() if s.name.startswith("request nobody")]
    assert request.status.status_code is StatusCode.ERROR
    assert request.attributes is not None
    assert request.attributes["error.type"] == "NoRespondersError"


def test_next_msg_makes_a_receive_span_linked_to_the_sender(
    traces: Traces, client: syncmsg.Client
) -> None:
    subject = unique("sync")
    with client.subscribe_sync(subject) as sub:
        client.publish(subject, b"hello", headers={"X-Keep": "me"})
        msg = sub.next_msg(timeout=5)
    assert msg.headers is not None and msg.headers["X-Keep"] == "me"
    (publish,) = traces.named(f"publish {subject}")
    (receive,) = traces.wait_for(f"receive {subject}")
    assert receive.kind is SpanKind.CONSUMER
    assert [link.context.span_id for link in receive.links] == [publish.context.span_id]
    # The reader continues the sender's trace itself.
    with traces.tracer.start_as_current_span("work", context=syncmsg.otel.extract(msg)) as work:
        pass
    assert work.get_span_context().trace_id == publish.context.trace_id


def test_the_applications_propagator_is_used(traces: Traces, client: syncmsg.Client) -> None:
    class Custom(TraceContextTextMapPropagator):
        def inject(self, carrier: Any, context: Any = None, setter: Any = None) -> None:
            carrier["X-Custom-Trace"] = "yes"

    subject = unique("prop")
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(Custom())
    try:
        with client.subscribe_sync(subject) as sub:
            client.publish(subject, b"x")
            msg = sub.next_msg(timeout=5)
    finally:
        propagate.set_global_textmap(previous)
    assert msg.headers == {"X-Custom-Trace": "yes"}


def test_instrument_is_idempotent_and_uninstrument_stops_tracing(
    traces: Traces, client: syncmsg.Client
) -> None:
    from syncmsg import _instrumentation

    active = _instrumentation.active
    syncmsg.otel.instrument()
    assert _instrumentation.active is active and syncmsg.otel.is_instrumented()
    syncmsg.otel.uninstrument()
    assert not syncmsg.otel.is_instrumented()
    subject = unique("off")
    with client.subscribe_sync(subject) as sub:
        client.publish(subject, b"x")
        assert sub.next_msg(timeout=5).headers is None  # no trace headers
    assert traces.spans() == []


def test_config_tracing_turns_it_on(nats_url: str) -> None:
    syncmsg.otel.uninstrument()
    try:
        with syncmsg.connect(nats_url, tracing=True, timeout=5.0) as client:
            assert syncmsg.otel.is_instrumented()
            subject = unique("cfg")
            with client.subscribe_sync(subject) as sub:
                client.publish(subject, b"x")
                headers = sub.next_msg(timeout=5).headers
    finally:
        syncmsg.otel.uninstrument()
    # No SDK is set up here: OpenTelemetry's no-op tracer makes no context to send.
    assert headers is None


# ----------------------------------------------------------------------- JetStream
def test_durable_nak_and_redelivery_are_two_process_spans_in_one_trace(
    traces: Traces, client: syncmsg.Client, stream: str
) -> None:
    js = client.jetstream()
    deliveries: list[int] = []

    def handle(msg: syncmsg.Msg) -> None:
        deliveries.append(msg.metadata.num_delivered)
        if msg.metadata.num_delivered == 1:
            msg.nak()

    with traces.tracer.start_as_current_span("view"):
        ack = js.publish(f"{stream}.order", b"o1", msg_id="order-1", timeout=5)
    js.subscribe(f"{stream}.>", handle, durable="work")
    processes = traces.wait_for(f"process {stream}", 2)
    traces.wait_for(f"ack {stream}")
    (publish,) = traces.named(f"publish {stream}.order")
    assert publish.attributes is not None
    assert publish.attributes["messaging.nats.stream"] == stream
    assert publish.attributes["messaging.nats.stream.sequence"] == ack.seq
    assert publish.attributes["messaging.message.id"] == "order-1"
    assert deliveries == [1, 2]
    processes.sort(key=lambda s: s.start_time or 0)
    for count, span in enumerate(processes, 1):
        assert span.context.trace_id == publish.context.trace_id
        assert parent_of(span) == publish.context.span_id
        assert span.attributes is not None
        assert span.attributes["messaging.nats.message.delivery_count"] == count
        assert span.attributes["messaging.destination.subscription.name"] == "work"
        assert span.attributes["messaging.nats.stream.sequence"] == ack.seq
        assert span.attributes["messaging.message.id"] == "order-1"
    (nak,) = traces.named(f"nak {stream}")
    (settle,) = traces.named(f"ack {stream}")
    assert parent_of(nak) == processes[0].context.span_id
    assert parent_of(settle) == processes[1].context.span_id
    assert nak.attributes is not None and nak.attributes["messaging.operation.type"] == "settle"


def test_publish_async_and_fetch(traces: Traces, client: syncmsg.Client, stream: str) -> None:
    js = client.jetstream()
    futures = [js.publish_async(f"{stream}.a", b"x%d" % n) for n in range(3)]
    acks = [f.result(timeout=5) for f in futures]
    publishes = traces.wait_for(f"publish {stream}.a", 3)
    assert sorted(s.attributes["messaging.nats.stream.sequence"] for s in publishes) == [  # type: ignore[index]
        a.seq for a in acks
    ]
    sub = js.pull_subscribe(f"{stream}.>", durable="batch")
    msgs = sub.fetch(3, timeout=5)
    assert len(msgs) == 3
    for msg in msgs:
        msg.ack()
    (receive,) = traces.wait_for(f"receive {stream}")
    assert receive.attributes is not None
    assert receive.attributes["messaging.batch.message_count"] == 3
    assert {link.context.span_id for link in receive.links} == {
        s.context.span_id for s in publishes
    }
    acks_made = traces.wait_for(f"ack {stream}", 3)
    assert {a.links[0].context.span_id for a in acks_made} == {s.context.span_id for s in publishes}


def test_dead_letter_is_an_event_with_the_reason(
    traces: Traces, client: syncmsg.Client, stream: str
) -> None:
    js = client.jetstream()
    dlq = unique("OTDLQ")
    js.ensure_stream(StreamSpec(name=dlq, subjects=[f"{dlq}.>"], storage="memory"))
    try:

        def fails(msg: syncmsg.Msg) -> None:
            raise ValueError("bad order")

        js.publish(f"{stream}.poison", b"p", timeout=5)
        js.subscribe(
            f"{stream}.>",
            fails,
            durable="poison",
            max_deliver=2,
            dead_letter=f"{dlq}.orders",
            error_callback=lambda exc, msg: None,
        )
        processes = traces.wait_for(f"process {stream}", 2)
        wait_until(lambda: js.stream_info(dlq).state.messages == 1, 10, what="the dead letter")
        letter = js.get_msg(dlq, 1)
    finally:
        js.delete_stream(dlq)
    last = max(processes, key=lambda s: s.start_time or 0)
    (event,) = [e for e in last.events if e.name == "dead_letter"]
    assert event.attributes is not None
    assert event.attributes["messaging.nats.dead_letter.reason"] == "ValueError: bad order"
    assert event.attributes["messaging.nats.dead_letter.subject"] == f"{dlq}.orders"
    assert all(s.status.status_code is StatusCode.ERROR for s in processes)
    # The dead letter carries the trace on: its publish is a child of the last process span.
    (moved,) = traces.named(f"publish {dlq}.orders")
    assert parent_of(moved) == last.context.span_id
    assert letter.headers is not None
    assert letter.headers["traceparent"].split("-")[1:3] == [
        f"{moved.context.trace_id:032x}",
        f"{moved.context.span_id:016x}",
    ]


# -------------------------------------------------------------------------- metrics
def test_metrics_use_the_semantic_conventions_names(traces: Traces, client: syncmsg.Client) -> None:
    subject = unique("metric")
    done = threading.Event()
    client.subscribe(subject, lambda msg: done.set())
    for _ in range(3):
        client.publish(subject, b"x")
    client.flush(timeout=5)
    with pytest.raises(syncmsg.NoRespondersError):
        client.request(f"{subject}.nobody", b"?", timeout=5)
    wait_until(lambda: len(traces.named(f"process {subject}")) == 3, 10, what="3 processed")
    found = traces.metrics()

    def total(name: str) -> float:
        return sum(
            p.value
            for p in found[name]
            if p.attributes.get("messaging.destination.name") == subject
            or p.attributes.get("messaging.destination.template") == subject
        )

    assert total("messaging.client.sent.messages") == 3
    assert total("messaging.client.consumed.messages") == 3
    assert total("syncmsg.process.in_flight") == 0
    (duration,) = [
        p
        for p in found["messaging.process.duration"]
        if p.attributes.get("messaging.destination.template") == subject
    ]
    assert duration.count == 3
    (request,) = [
        p
        for p in found["messaging.client.operation.duration"]
        if p.attributes.get("messaging.destination.name") == f"{subject}.nobody"
    ]
    assert request.count == 1
    assert request.attributes["error.type"] == "NoRespondersError"


# ------------------------------------------------------------------------- failures
def test_failed_sends_are_recorded(traces: Traces, client: syncmsg.Client) -> None:
    with pytest.raises(syncmsg.InvalidSubjectError):
        client.publish("bad subject", b"x")
    js = client.jetstream(no_responders_wait=0.1)  # do not wait for the stream to appear
    missing = unique("nostream")
    with pytest.raises(syncmsg.SyncMsgError):
        js.publish(f"{missing}.a", b"x", timeout=1)
    future = js.publish_async(f"{missing}.b", b"x", timeout=1)
    with pytest.raises(syncmsg.SyncMsgError):
        future.result(timeout=10)
    spans = {s.name: s for s in traces.wait_for(f"publish {missing}.b")}
    for name in ("publish bad subject", f"publish {missing}.a", f"publish {missing}.b"):
        span = spans.get(name) or traces.named(name)[0]
        assert span.status.status_code is StatusCode.ERROR, name
        assert span.attributes is not None and span.attributes["error.type"], name


def test_extract_reads_the_headers_in_any_case() -> None:
    trace_id, span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    msg = syncmsg.Msg("s", b"", headers={"Traceparent": f"00-{trace_id}-{span_id}-01"})
    context = trace.get_current_span(syncmsg.otel.extract(msg)).get_span_context()
    assert (f"{context.trace_id:032x}", f"{context.span_id:016x}") == (trace_id, span_id)
    empty = syncmsg.otel.extract(syncmsg.Msg("s", b""))
    assert not trace.get_current_span(empty).get_span_context().is_valid


def test_protocol_and_store_subjects_are_not_traced(traces: Traces, client: syncmsg.Client) -> None:
    from syncmsg import services

    name = unique("quiet")
    svc = client.add_service(name, version="1.0.0")
    js = client.jetstream()
    kv = js.create_key_value(unique("KVQ"), storage="memory")
    try:
        assert [p.name for p in services.ping(client, name, timeout=1.0)] == [name]
        seen: list[Any] = []
        watch = kv.watch("k", seen.append)  # an ordered consumer with a handler
        kv.put("k", b"v")
        assert kv.get("k").value == b"v"
        wait_until(lambda: any(getattr(e, "value", None) == b"v" for e in seen), 10)
        watch.stop()
    finally:
        svc.stop()
        js.delete_key_value(kv.bucket)
    assert [(s.name, s.kind.name) for s in traces.spans()] == []

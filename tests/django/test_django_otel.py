"""Tracing through the Django outbox: the relay's publish continues the trace of the view
that wrote the row (syncmsg.otel with the SDK's in-memory exporter)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from django.db import transaction
from django.test import override_settings
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import syncmsg
import syncmsg.otel
from syncmsg.django import outbox
from syncmsg.django.outbox import OutboxMessage, Relay


@pytest.fixture
def outbox_nats(django_nats: Any) -> Iterator[Any]:
    from django.conf import settings

    syncmsg_settings = {
        **settings.SYNCMSG,
        "streams": [*settings.SYNCMSG["streams"], {"name": "ORDERS", "subjects": ["orders.>"]}],
        "outbox": {"backoff_initial": 0.05, "backoff_max": 0.2, "poll_interval": 0.05},
    }
    with override_settings(SYNCMSG=syncmsg_settings):
        yield django_nats


@pytest.fixture
def exporter() -> Iterator[tuple[InMemorySpanExporter, TracerProvider]]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    syncmsg.otel.instrument(tracer_provider=provider)
    try:
        yield spans, provider
    finally:
        syncmsg.otel.uninstrument()
        provider.shutdown()


def test_the_relay_publish_continues_the_writers_trace(
    outbox_nats: Any, exporter: tuple[InMemorySpanExporter, TracerProvider]
) -> None:
    spans, provider = exporter
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("view") as view, transaction.atomic():
        outbox.publish("orders.created", {"id": 1}, headers={"X-Keep": "me"})
    stored = OutboxMessage.objects.get()
    assert stored.headers["X-Keep"] == "me" and "traceparent" in stored.headers
    assert Relay().publish_pending(timeout=30) == 1
    (publish,) = [s for s in spans.get_finished_spans() if s.name == "publish orders.created"]
    assert publish.context.trace_id == view.get_span_context().trace_id
    assert publish.parent is not None
    assert publish.parent.span_id == view.get_span_context().span_id
    with syncmsg.connect(outbox_nats.url, timeout=5.0) as client:
        msg = client.jetstream().get_msg("ORDERS", 1)
    assert msg.headers is not None
    assert msg.headers["traceparent"].split("-")[2] == f"{publish.context.span_id:016x}"
    assert msg.headers["X-Keep"] == "me"


def test_the_relay_puts_an_events_correlation_on_its_span(
    outbox_nats: Any, exporter: tuple[InMemorySpanExporter, TracerProvider]
) -> None:
    spans, _ = exporter
    correlation = uuid4()
    with transaction.atomic():
        event = outbox.publish_task_event(
            "7d0f3c1e-5b7a-4c2e-9f3a-2b1d4e6f8a90",
            type="task.created",
            task_id=uuid4(),
            task_type="email",
            correlation_id=correlation,
        )
        # Not an event: a JSON payload with "type" and an "id" that is not the row's msg_id.
        outbox.publish("orders.created", {"id": "x", "type": "task.created"})
    assert Relay().publish_pending(timeout=30) == 2
    sends = {s.name: s for s in spans.get_finished_spans() if s.name.startswith("publish ")}
    (task_send,) = [s for name, s in sends.items() if name != "publish orders.created"]
    assert task_send.attributes is not None
    assert task_send.attributes["messaging.message.conversation_id"] == str(correlation)
    assert event.correlation_id == correlation
    plain = sends["publish orders.created"].attributes
    assert plain is not None and "messaging.message.conversation_id" not in plain

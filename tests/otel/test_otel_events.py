"""The event layer's correlationId on the spans of its publishes and handlers."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from _otel_helpers import Traces
from opentelemetry import trace
from opentelemetry.trace import StatusCode

import syncmsg
from syncmsg.events import (
    EVENT_DEAD_LETTERS,
    EVENT_STREAMS,
    EventPublisher,
    EventSubscriber,
    ensure_event_streams,
)

TENANT = uuid4()


def _drop_event_streams(client: syncmsg.Client) -> None:
    js = client.jetstream()
    for spec in [*EVENT_STREAMS, EVENT_DEAD_LETTERS]:
        with contextlib.suppress(syncmsg.StreamNotFoundError):
            js.delete_stream(spec.name, timeout=5.0)


@pytest.fixture
def event_streams(client: syncmsg.Client) -> Iterator[syncmsg.Client]:
    """Fresh event streams, dropped after the test."""
    _drop_event_streams(client)
    ensure_event_streams(client, timeout=5.0)
    yield client
    _drop_event_streams(client)


def test_correlation_id_is_on_the_publish_and_process_spans(
    traces: Traces, event_streams: syncmsg.Client
) -> None:
    client = event_streams
    correlation = uuid4()
    handled = threading.Event()
    seen: dict[str, Any] = {}

    def on_audit(event: Any) -> None:
        seen["span"] = trace.get_current_span().get_span_context().span_id
        handled.set()

    def on_failing(event: Any) -> None:
        raise RuntimeError("handler broke")

    sub = EventSubscriber(client)
    sub.on_audit_event("audit.access", on_audit)
    sub.on_audit_event("audit.mutation", on_failing)
    sub.start(timeout=5.0)
    try:
        publisher = EventPublisher(client)
        with traces.tracer.start_as_current_span("view"):
            publisher.publish_audit_event(
                TENANT,
                type="audit.access",
                action="login",
                resource_type="user",
                resource_id="u1",
                correlation_id=correlation,
            )
            publisher.publish_audit_event(
                TENANT,
                type="audit.mutation",
                action="logout",
                resource_type="user",
                resource_id="u1",
                correlation_id=correlation,
            )
        assert handled.wait(10)
        processes = traces.wait_for("process AUDIT_EVENTS", 2)
    finally:
        sub.stop(timeout=5.0)
    publishes = [s for s in traces.spans() if s.name.startswith("publish audit.")]
    assert len(publishes) == 2
    for span in [*publishes, *processes]:
        assert span.attributes is not None
        assert span.attributes["messaging.message.conversation_id"] == str(correlation)
        assert span.attributes["syncmsg.event.type"] in {"audit.access", "audit.mutation"}
    by_type = {s.attributes["syncmsg.event.type"]: s for s in processes}  # type: ignore[index]
    assert seen["span"] == by_type["audit.access"].context.span_id
    failed = by_type["audit.mutation"]
    assert failed.status.status_code is StatusCode.ERROR
    assert [e.attributes["exception.message"] for e in failed.events if e.name == "exception"] == [  # type: ignore[index]
        "handler broke"
    ]

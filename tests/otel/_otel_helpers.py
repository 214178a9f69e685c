"""Helpers of the tracing tests (imported by module name: tests have no packages): the
OpenTelemetry SDK's in-memory exporter and reader, and a thread-safe collector."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import syncmsg.otel
from syncmsg.testing import wait_until

__all__ = ["Inbox", "Traces", "instrumented"]


class Traces:
    """The spans and metrics one test made, read with polling (spans end on other threads)."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.tracer_provider.get_tracer("tests")
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]

    def wait_for(self, name: str, count: int = 1, timeout: float = 10.0) -> list[ReadableSpan]:
        wait_until(lambda: len(self.named(name)) >= count, timeout, what=f"{count} {name!r}")
        return self.named(name)

    def metrics(self) -> dict[str, list[Any]]:
        """Each metric's data points, by name."""
        found: dict[str, list[Any]] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found


def instrumented() -> Iterator[Traces]:
    """Instrument with fresh in-memory providers; uninstrument afterwards."""
    made = Traces()
    syncmsg.otel.uninstrument()
    syncmsg.otel.instrument(
        tracer_provider=made.tracer_provider, meter_provider=made.meter_provider
    )
    try:
        yield made
    finally:
        syncmsg.otel.uninstrument()
        made.tracer_provider.shutdown()
        made.meter_provider.shutdown()


class Inbox:
    """A thread-safe collector that tests read with a timeout, never a sleep."""

    def __init__(self) -> None:
        self._items: queue.Queue[Any] = queue.Queue()

    def __call__(self, item: Any) -> None:
        self._items.put(item)

    def get(self, timeout: float = 10.0) -> Any:
        return self._items.get(timeout=timeout)

"""The other process of the cross-process trace test: a syncmsg consumer with its own
tracer provider, which prints its spans as JSON lines.

``python otel_child.py URL SUBJECT`` prints ``ready`` once subscribed, handles one
message (publishing a follow-up on ``SUBJECT.done`` inside the callback), then prints one
JSON object per finished span and exits.
"""

from __future__ import annotations

import json
import sys
import threading

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import syncmsg
import syncmsg.otel


def main(url: str, subject: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    syncmsg.otel.instrument(tracer_provider=provider)
    handled = threading.Event()
    seen: dict[str, str] = {}

    with syncmsg.connect(url, timeout=5.0) as client:

        def callback(msg: syncmsg.Msg) -> None:
            current = trace.get_current_span().get_span_context()
            seen["current_span"] = f"{current.span_id:016x}"
            seen["thread"] = threading.current_thread().name
            client.publish(f"{subject}.done", b"done")
            handled.set()

        client.subscribe(subject, callback)
        print("ready", flush=True)
        if not handled.wait(20):
            sys.exit("no message within 20s")
        client.flush(timeout=5.0)
    provider.force_flush()
    for span in exporter.get_finished_spans():
        parent = span.parent
        print(
            json.dumps(
                {
                    "name": span.name,
                    "kind": span.kind.name,
                    "trace_id": f"{span.context.trace_id:032x}",
                    "span_id": f"{span.context.span_id:016x}",
                    "parent_id": f"{parent.span_id:016x}" if parent else None,
                    "attributes": dict(span.attributes or {}),
                    **seen,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

"""OpenTelemetry tracing and metrics for syncmsg (the ``otel`` extra).

::

    import syncmsg.otel

    syncmsg.otel.instrument()   # or Config(tracing=True)

Threading: :func:`instrument` and :func:`uninstrument` may be called from any thread but
the event loop's, at any time; clients made before see the change at once (subscriptions
made before keep what they had: their callbacks were wrapped, or not, when they were
made). :func:`extract` runs on the calling thread.

Only ``opentelemetry-api`` is used: the application installs the SDK, sets the tracer
and meter providers and chooses its exporters and propagators; spans and metrics made
before that go to OpenTelemetry's no-op (proxy) providers. Without the extra installed,
importing this module works and :func:`instrument` raises
:class:`~syncmsg.ConfigurationError`.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any

from syncmsg import _exports, _instrumentation
from syncmsg._errors import ConfigurationError

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from syncmsg._msg import Msg

__all__ = ["extract", "instrument", "is_instrumented", "uninstrument"]

_MISSING = "syncmsg.otel needs OpenTelemetry: pip install 'syncmsg[otel]'"
_lock = threading.Lock()


def _tracing_module() -> Any:
    try:
        from syncmsg.otel import _tracing
    except ImportError as exc:
        raise ConfigurationError(f"{_MISSING} ({exc})") from None
    return _tracing


def instrument(
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> None:
    """Trace and measure every syncmsg client in this process; a second call does nothing.

    ``tracer_provider`` and ``meter_provider`` default to OpenTelemetry's global ones
    (looked up when each span or instrument is used, so they may be set later). Context
    goes into and out of message headers through OpenTelemetry's global propagator
    (W3C trace context and baggage unless the application sets another).

    :raises ConfigurationError: OpenTelemetry is not installed (the ``otel`` extra).
    """
    tracing = _tracing_module()
    with _lock:
        if isinstance(_instrumentation.active, tracing.Tracing):
            return
        _instrumentation.install(tracing.Tracing(tracer_provider, meter_provider))


def uninstrument() -> None:
    """Stop tracing: new publishes and subscriptions are not traced (subscriptions made
    while instrumented keep their process spans until they end)."""
    with _lock:
        _instrumentation.uninstall()


def is_instrumented() -> bool:
    """True between :func:`instrument` (or ``Config(tracing=True)``) and
    :func:`uninstrument`."""
    return _instrumentation.active is not None


def extract(msg: Msg) -> Context:
    """The trace context (and baggage) that ``msg``'s sender put in its headers.

    For messages read with ``next_msg`` or ``fetch``, whose processing syncmsg cannot see:
    ``tracer.start_as_current_span("work", context=syncmsg.otel.extract(msg))``.

    :raises ConfigurationError: OpenTelemetry is not installed (the ``otel`` extra).
    """
    context: Context = _tracing_module().extract_context(msg.headers)
    return context


_exports.present_as_public(sys.modules[__name__])

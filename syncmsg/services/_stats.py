"""One endpoint's counters: requests, errors, the last error, time spent in the handler.

Threading: :meth:`EndpointCounters.record` runs on the endpoint's worker threads (several
at once), :meth:`EndpointCounters.snapshot` on the discovery worker thread or a caller of
``Service.stats()``, and :meth:`EndpointCounters.reset` on any thread; each holds one
lock for a few additions, so a snapshot is always consistent (``num_requests`` and
``processing_time`` from the same moment).
"""

from __future__ import annotations

import threading

__all__ = ["EndpointCounters", "Snapshot"]

#: ``(num_requests, num_errors, last_error, processing_time_ns)``
Snapshot = tuple[int, int, str, int]


class EndpointCounters:
    """Counted as nats.go counts: a request when its handler returns, an error for each
    error reply (a handler's exception, ``respond_error``, bad input)."""

    __slots__ = ("_errors", "_last_error", "_lock", "_nanos", "_requests")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests = 0
        self._errors = 0
        self._last_error = ""
        self._nanos = 0

    def record(self, nanos: int, error: str | None) -> None:
        """One request handled in ``nanos``; ``error`` is ``"<code>:<description>"`` of its
        error reply, or None."""
        with self._lock:
            self._requests += 1
            self._nanos += nanos
            if error is not None:
                self._errors += 1
                self._last_error = error

    def add_error(self, error: str) -> None:
        """An error found after the request was counted (its reply could not be sent)."""
        with self._lock:
            self._errors += 1
            self._last_error = error

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._requests, self._errors, self._last_error, self._nanos

    def reset(self) -> None:
        with self._lock:
            self._requests = self._errors = self._nanos = 0
            self._last_error = ""

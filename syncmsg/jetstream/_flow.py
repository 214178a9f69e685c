"""Flow control of a continuously pulling subscription: how many messages it may ask for.

Threading: any thread, under the flow's own lock. The event-loop thread counts each
message that arrives (:meth:`Flow.received`) and each pull request that ends
(:meth:`Flow.ended`); the thread that lets a message go (a worker after the handler, a
caller of ``next_msg``) calls :meth:`Flow.released`; whichever thread sends a pull request
(usually a worker, else the keeper thread ``syncmsg-js-<sid>-keeper``) sizes it from the
room left.

The rule (applied by :class:`~syncmsg.jetstream._pull.Puller` under the flow's lock): a
subscription holds at most ``prefetch`` messages between the server and its
readers, counting those asked for and not yet arrived. It asks for exactly the room left,
``prefetch - in_hand - requested``, once that room is a quarter of ``prefetch``, so pull
requests are few and large and nothing is buffered without bound. After a pull request
failed (the consumer is missing, the server refused it) pulling pauses, a little longer
after each failure in a row (0.5 s doubling to 5 s).
"""

from __future__ import annotations

import threading
import time

__all__ = ["Flow"]

#: The longest pause after failed pull requests (seconds).
MAX_PAUSE = 5.0


class Flow:
    """The message budget of one subscription."""

    __slots__ = (
        "failures",
        "in_hand",
        "lock",
        "pause_until",
        "prefetch",
        "requested",
        "stopped",
        "threshold",
    )

    def __init__(self, prefetch: int) -> None:
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        self.prefetch = prefetch
        self.threshold = max(1, prefetch // 4)
        self.lock = threading.Lock()
        self.in_hand = 0  # arrived, not yet let go
        self.requested = 0  # asked for, not yet arrived
        self.pause_until = 0.0
        self.failures = 0
        self.stopped = False

    def room(self) -> int:
        return self.prefetch - self.in_hand - self.requested

    def received(self, count: int = 1) -> None:
        """``count`` messages arrived (the loop thread)."""
        with self.lock:
            self.requested = max(self.requested - count, 0)
            self.in_hand += count
            self.failures = 0

    def released(self) -> bool:
        """A message left our hands; True when a pull request is worth sending now."""
        with self.lock:
            self.in_hand -= 1
            return self.prefetch - self.in_hand - self.requested >= self.threshold

    def ended(self, unfilled: int, *, none_left: bool) -> None:
        """A pull request ended with ``unfilled`` messages not sent (the loop thread);
        ``none_left`` when it was the last one waiting."""
        with self.lock:
            self.requested = 0 if none_left else max(self.requested - unfilled, 0)

    def forget_requests(self) -> None:
        """Every pull request is gone (expired, or a reconnect)."""
        with self.lock:
            self.requested = 0

    def failed(self) -> float:
        """A pull request failed: pause before the next; returns the pause (seconds)."""
        with self.lock:
            self.failures += 1
            pause = min(0.25 * 2.0**self.failures, MAX_PAUSE)
            self.pause_until = time.monotonic() + pause
            return pause

    def resume(self) -> None:
        """Pull again at once (the failures are over)."""
        with self.lock:
            self.failures = 0
            self.pause_until = 0.0

    def pause(self, seconds: float) -> None:
        with self.lock:
            self.pause_until = time.monotonic() + seconds

    def stop(self) -> None:
        """No more pull requests, ever."""
        with self.lock:
            self.stopped = True

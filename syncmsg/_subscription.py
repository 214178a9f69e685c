"""Subscriptions: callbacks on worker threads, or messages pulled with ``next_msg``.

Threading: on the event-loop thread, the interest's pump hands each batch of messages from
nats-py to :meth:`SubscriptionBase._deliver`, which only wraps them and offers them to a
bounded :class:`~syncmsg._dispatch.MessageQueue`; what does not fit is dropped and reported
as a slow consumer (through the hooks thread). A :class:`Subscription` runs the user's
callback on its own pool of worker threads (``syncmsg-sub-<sid>-<i>``); a
:class:`SyncSubscription` is emptied by whichever thread calls
:meth:`SyncSubscription.next_msg`. ``unsubscribe`` and ``drain`` may be called from any
thread but the loop, including a worker of the subscription itself (it then skips joining
itself).

``pending_msgs_limit`` and ``pending_bytes_limit`` are the whole bound: messages received
and not yet taken by a worker (or by ``next_msg``). nats-py's own queue in front of the
pump is left unbounded; the pump empties it on every read.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from syncmsg import _instrumentation
from syncmsg._deadline import Deadline, check_timeout
from syncmsg._dispatch import MessageQueue, WorkerPool
from syncmsg._errors import ConnectionClosedError, SlowConsumerError, TimeoutError
from syncmsg._interest import Interest
from syncmsg._msg import Msg
from syncmsg._types import ErrorCallback, SubscriptionHost

if TYPE_CHECKING:
    from syncmsg._connection import Connection

__all__ = [
    "Subscription",
    "SubscriptionBase",
    "SubscriptionRegistry",
    "SyncSubscription",
]

log = logging.getLogger("syncmsg")

#: A subscription's slow-consumer reports come at most this often (seconds), each with
#: the running count, so that a flood of drops cannot flood the log or the hooks thread.
SLOW_CONSUMER_REPORT_INTERVAL = 1.0


class SubscriptionRegistry:
    """A client's live subscriptions by id (any thread; dict operations are atomic)."""

    def __init__(self) -> None:
        self._subs: dict[int, SubscriptionBase] = {}
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._subs)

    def __iter__(self) -> Iterator[SubscriptionBase]:
        return iter(list(self._subs.values()))

    def add(self, sub: SubscriptionBase) -> int:
        """Register ``sub`` and give it its id."""
        sub.sid = next(self._ids)
        self._subs[sub.sid] = sub
        return sub.sid

    def discard(self, sub: SubscriptionBase) -> None:
        self._subs.pop(sub.sid, None)

    def clear(self) -> list[SubscriptionBase]:
        subs = list(self._subs.values())
        self._subs.clear()
        return subs


class SubscriptionBase:
    """What every kind of subscription shares: the interest at the server and the bounded
    queue its messages wait in. JetStream's subscriptions build on it too."""

    def __init__(
        self,
        host: SubscriptionHost,
        subject: str,
        queue_group: str,
        queue: MessageQueue,
    ) -> None:
        self.subject = subject
        self.queue = queue_group
        self._host = host
        self._queue = queue
        self._conn: Connection | None = None
        self._interest: Interest | None = None
        self.sid = 0
        self.delivered = 0
        self.dropped = 0
        self._limit = 0  # stop after this many messages (0: no limit)
        self._slow_reported_at = -SLOW_CONSUMER_REPORT_INTERVAL
        self._error_callback: ErrorCallback | None = None
        self._closed = threading.Event()

    def __repr__(self) -> str:
        state = "closed" if self._closed.is_set() else "active"
        return f"<{type(self).__name__} {self.subject!r} queue={self.queue!r} {state}>"

    # -- starting (caller thread) ----------------------------------------------------------
    def _open(
        self,
        conn: Connection,
        subject: str,
        timeout: float,
        *,
        queue: str | None = None,
        msgs_limit: int = 0,
        bytes_limit: int = 0,
        limit: int = 0,
    ) -> None:
        """Register with the client and subscribe ``subject`` (its own, or an inbox) in
        ``queue`` (default: the subscription's queue group)."""
        interest = Interest(
            subject,
            self.queue if queue is None else queue,
            self._deliver,
            msgs_limit=msgs_limit,
            bytes_limit=bytes_limit,
            on_failure=self._delivery_failed,
            on_dropped=self._on_dropped,
        )
        interest.limit = self._limit = limit
        self._conn, self._interest = conn, interest
        self._host.subscriptions.add(self)
        try:
            conn.open_interest(interest, timeout)
        except BaseException:
            self._closed_by_client()
            self._forget()
            raise

    # -- loop thread -----------------------------------------------------------------------
    async def _deliver(self, nats_msgs: list[Any]) -> None:
        """Wrap a batch from nats-py and hand it over; what does not fit is dropped."""
        if self._limit:
            nats_msgs = nats_msgs[: max(self._limit - self.delivered, 0)]
        queue = self._queue
        if queue.closed:
            return  # unsubscribed: what is still in flight is dropped
        # Only what fits is wrapped: a flood past the limit costs no Msg objects.
        fits = nats_msgs if queue.free() >= len(nats_msgs) else nats_msgs[: queue.free()]
        host = self._host
        taken = queue.offer_batch([Msg(m.subject, m.data, m.headers, m.reply, host) for m in fits])
        self.delivered += taken
        if taken < len(nats_msgs):
            self._on_dropped(len(nats_msgs) - taken)
        if self._limit and self.delivered >= self._limit:
            self._reached_limit()

    def _on_dropped(self, count: int) -> None:
        """``count`` messages did not fit (loop thread); report it, rate-limited."""
        self.dropped += count
        now = time.monotonic()
        if now - self._slow_reported_at < SLOW_CONSUMER_REPORT_INTERVAL:
            return
        self._slow_reported_at = now
        log.warning(
            "syncmsg: slow consumer on %r: %d messages dropped so far", self.subject, self.dropped
        )
        error = SlowConsumerError(
            f"slow consumer on {self.subject!r}: messages dropped",
            subject=self.subject,
            dropped=self.dropped,
        )
        self._host.hooks.report_error(error, None, self._error_callback, on_loop=True)

    def _reached_limit(self) -> None:
        """The auto-unsubscribe limit was reached (loop thread): no more messages come;
        those queued are still handled, then the subscription ends."""
        self._closed.set()
        self._queue.close(discard=False)
        interest, conn = self._interest, self._conn
        if interest is not None and conn is not None:
            conn.close_interest(interest, drain=False, timeout=0.0)
        self._forget()

    def _delivery_failed(self, exc: BaseException) -> None:
        self._host.hooks.report_error(exc, None, self._error_callback, on_loop=True)

    # -- any thread ------------------------------------------------------------------------
    @property
    def is_active(self) -> bool:
        return not self._closed.is_set()

    @property
    def pending(self) -> int:
        """Messages received but not yet taken by a worker or ``next_msg``."""
        return len(self._queue)

    def stats(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "queue": self.queue,
            "active": self.is_active,
            "delivered": self.delivered,
            "pending": self.pending,
            "dropped": self.dropped,
        }

    def unsubscribe(self, limit: int | None = None) -> None:
        """Stop the subscription; queued messages that no worker has taken are dropped.

        With ``limit``, stop once ``limit`` messages have arrived in all (counting those
        already delivered), as nats-py's ``unsubscribe(limit=)`` does.
        """
        if self._closed.is_set():
            return
        if limit:
            self._set_limit(limit)
            return
        self._closed.set()
        self._remove_interest(drain=False)
        self.dropped += self._queue.close(discard=True)
        self._after_close(self._host.config.close_timeout)

    def _set_limit(self, limit: int) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive number of messages, got {limit!r}")
        self._limit = limit
        interest, conn = self._interest, self._conn
        if self.delivered >= limit:
            self.unsubscribe()
        elif interest is not None and conn is not None:
            conn.set_interest_limit(interest, limit, self._host.config.timeout)

    def drain(self, timeout: float | None = None) -> None:
        """Stop new messages, finish every queued one, then end the subscription.

        Raises :class:`~syncmsg.TimeoutError` when the queue is not empty by the deadline.
        """
        if self._closed.is_set():
            return
        timeout = check_timeout(timeout, self._host.config.drain_timeout)
        deadline = Deadline(timeout)
        self._closed.set()
        self._remove_interest(drain=True, timeout=timeout)
        idle = self._wait_idle(deadline.left())
        self._queue.close(discard=not idle)
        self._after_close(deadline.left())
        if not idle:
            raise TimeoutError(f"drain of {self.subject!r} did not finish in {timeout:g}s")

    def _remove_interest(self, *, drain: bool, timeout: float | None = None) -> None:
        interest, conn = self._interest, self._conn
        if interest is None or conn is None:
            return
        wait = check_timeout(timeout, self._host.config.timeout)
        conn.close_interest(interest, drain=drain, timeout=wait)

    def _wait_idle(self, timeout: float) -> bool:
        return self._queue.wait_idle(timeout)

    def _after_close(self, timeout: float) -> None:
        self._forget()

    def _forget(self) -> None:
        self._host.subscriptions.discard(self)

    def _close_with_client(self, timeout: float) -> None:
        """The client is closing (a caller thread): finish what is in hand, within
        ``timeout``. Raises :class:`~syncmsg.TimeoutError` when that could not be done."""
        self.drain(timeout)

    def _closed_by_client(self) -> None:
        """The client closed: mark closed and release every waiter, without blocking."""
        self._closed.set()
        self._queue.close(discard=True)


class Subscription(SubscriptionBase):
    """A subscription whose callback runs on worker threads.

    With ``workers=1`` (the default) messages are handled one at a time, in order. More
    workers handle messages in parallel, and then in no guaranteed order.
    """

    def __init__(
        self,
        host: SubscriptionHost,
        subject: str,
        queue_group: str,
        queue: MessageQueue,
        callback: Callable[[Msg], Any],
        workers: int,
        error_callback: ErrorCallback | None,
    ) -> None:
        super().__init__(host, subject, queue_group, queue)
        self._callback = callback
        self._error_callback = error_callback
        self._workers = workers
        self._pool: WorkerPool | None = None

    def _start_workers(self) -> None:
        self._pool = WorkerPool(
            f"syncmsg-sub-{self.sid}", self._queue, self._callback, self._workers, self._on_error
        )

    def _on_error(self, exc: BaseException, msg: Msg | None) -> None:
        """A callback raised (its worker thread)."""
        log.error(
            "syncmsg callback for %r raised on message %r",
            self.subject,
            msg.subject if msg else None,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        self._host.hooks.report_error(exc, msg, self._error_callback)

    @property
    def handled(self) -> int:
        return self._pool.handled if self._pool else 0

    @property
    def failed(self) -> int:
        return self._pool.failed if self._pool else 0

    def stats(self) -> dict[str, Any]:
        data = super().stats()
        data.update(handled=self.handled, failed=self.failed)
        return data

    def _wait_idle(self, timeout: float) -> bool:
        if self._pool is not None and self._pool.in_worker():
            # A callback draining its own subscription: it is one of the busy workers, so
            # waiting for idleness would wait for itself. Wait for the queue to empty instead.
            return self._queue.wait_empty(timeout)
        return self._queue.wait_idle(timeout)

    def _after_close(self, timeout: float) -> None:
        if self._pool is not None and not self._pool.join(timeout):
            log.warning("syncmsg: workers of %r still busy after %.1fs", self.subject, timeout)
        super()._after_close(timeout)


class SyncSubscription(SubscriptionBase):
    """A subscription read by calling :meth:`next_msg` or by iterating over it.

    :meth:`drain` stops the interest and returns at once: messages already received stay
    readable with :meth:`next_msg` until they are consumed, then it raises
    :class:`~syncmsg.ConnectionClosedError`. When the client closes, unread messages are
    discarded at once.
    """

    def _wait_idle(self, timeout: float) -> bool:
        return True  # the reader is the caller; nothing to wait for here

    def _close_with_client(self, timeout: float) -> None:
        """Unread messages are discarded; the interest ends with the connection, so no
        round trip to the loop (which may be busy reading a backlog) is needed."""
        self._closed.set()
        self.dropped += self._queue.close(discard=True)
        self._forget()

    def next_msg(self, timeout: float | None = None) -> Msg:
        """The next message, waiting at most ``timeout`` seconds (default from config).

        Raises :class:`~syncmsg.TimeoutError` when none arrives in time, and
        :class:`~syncmsg.ConnectionClosedError` once the subscription is closed.
        """
        timeout = check_timeout(timeout, self._host.config.timeout)
        tracing = _instrumentation.active
        started = time.time_ns() if tracing is not None else 0
        msg = self._queue.take(timeout)
        if msg is None:
            if self._queue.closed:
                raise ConnectionClosedError(f"subscription to {self.subject!r} is closed")
            raise TimeoutError(f"no message on {self.subject!r} within {timeout:g}s")
        self._queue.done([msg])
        if tracing is not None:
            tracing.received(self, [msg], started)
        return msg

    def __iter__(self) -> Iterator[Msg]:
        """Yield messages as they arrive until the subscription or the client closes."""
        while True:
            tracing = _instrumentation.active
            started = time.time_ns() if tracing is not None else 0
            msg = self._queue.take(None)
            if msg is None:
                return
            self._queue.done([msg])
            if tracing is not None:
                tracing.received(self, [msg], started)
            yield msg

    def __enter__(self) -> SyncSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unsubscribe()

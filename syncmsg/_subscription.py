"""Subscriptions: callbacks on worker threads, or messages pulled with ``next_msg``.

Threading: on the event-loop thread, the connection's pump hands each batch of messages
from nats-py to :meth:`_Base._deliver`, which only wraps them and offers them to a bounded
:class:`~syncmsg._dispatch.MessageQueue`.
A :class:`Subscription` runs the user's callback on its own pool of worker threads
(``syncmsg-sub-<sid>-<i>``); a :class:`SyncSubscription` is emptied by whichever thread calls
:meth:`SyncSubscription.next_msg`. ``unsubscribe`` and ``drain`` may be called from any thread,
including a worker of the subscription itself (it then skips joining itself).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from syncmsg._dispatch import MessageQueue, WorkerPool
from syncmsg._errors import ConnectionClosedError, TimeoutError
from syncmsg._msg import Msg

if TYPE_CHECKING:
    from syncmsg._client import Client

__all__ = ["Subscription", "SyncSubscription"]

log = logging.getLogger("syncmsg")

ErrorCallback = Callable[[BaseException, "Msg | None"], None]


class _Base:
    """What both kinds share: the server-side interest and the bounded queue."""

    def __init__(
        self,
        client: Client,
        subject: str,
        queue_group: str,
        queue: MessageQueue,
    ) -> None:
        self.subject = subject
        self.queue = queue_group
        self._client = client
        self._queue = queue
        self._nats_sub: Any = None  # nats-py's Subscription; touched on the loop thread only
        self.sid = 0
        self.delivered = 0
        self.dropped = 0
        self._slow_reported_at = -1.0  # monotonic time of the last slow-consumer report
        self._closed = threading.Event()

    def __repr__(self) -> str:
        state = "closed" if self._closed.is_set() else "active"
        return f"<{type(self).__name__} {self.subject!r} queue={self.queue!r} {state}>"

    # -- loop thread -------------------------------------------------------------------
    async def _deliver(self, nats_msgs: list[Any]) -> None:
        """Wrap a batch from nats-py and hand it over, waiting while the queue is full."""
        client = self._client
        msgs = [Msg(m.subject, m.data, m.headers, m.reply, client) for m in nats_msgs]
        queue = self._queue
        taken = queue.offer_batch(msgs)
        while taken < len(msgs):
            await queue.wait_for_room()
            taken = queue.offer_batch(msgs, taken)
        self.delivered += len(msgs)

    # -- any thread --------------------------------------------------------------------
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

    def unsubscribe(self) -> None:
        """Stop the subscription now; queued messages that no worker has taken are dropped."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._client._remove_interest(self, drain=False)
        self.dropped += self._queue.close(discard=True)
        self._after_close(self._client._config.close_timeout)

    def drain(self, timeout: float | None = None) -> None:
        """Stop new messages, finish every queued one, then end the subscription.

        Raises :class:`~syncmsg.TimeoutError` when the queue is not empty by the deadline.
        """
        if self._closed.is_set():
            return
        timeout = self._client._timeout(timeout, self._client._config.drain_timeout)
        deadline = time.monotonic() + timeout
        self._closed.set()
        self._client._remove_interest(self, drain=True, timeout=timeout)
        idle = self._wait_idle(max(deadline - time.monotonic(), 0.0))
        self._queue.close(discard=not idle)
        self._after_close(max(deadline - time.monotonic(), 0.0))
        if not idle:
            raise TimeoutError(f"drain of {self.subject!r} did not finish in {timeout:g}s")

    def _wait_idle(self, timeout: float) -> bool:
        return self._queue.wait_idle(timeout)

    def _after_close(self, timeout: float) -> None:
        self._client._forget(self)

    def _closed_by_client(self) -> None:
        """The client closed: mark closed and release every waiter, without blocking."""
        self._closed.set()
        self._queue.close(discard=True)


class Subscription(_Base):
    """A subscription whose callback runs on worker threads.

    With ``workers=1`` (the default) messages are handled one at a time, in order. More
    workers handle messages in parallel, and then in no guaranteed order.
    """

    def __init__(
        self,
        client: Client,
        subject: str,
        queue_group: str,
        queue: MessageQueue,
        callback: Callable[[Msg], Any],
        workers: int,
        error_callback: ErrorCallback | None,
        sid: int,
    ) -> None:
        super().__init__(client, subject, queue_group, queue)
        self.sid = sid
        self._callback = callback
        self._error_callback = error_callback
        self._pool = WorkerPool(f"syncmsg-sub-{sid}", queue, callback, workers, self._on_error)

    def _on_error(self, exc: BaseException, msg: Msg | None) -> None:
        log.error(
            "syncmsg callback for %r raised on message %r",
            self.subject,
            msg.subject if msg else None,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        self._client._report_error(exc, msg, self._error_callback)

    @property
    def handled(self) -> int:
        return self._pool.handled

    @property
    def failed(self) -> int:
        return self._pool.failed

    def stats(self) -> dict[str, Any]:
        data = super().stats()
        data.update(handled=self.handled, failed=self.failed)
        return data

    def _wait_idle(self, timeout: float) -> bool:
        if self._pool.in_worker():
            # A callback draining its own subscription: it is one of the busy workers, so
            # waiting for idleness would wait for itself. Wait for the queue to empty instead.
            deadline = time.monotonic() + timeout
            while len(self._queue) and time.monotonic() < deadline:
                time.sleep(0.005)
            return not len(self._queue)
        return self._queue.wait_idle(timeout)

    def _after_close(self, timeout: float) -> None:
        if not self._pool.join(timeout):
            log.warning("syncmsg: workers of %r still busy after %.1fs", self.subject, timeout)
        super()._after_close(timeout)


class SyncSubscription(_Base):
    """A subscription read by calling :meth:`next_msg` or by iterating over it.

    :meth:`drain` stops the interest and returns at once: messages already received stay
    readable with :meth:`next_msg` until they are consumed, then it raises
    :class:`~syncmsg.ConnectionClosedError`.
    """

    def _wait_idle(self, timeout: float) -> bool:
        return True  # the reader is the caller; nothing to wait for here

    def next_msg(self, timeout: float | None = None) -> Msg:
        """The next message, waiting at most ``timeout`` seconds (default from config).

        Raises :class:`~syncmsg.TimeoutError` when none arrives in time, and
        :class:`~syncmsg.ConnectionClosedError` once the subscription is closed.
        """
        timeout = self._client._timeout(timeout)
        msg = self._queue.take(timeout)
        if msg is None:
            if self._queue.closed:
                raise ConnectionClosedError(f"subscription to {self.subject!r} is closed")
            raise TimeoutError(f"no message on {self.subject!r} within {timeout:g}s")
        self._queue.done()
        return msg

    def __iter__(self) -> Iterator[Msg]:
        """Yield messages as they arrive until the subscription or the client closes."""
        while True:
            msg = self._queue.take(None)
            if msg is None:
                return
            self._queue.done()
            yield msg

    def __enter__(self) -> SyncSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unsubscribe()

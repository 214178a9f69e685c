"""The bounded hand-off between the event-loop thread and user code.

Threading: the loop thread calls :meth:`MessageQueue.offer_batch` (core subscriptions drop
what does not fit) or :meth:`MessageQueue.offer` and awaits
:meth:`MessageQueue.wait_for_room` (JetStream consumers, whose flow control means it rarely
waits); consumer threads (a :class:`WorkerPool`'s workers, or a caller of ``next_msg``)
call :meth:`MessageQueue.take_batch` and :meth:`MessageQueue.done`. The queue holds at most
``max_msgs`` messages and ``max_bytes`` bytes, counting those a consumer has taken and not
yet finished, so the bound is what the subscription holds in all.

A :class:`WorkerPool` runs the user's callback on N named daemon threads. An exception from
the callback is handed to ``on_error`` and never reaches the loop or stops the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from syncmsg._deadline import Deadline
from syncmsg._msg import Msg

__all__ = ["MessageQueue", "WorkerPool"]

log = logging.getLogger("syncmsg")

# Most messages a worker takes from the queue at once: one lock round per batch, not per
# message, while staying small enough that a slow batch does not delay a drain for long.
_BATCH = 64


class MessageQueue:
    """A bounded FIFO of messages, filled by the loop and emptied by threads."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_msgs: int, max_bytes: int) -> None:
        self._loop = loop
        self._items: deque[Msg] = deque()
        self._bytes = 0
        self.max_msgs = max_msgs
        self.max_bytes = max_bytes
        self._lock = lock = threading.Lock()
        # Idle consumers, each parked on a lock of its own that a new message releases
        # after the queue's lock is let go: the woken thread then does not wake only to
        # block again on the queue's lock, as with a Condition notified under it.
        self._parked: deque[threading.Lock] = deque()
        # wait_idle/wait_empty wait here, so that finishing a message wakes only them, not
        # every idle consumer (each a thread switch, for nothing, on every message).
        self._settled = threading.Condition(lock)
        self._settle_waiters = 0
        self._closed = False
        self._busy = 0  # messages taken but not yet reported done
        self._busy_bytes = 0
        self._room: asyncio.Event | None = None  # set while the loop waits for room

    def _has_room(self) -> bool:
        """Room for one more message (the lock is held). An empty queue takes one message
        whatever its size, so that a message above ``max_bytes`` is not refused for ever."""
        held = len(self._items) + self._busy
        if not held:
            return True
        return held < self.max_msgs and self._bytes + self._busy_bytes < self.max_bytes

    # -- loop side ---------------------------------------------------------------------
    def free(self) -> int:
        """How many more messages the count bound admits now (bytes are checked on offer)."""
        held = len(self._items) + self._busy
        return max(self.max_msgs - held, 0) if held else max(self.max_msgs, 1)

    def offer(self, msg: Msg) -> bool:
        """Append ``msg`` unless the queue is full or closed; True when it was taken."""
        with self._lock:
            if self._closed:
                return True  # dropped on purpose: nobody will ever take it
            if not self._has_room():
                return False
            self._items.append(msg)
            self._bytes += len(msg.data)
            park = self._parked.popleft() if self._parked else None
        if park is not None:
            park.release()
        return True

    def offer_batch(self, msgs: list[Msg], start: int = 0) -> int:
        """Append ``msgs[start:]`` while there is room; return the index of the first left.

        A closed queue takes (drops) everything: nobody will ever read it.
        """
        with self._lock:
            end = len(msgs)
            if self._closed:
                return end
            items = self._items
            index = start
            while index < end and self._has_room():
                msg = msgs[index]
                items.append(msg)
                self._bytes += len(msg.data)
                index += 1
            parked = self._parked
            wake = [parked.popleft() for _ in range(min(len(parked), index - start))]
        for park in wake:
            park.release()
        return index

    async def wait_for_room(self) -> None:
        """Wait (on the loop) until a consumer has made room or the queue is closed."""
        room = asyncio.Event()
        with self._lock:
            if self._closed or self._has_room():
                return
            self._room = room
        await room.wait()

    # -- consumer side -----------------------------------------------------------------
    def take(self, timeout: float | None) -> Msg | None:
        """The next message, or None when the queue is closed and empty, or on timeout."""
        batch = self.take_batch(timeout, 1)
        return batch[0] if batch else None

    def take_batch(self, timeout: float | None, limit: int, share: int = 1) -> list[Msg]:
        """Up to ``limit`` messages (at least one), or [] when closed and empty or on timeout.

        With ``share`` consumers, takes at most its fair share of what is queued, so one
        worker does not hoard a batch while the others sit idle.
        """
        deadline = None  # made when the first wait begins: most takes find messages
        items = self._items
        lock = self._lock
        with lock:
            while not items:
                if deadline is None:
                    deadline = Deadline(timeout)
                if self._closed or deadline.expired:
                    return []
                park = threading.Lock()
                park.acquire()
                self._parked.append(park)
                lock.release()
                try:
                    # In slices, so that Ctrl-C reaches a main thread blocked here.
                    park.acquire(True, deadline.left(0.5))
                finally:
                    lock.acquire()
                    with contextlib.suppress(ValueError):  # gone: a message woke it
                        self._parked.remove(park)
            count = min(limit, max(1, -(-len(items) // share)))
            popleft = items.popleft
            batch = [popleft() for _ in range(count)]
            size = sum(len(msg.data) for msg in batch)
            self._bytes -= size
            self._busy += count
            self._busy_bytes += size
        return batch

    def done(self, batch: list[Msg]) -> None:
        """Report that the messages of ``batch`` (from :meth:`take_batch`) are handled."""
        with self._lock:
            self._busy -= len(batch)
            self._busy_bytes -= sum(len(msg.data) for msg in batch)
            if self._settle_waiters and not self._items:
                self._settled.notify_all()
            room = self._room
            self._room = None
        if room is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(room.set)

    def wait_idle(self, timeout: float | None) -> bool:
        """Wait until every queued message has been taken and handled."""
        return self._wait(lambda: not (self._items or self._busy), timeout)

    def wait_empty(self, timeout: float | None) -> bool:
        """Wait until every queued message has been taken (maybe not yet handled)."""
        return self._wait(lambda: not self._items, timeout)

    def _wait(self, done: Callable[[], bool], timeout: float | None) -> bool:
        deadline = Deadline(timeout)
        with self._settled:
            while not done():
                if deadline.expired:
                    return False
                self._settle_waiters += 1
                try:
                    self._settled.wait(deadline.remaining(0.5))  # slices: Ctrl-C reaches it
                finally:
                    self._settle_waiters -= 1
        return True

    def close(self, *, discard: bool) -> int:
        """Stop accepting messages; with ``discard``, drop the queued ones. Returns drops."""
        with self._lock:
            self._closed = True
            dropped = 0
            if discard:
                dropped = len(self._items)
                self._items.clear()
                self._bytes = 0
            wake = list(self._parked)
            self._parked.clear()
            self._settled.notify_all()
            room = self._room
            self._room = None
        for park in wake:
            park.release()
        if room is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(room.set)
        return dropped

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)


class WorkerPool:
    """N threads that take messages from a queue and run ``handler(msg)`` on each."""

    def __init__(
        self,
        name: str,
        queue: MessageQueue,
        handler: Callable[[Msg], Any],
        workers: int,
        on_error: Callable[[BaseException, Msg], None],
    ) -> None:
        self._queue = queue
        self._handler = handler
        self._on_error = on_error
        # [handled, failed] per worker, each written only by its own worker: no lock.
        self._counts = [[0, 0] for _ in range(workers)]
        self._threads = [
            threading.Thread(target=self._work, args=(i,), name=f"{name}-{i}", daemon=True)
            for i in range(workers)
        ]
        self._idents: set[int] = set()
        for thread in self._threads:
            thread.start()

    @property
    def handled(self) -> int:
        """Messages whose callback returned."""
        return sum(count[0] for count in self._counts)

    @property
    def failed(self) -> int:
        """Messages whose callback raised."""
        return sum(count[1] for count in self._counts)

    def _work(self, index: int) -> None:
        self._idents.add(threading.get_ident())
        queue = self._queue
        handler = self._handler
        share = len(self._threads)
        counts = self._counts[index]
        while True:
            batch = queue.take_batch(None, _BATCH, share)
            if not batch:
                return
            failed = 0
            for msg in batch:
                try:
                    handler(msg)
                except BaseException as exc:  # a user's callback may raise anything
                    failed += 1
                    try:
                        self._on_error(exc, msg)
                    except Exception:
                        log.exception("syncmsg error hook raised while handling %s", msg.subject)
            counts[0] += len(batch) - failed
            counts[1] += failed
            queue.done(batch)

    def in_worker(self) -> bool:
        """True when called from one of this pool's own threads."""
        return threading.get_ident() in self._idents

    def join(self, timeout: float | None) -> bool:
        """Wait for every worker to end (the queue must be closed); True if they all did.

        A worker calling this skips itself, so a callback may stop its own subscription.
        """
        deadline = Deadline(timeout)
        me = threading.current_thread()
        for thread in self._threads:
            if thread is not me:
                thread.join(deadline.remaining())
        return not any(t.is_alive() for t in self._threads if t is not me)

"""Interest: one subject the server sends us messages for, and the pump that moves them on.

Threading: the event-loop thread only. An :class:`Interest` is the loop-side half of a
subscription (a core one, a JetStream consumer's inbox, the client's reply inbox). It holds
a nats-py subscription and a pump task that takes what nats-py has queued and hands it to
the owner's ``deliver`` coroutine in batches: nats-py's own callback mode awaits one
coroutine per message, while reading its queue directly hands over everything that arrived
in one read.

An interest made with ``receive`` instead (the client's reply inbox) has no pump: each
message is handed to ``receive`` while nats-py parses the read that brought it, so a reply
wakes its waiter without first waking a task on the loop.

An interest outlives the nats-py connection it was made on: when the connection is
replaced (nats-py gave up on it), :class:`~syncmsg._connection.Connection` opens every
interest again on the new one, and the owner never notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Deliver", "Interest", "Receive"]

log = logging.getLogger("syncmsg")

#: ``deliver(batch)``: a list of nats-py messages, oldest first, on the loop thread.
Deliver = Callable[[list[Any]], Awaitable[None]]
#: ``receive(msg)``: one nats-py message, on the loop thread, inside nats-py's parser: it
#: must only hand the message on, never wait.
Receive = Callable[[Any], object]
#: Most messages a pump hands over at once.
PUMP_BATCH = 256


class Interest:
    """A subject, a queue group, limits for nats-py's queue, and where messages go.

    ``msgs_limit`` / ``bytes_limit`` bound nats-py's own queue in front of the pump (0: no
    bound there; the owner then bounds what it holds itself); when that queue overflows,
    nats-py drops the message and ``on_dropped(1)`` is called. ``on_failure(exc)`` hears of
    an exception from ``deliver``. ``limit`` (if set) is the
    number of messages after which the server stops sending (``UNSUB <sid> <n>``).
    """

    def __init__(
        self,
        subject: str,
        queue: str,
        deliver: Deliver | None,
        *,
        receive: Receive | None = None,
        msgs_limit: int = 0,
        bytes_limit: int = 0,
        on_failure: Callable[[BaseException], None] | None = None,
        on_dropped: Callable[[int], None] | None = None,
    ) -> None:
        self.subject = subject
        self.queue = queue
        if (deliver is None) == (receive is None):
            raise ValueError("an interest needs either deliver or receive")
        self.deliver = deliver
        self.receive = receive
        self.msgs_limit = msgs_limit
        self.bytes_limit = bytes_limit
        self.limit = 0
        self.received = 0
        self.nats_sub: Any = None
        self._on_failure = on_failure
        self.on_dropped = on_dropped  # nats-py's bounded queue overflowed (loop thread)
        self._pump: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        sid = getattr(self.nats_sub, "_id", None)
        return f"<Interest {self.subject!r} queue={self.queue!r} sid={sid}>"

    @property
    def sid(self) -> int | None:
        """nats-py's id of the current subscription (it changes when reopened)."""
        return None if self.nats_sub is None else int(self.nats_sub._id)

    async def open(self, nc: Any) -> None:
        """Subscribe on ``nc`` (a connected nats-py client) and start the pump."""
        self.stop_pump()
        sub = await nc.subscribe(
            self.subject,
            queue=self.queue,
            pending_msgs_limit=self.msgs_limit,
            pending_bytes_limit=self.bytes_limit,
        )
        self.nats_sub = sub
        if self.limit:
            await sub.unsubscribe(limit=max(self.limit - self.received, 1))
        if self.receive is not None:
            sub._pending_queue = _HandOver(self, sub, self.receive)
            return
        self._pump = asyncio.get_running_loop().create_task(self._run(sub))

    async def set_limit(self, limit: int) -> None:
        """Tell the server to stop after ``limit`` messages in all (counting those seen)."""
        self.limit = limit
        sub = self.nats_sub
        if sub is not None and self.received < limit:
            await sub.unsubscribe(limit=limit - self.received)

    async def close(self, *, drain: bool) -> None:
        """Remove the interest at the server; with ``drain``, hand over what nats-py holds
        first. The pump stops either way."""
        sub = self.nats_sub
        try:
            if sub is not None and not sub._conn.is_closed and not sub._closed:
                if drain:
                    await sub.drain()
                else:
                    await sub.unsubscribe()
        finally:
            self.stop_pump()

    def stop_pump(self) -> None:
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()

    def _failed(self, exc: BaseException, count: int) -> None:
        log.error("syncmsg: delivering %d messages failed", count, exc_info=exc)
        if self._on_failure is not None:
            self._on_failure(exc)

    async def _run(self, nats_sub: Any) -> None:
        """The pump: nats-py's queue → ``deliver``, a batch at a time, until cancelled.

        nats-py's byte count and ``task_done`` are kept as nats-py does, so that its limits
        and its ``drain`` keep working.
        """
        queue = nats_sub._pending_queue
        get, get_nowait = queue.get, queue.get_nowait
        deliver = self.deliver
        assert deliver is not None
        while True:
            batch = [await get()]
            with contextlib.suppress(asyncio.QueueEmpty):
                while len(batch) < PUMP_BATCH:
                    batch.append(get_nowait())
            nats_sub._pending_size -= sum(len(msg.data) for msg in batch)
            self.received += len(batch)
            try:
                await deliver(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug in a hand-off must not end the subscription
                self._failed(exc, len(batch))
            finally:
                for _ in batch:
                    queue.task_done()


class _HandOver:
    """Stands in for a nats-py subscription's queue: nats-py's parser "queues" each message,
    and it goes straight to ``receive`` instead (loop thread).

    Has what nats-py asks of its queue; it never holds anything, so it is always empty and
    a drain has nothing to wait for. An exception from ``receive`` is reported, never let
    into nats-py's parser (it would end the read loop).
    """

    __slots__ = ("_interest", "_receive", "_sub")

    def __init__(self, interest: Interest, sub: Any, receive: Receive) -> None:
        self._interest = interest
        self._sub = sub
        self._receive = receive

    def put_nowait(self, msg: Any) -> None:
        self._sub._pending_size -= len(msg.data)
        self._interest.received += 1
        try:
            self._receive(msg)
        except Exception as exc:
            self._interest._failed(exc, 1)

    def qsize(self) -> int:
        return 0

    def empty(self) -> bool:
        return True

    def task_done(self) -> None:
        """Nothing is ever queued, so nothing is ever done."""

    async def join(self) -> None:
        """Nothing is ever queued: a drain has nothing to wait for."""

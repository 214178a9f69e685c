"""Pipelined publishing: ``publish_async``'s bounded window and the acks thread.

Threading:

* :meth:`AsyncPublisher.publish_async` sends on the caller's thread, after taking a slot of
  the in-flight window (a counter under a lock: a full window blocks the caller, never
  memory).
* Its acks come through the core's reply mux: for each, the loop thread only drops the ack
  into a queue.
* One thread per context, ``syncmsg-js-acks-N``, parses acks, schedules retries (a 429
  "too many requests" is retried with backoff, as a timeout or a lost connection), expires
  attempts that got no answer, and resolves the futures; when the client closes, the mux
  fails every attempt still waiting. **Done-callbacks of the returned futures run on that
  thread** (or on the caller's thread when the future is already done), never on the
  event-loop thread; keep them short. The thread ends after two idle seconds and starts
  again with the next publish.

Messages are prepared (ids, expectations, TTL) exactly as for the synchronous
:mod:`syncmsg.jetstream._publish`.
"""

from __future__ import annotations

import concurrent.futures
import heapq
import itertools
import math
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

from syncmsg import _instrumentation
from syncmsg._codec import Data, Headers, pub_command
from syncmsg._deadline import Deadline, check_timeout
from syncmsg._errors import (
    ConnectionClosedError,
    NoRespondersError,
    TimeoutError,
)
from syncmsg._replies import NO_RESPONDERS, STATUS, ReplyMux
from syncmsg._retry import RetryPolicy
from syncmsg.jetstream._models import Duration, PubAck
from syncmsg.jetstream._publish import (
    Expect,
    Message,
    StoredLookup,
    Tries,
    parse_pub_ack,
    prepare,
    should_retry,
)

if TYPE_CHECKING:
    from syncmsg._client import Client
    from syncmsg._connection import Connection

__all__ = ["AsyncPublisher"]

_thread_ids = itertools.count(1)
#: The acks thread ends after this long with nothing to do.
_IDLE_EXIT = 2.0
#: Answered attempts may stay in the timeouts heap (it is ordered by deadline, so they are
#: not removed when their ack comes); the heap is swept once it holds this many more than
#: the window, so that the payloads of acknowledged messages are not kept until their
#: deadlines (a fast writer would otherwise hold every message of its last ``timeout``).
_SWEEP_SLACK = 64


class AsyncPublisher:
    """Pipelined publishing for one JetStream context."""

    def __init__(
        self,
        client: Client,
        *,
        timeout: float,
        retry: RetryPolicy,
        no_responders_wait: float,
        max_pending: int,
        lookup: StoredLookup | None = None,
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self._client = client
        self.timeout = timeout
        self.retry = retry
        self.no_responders_wait = no_responders_wait
        self.max_pending = max_pending
        self._lookup = lookup
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # outstanding fell to 0
        self._room = threading.Condition(self._lock)  # a slot of the window came free
        self._outstanding = 0  # futures not yet resolved: the window
        # Attempts waiting for their ack: (deadline, n, reply, mux, pending), a heap.
        self._timeouts: list[tuple[float, int, str, ReplyMux, _Pending]] = []
        self._resends: list[tuple[float, int, _Pending]] = []  # (when, n, pending) heap
        self._acks: queue.SimpleQueue[_Ack] = queue.SimpleQueue()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._thread_ident: int | None = None

    # ------------------------------------------------------------------ caller threads
    def publish_async(
        self,
        subject: str,
        data: Data,
        *,
        msg_id: str | None,
        headers: Headers | None,
        expect: Expect | None,
        ttl: Duration | None,
        timeout: float | None,
    ) -> concurrent.futures.Future[PubAck]:
        tracing = _instrumentation.active
        if tracing is not None and type(headers) is not _instrumentation.TracedHeaders:
            return tracing.js_publish_async(  # calls back with the trace context
                self.publish_async, subject, data=data, msg_id=msg_id, headers=headers,
                expect=expect, ttl=ttl, timeout=timeout,
            )  # fmt: skip
        conn = self._client.connection()
        wait = check_timeout(timeout, self.timeout)
        message = prepare(subject, data, msg_id, headers, expect, ttl, conn)
        self._take_slot(wait)
        now = time.monotonic()
        policy_deadline = now + self.retry.deadline if self.retry.deadline else math.inf
        pending = _Pending(message, concurrent.futures.Future(), wait, now, policy_deadline)
        try:
            self._send(pending, conn)
        except BaseException as exc:
            self._finish(pending, exc)
        return pending.future

    def _take_slot(self, wait: float) -> None:
        """Count one more message in flight, waiting while the window is full."""
        with self._lock:
            if self._outstanding < self.max_pending:
                self._outstanding += 1
                return
            if threading.get_ident() == self._thread_ident:
                # A done-callback publishing again: waiting would wait for this very thread.
                raise TimeoutError("publish_async window is full (called from a done-callback)")
            deadline = Deadline(wait)
            while self._outstanding >= self.max_pending:
                if deadline.expired:
                    raise TimeoutError(
                        f"publish_async: {self.max_pending} messages still wait for their "
                        f"acks after {wait:g}s"
                    )
                self._room.wait(deadline.remaining(0.5))
            self._outstanding += 1

    def _send(self, pending: _Pending, conn: Connection) -> None:
        """Send one attempt (any thread but the loop)."""
        pending.attempts += 1
        replies = conn.replies
        reply = replies.expect(_AckWaiter(self._acks, pending, pending.attempts))
        deadline = time.monotonic() + pending.timeout
        with self._lock:
            heapq.heappush(self._timeouts, (deadline, next(self._seq), reply, replies, pending))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"syncmsg-js-acks-{next(_thread_ids)}", daemon=True
                )
                self._thread.start()
        message = pending.message
        try:
            conn.enqueue(
                pub_command(message.subject, reply, message.payload, message.block),
                len(message.payload),
            )
        except BaseException:
            replies.forget(reply)
            raise

    def _finish(
        self, pending: _Pending, error: BaseException | None, ack: PubAck | None = None
    ) -> None:
        """Resolve the future (running its done-callbacks on this thread) and free its slot."""
        if pending.finished:
            return
        pending.finished = True
        with self._lock:
            self._outstanding -= 1
            if self._outstanding == 0:
                self._idle.notify_all()
            self._room.notify()
        future = pending.future
        if future.set_running_or_notify_cancel():
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(ack)  # type: ignore[arg-type]

    def flush(self, timeout: float | None) -> None:
        """Wait until every ``publish_async`` so far has its ack (or its error)."""
        wait = check_timeout(timeout, self.timeout)
        deadline = Deadline(wait)
        with self._lock:
            while self._outstanding:
                if deadline.expired:
                    raise TimeoutError(
                        f"{self._outstanding} JetStream publishes still wait for acks "
                        f"after {wait:g}s"
                    )
                self._idle.wait(deadline.remaining(0.5))

    @property
    def outstanding(self) -> int:
        return self._outstanding

    # ------------------------------------------------------------------ the acks thread
    def _run(self) -> None:
        self._thread_ident = threading.get_ident()
        acks = self._acks
        idle_since = time.monotonic()
        while True:
            try:
                item: _Ack | None = acks.get(timeout=self._next_wait())
            except queue.Empty:
                item = None
            while item is not None:
                self._on_ack(*item)
                try:
                    item = acks.get_nowait()
                except queue.Empty:
                    item = None
            now = time.monotonic()
            self._expire(now)
            self._resend_due(now)
            with self._lock:
                if self._timeouts or self._resends or self._outstanding:
                    idle_since = now
                elif now - idle_since > _IDLE_EXIT and acks.empty():
                    self._thread = None
                    self._thread_ident = None
                    return

    def _next_wait(self) -> float:
        with self._lock:
            heads = [h[0][0] for h in (self._timeouts, self._resends) if h]
        if not heads:
            return 0.5
        return min(max(min(heads) - time.monotonic(), 0.0), 0.5)

    def _on_ack(
        self,
        pending: _Pending,
        attempt: int,
        data: bytes,
        headers: dict[str, str] | None,
        error: BaseException | None,
    ) -> None:
        if pending.finished or attempt != pending.attempts:
            return  # an answer for an attempt that was already given up (and resent)
        if isinstance(error, ConnectionClosedError):
            self._finish(pending, ConnectionClosedError("client closed before the ack came"))
            return
        try:
            if error is not None:
                raise error
            if headers and headers.get(STATUS) == NO_RESPONDERS and not data:
                raise NoRespondersError(f"no responders on {pending.message.subject!r}")
            ack = parse_pub_ack(data, pending.message, pending.attempts, self._lookup)
        except Exception as exc:
            self._retry_or_fail(pending, exc, delay=self.retry.initial)
            return
        self._finish(pending, None, ack)

    def _expire(self, now: float) -> None:
        """Give up on attempts whose ack did not come in time (they may be resent), and
        sweep the answered ones out of the heap when they pile up."""
        expired: list[_Pending] = []
        with self._lock:
            heap = self._timeouts
            while heap and heap[0][0] <= now:
                _, _, reply, replies, pending = heapq.heappop(heap)
                # Still waiting: no ack is coming. Not waiting: its ack is in the queue.
                if replies.forget(reply) and not pending.finished:
                    expired.append(pending)
            if len(heap) > self._outstanding + _SWEEP_SLACK:
                swept = [entry for entry in heap if entry[4].finished]
                heap[:] = [entry for entry in heap if not entry[4].finished]
                heapq.heapify(heap)
            else:
                swept = []
        for _, _, reply, replies, _ in swept:
            replies.forget(reply)  # answered: normally no longer waited for already
        for pending in expired:
            error = TimeoutError(
                f"no ack from JetStream for {pending.message.subject!r} within {pending.timeout:g}s"
            )
            self._retry_or_fail(pending, error, delay=0.0)

    def _retry_or_fail(self, pending: _Pending, error: BaseException, delay: float) -> None:
        if not should_retry(error, pending, self.no_responders_wait):
            self._finish(pending, error)
            return
        policy = self.retry
        if policy.attempts is not None and pending.attempts >= policy.attempts + 1:
            self._finish(pending, error)
            return
        # A timed-out attempt already waited; anything else waits the policy's backoff.
        wait = (
            0.0 if isinstance(error, TimeoutError) else max(delay, policy.delay(pending.attempts))
        )
        when = time.monotonic() + wait
        if when >= pending.deadline:
            self._finish(pending, error)
            return
        with self._lock:
            heapq.heappush(self._resends, (when, next(self._seq), pending))

    def _resend_due(self, now: float) -> None:
        due: list[_Pending] = []
        with self._lock:
            heap = self._resends
            while heap and heap[0][0] <= now:
                due.append(heapq.heappop(heap)[2])
        for pending in due:
            try:
                self._send(pending, self._client.connection())
            except Exception as exc:
                if isinstance(exc, ConnectionClosedError) or not should_retry(
                    exc, pending, self.no_responders_wait
                ):
                    self._finish(pending, exc)
                else:
                    self._retry_or_fail(pending, exc, delay=self.retry.initial)


# (pending, attempt, data, headers, error): one answer for the acks thread.
_Ack = tuple["_Pending", int, bytes, "dict[str, str] | None", "BaseException | None"]


class _AckWaiter:
    """One ``publish_async`` attempt in the reply mux: the loop thread only queues its ack
    (or the mux's failure) for the acks thread."""

    __slots__ = ("acks", "attempt", "pending")

    def __init__(self, acks: queue.SimpleQueue[_Ack], pending: _Pending, attempt: int) -> None:
        self.acks = acks
        self.pending = pending
        self.attempt = attempt

    def resolve(self, msg: Any) -> None:
        self.acks.put((self.pending, self.attempt, msg.data, msg.headers, None))

    def fail(self, error: BaseException) -> None:
        self.acks.put((self.pending, self.attempt, b"", None, error))


class _Pending(Tries):
    """A ``publish_async`` message until its future is resolved."""

    __slots__ = ("deadline", "finished", "future", "message", "started", "timeout")

    def __init__(
        self,
        message: Message,
        future: concurrent.futures.Future[PubAck],
        timeout: float,
        started: float,
        deadline: float,
    ) -> None:
        self.message = message
        self.future = future
        self.timeout = timeout
        self.started = started
        self.deadline = deadline
        self.finished = False
        super().__init__()

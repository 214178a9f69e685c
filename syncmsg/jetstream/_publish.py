"""Publishing to streams: message ids, retries, and the bounded window of ``publish_async``.

Threading:

* :meth:`Publisher.publish` runs entirely on the caller's thread: it builds the ``HPUB``
  command, appends it to the client's outbound queue, waits for the server's ack (a lock
  that the loop thread releases when the ack reaches the context's ack inbox) and parses
  it. Retries sleep on the caller's thread too.
* :meth:`Publisher.publish_async` sends on the caller's thread as well, after taking a slot
  of the in-flight window (a counter under a lock: a full window blocks the caller, never
  memory). Acks come to a wildcard inbox of the context's own; for each, the loop thread
  only drops ``(subject, data, headers)`` into a queue. One thread per context,
  ``syncmsg-js-acks-N``, parses acks, schedules retries, expires attempts that got no
  answer, fails what is left when the client closes, and resolves the futures.
  **Done-callbacks of the returned futures run on that thread** (or on the caller's thread
  when the future is already done), never on the event-loop thread; keep them short.

Exactly once: every logical message carries a ``Nats-Msg-Id`` (the caller's, or one made
here once) that every retry reuses, so the stream stores it once however often it is sent,
as long as the retries happen within the stream's duplicate window.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import heapq
import itertools
import json
import logging
import math
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from syncmsg._codec import Data, Headers, encode_headers, encode_payload, pub_command
from syncmsg._connection import Connection
from syncmsg._errors import (
    ConnectionClosedError,
    JetStreamError,
    LoopThreadError,
    NoRespondersError,
    PayloadTooLargeError,
    TimeoutError,
    map_api_error,
)
from syncmsg._retry import RetryPolicy
from syncmsg._subjects import check_publish_subject
from syncmsg.jetstream._api import is_retryable

if TYPE_CHECKING:
    from syncmsg._client import Client

__all__ = ["MSG_ID", "PubAck", "Publisher", "new_msg_id"]

log = logging.getLogger("syncmsg.jetstream")

MSG_ID = "Nats-Msg-Id"
EXPECTED_STREAM = "Nats-Expected-Stream"
EXPECTED_LAST_SEQ = "Nats-Expected-Last-Sequence"

_thread_ids = itertools.count(1)
_STATUS = "Status"
_NO_RESPONDERS = "503"


@dataclasses.dataclass(frozen=True)
class PubAck:
    """The stream's receipt for a message: where it is stored.

    ``duplicate`` is True when the stream already had a message with this ``Nats-Msg-Id``
    (an earlier attempt got through): ``seq`` is then that message's sequence.
    """

    stream: str
    seq: int
    duplicate: bool = False
    domain: str | None = None


class _MsgIds:
    """Unique message ids: a random per-process prefix and a counter (fork-safe)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._prefix = secrets.token_hex(10) + "-"
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter)}"


_ids = _MsgIds()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ids.reset)


def new_msg_id() -> str:
    """A fresh, unique ``Nats-Msg-Id``."""
    return _ids.next()


_WRONG_LAST_SEQUENCE = 10071
# Given a stream and a sequence, the Nats-Msg-Id stored there (None if nothing is).
StoredIdLookup = Callable[[str, int], "str | None"]


def parse_pub_ack(
    reply: bytes,
    message: _Message | None = None,
    attempts: int = 1,
    lookup: StoredIdLookup | None = None,
) -> PubAck:
    """The PubAck in a reply, or the syncmsg error its ``{"error": ...}`` stands for.

    The server checks ``expected_last_seq`` before it looks for duplicates, so a retry of a
    message whose first attempt was stored (and whose ack was lost) is refused with "wrong
    last sequence". On a retry, that answer is checked against the stream: if our message
    id sits right after the expected sequence, the publish did succeed (a duplicate).
    """
    try:
        data = json.loads(reply)
        error = data.get("error")
        if error is None:
            return PubAck(
                stream=data["stream"],
                seq=int(data["seq"]),
                duplicate=bool(data.get("duplicate", False)),
                domain=data.get("domain"),
            )
        stream = data.get("stream")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise JetStreamError(f"not a publish ack: {reply[:200]!r}") from None
    mapped = map_api_error(error)
    if (
        mapped.err_code == _WRONG_LAST_SEQUENCE
        and attempts > 1
        and message is not None
        and message.expected_last_seq is not None
        and lookup is not None
        and isinstance(stream, str)
        and stream
    ):
        seq = message.expected_last_seq + 1
        if lookup(stream, seq) == message.msg_id:
            return PubAck(stream=stream, seq=seq, duplicate=True)
    raise mapped


class _Message:
    """One logical message: encoded once, sent as often as retries need."""

    __slots__ = ("block", "expected_last_seq", "msg_id", "payload", "subject")

    def __init__(
        self,
        subject: str,
        payload: bytes,
        block: bytes | None,
        msg_id: str,
        expected_last_seq: int | None = None,
    ) -> None:
        self.subject = subject
        self.payload = payload
        self.block = block
        self.msg_id = msg_id
        self.expected_last_seq = expected_last_seq


class Publisher:
    """Synchronous and pipelined publishing for one JetStream context."""

    def __init__(
        self,
        client: Client,
        *,
        timeout: float,
        retry: RetryPolicy,
        no_responders_wait: float,
        max_pending: int,
        lookup: StoredIdLookup | None = None,
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
        self._inflight: dict[str, _Pending] = {}  # reply subject -> attempt waiting for its ack
        self._timeouts: list[tuple[float, int, str]] = []  # (deadline, n, reply) heap
        self._resends: list[tuple[float, int, _Pending]] = []  # (when, n, pending) heap
        self._acks: queue.SimpleQueue[_Ack] = queue.SimpleQueue()
        self._seq = itertools.count()
        self._tokens = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._thread_ident: int | None = None
        # publish_async acks come to a wildcard inbox of our own: the loop only queues them.
        self._inbox_lock = threading.Lock()
        self._prefix: str | None = None
        self._inbox_conn: Connection | None = None
        self._sync: dict[str, _SyncWait] = {}  # reply subject -> a publish() waiting for it

    # ------------------------------------------------------------------ shared
    def prepare(
        self,
        subject: str,
        data: Data,
        msg_id: str | None,
        headers: Headers | None,
        expected_stream: str | None,
        expected_last_seq: int | None,
        conn: Connection,
    ) -> _Message:
        check_publish_subject(subject)
        payload = encode_payload(data)
        block: bytes | None
        if msg_id is None and headers and isinstance(headers.get(MSG_ID), str):
            msg_id = str(headers[MSG_ID])  # the caller's id, given as a header
        if msg_id is None:
            msg_id = _ids.next()
            if not headers and expected_stream is None and expected_last_seq is None:
                # The common case, built directly: our ids are plain ASCII.
                block = b"NATS/1.0\r\nNats-Msg-Id: %s\r\n\r\n" % msg_id.encode()
                return self._checked(_Message(subject, payload, block, msg_id), conn)
        elif not isinstance(msg_id, str) or not msg_id:
            raise ValueError("msg_id must be a non-empty string")
        merged: dict[str, Any] = dict(headers) if headers else {}
        merged[MSG_ID] = msg_id
        if expected_stream is not None:
            merged[EXPECTED_STREAM] = expected_stream
        if expected_last_seq is not None:
            if expected_last_seq < 0:
                raise ValueError("expected_last_seq cannot be negative")
            merged[EXPECTED_LAST_SEQ] = str(int(expected_last_seq))
        block = encode_headers(merged)
        message = _Message(subject, payload, block, msg_id, expected_last_seq)
        return self._checked(message, conn)

    @staticmethod
    def _checked(message: _Message, conn: Connection) -> _Message:
        size = len(message.payload) + (len(message.block) if message.block else 0)
        if size > conn.max_payload:
            raise PayloadTooLargeError(
                f"{size} bytes is more than the server's max_payload ({conn.max_payload}) "
                f"on {message.subject!r}"
            )
        return message

    def _should_retry(self, exc: BaseException, tries: _Tries) -> bool:
        if isinstance(exc, NoRespondersError):
            # No stream listens (yet): a leader election or a restarting server answers
            # within seconds; a subject no stream captures never will.
            now = time.monotonic()
            if tries.no_responders_since is None:
                tries.no_responders_since = now
            return now - tries.no_responders_since < self.no_responders_wait
        return is_retryable(exc)

    # ------------------------------------------------------------------ synchronous
    def publish(
        self,
        subject: str,
        data: Data,
        *,
        msg_id: str | None,
        headers: Headers | None,
        expected_stream: str | None,
        expected_last_seq: int | None,
        timeout: float | None,
    ) -> PubAck:
        client = self._client
        conn = client._live()
        runtime = client._runtime
        if runtime is not None and runtime.in_loop_thread():
            raise LoopThreadError("js.publish() cannot be called from the event loop thread")
        wait = client._timeout(timeout, self.timeout)
        message = self.prepare(
            subject, data, msg_id, headers, expected_stream, expected_last_seq, conn
        )
        started = time.monotonic()
        tries = _Tries()

        def once(left: float | None) -> PubAck:
            tries.attempts += 1
            live = client._live()
            limit = wait if left is None else min(wait, left)
            reply = self._inbox(live, limit) + str(next(self._tokens))
            waiter = _SyncWait()
            self._sync[reply] = waiter
            try:
                live.enqueue(pub_command(message.subject, reply, message.payload, message.block))
                self._wait(waiter, limit, live, message.subject)
            finally:
                self._sync.pop(reply, None)
            if waiter.headers and waiter.headers.get(_STATUS) == _NO_RESPONDERS:
                raise NoRespondersError(f"no responders on {message.subject!r}")
            return parse_pub_ack(waiter.data, message, tries.attempts, self._lookup)

        try:
            return once(None)  # the common case, without the retry machinery
        except Exception as exc:
            if not self._should_retry(exc, tries):
                raise
            log.debug("syncmsg: publish to %r failed (%s); retrying", subject, exc)
            if isinstance(exc, NoRespondersError):
                time.sleep(self.retry.initial)
        policy = self.retry
        deadline = started + policy.deadline if policy.deadline else None
        return policy.call(
            once, deadline=deadline, should_retry=lambda e: self._should_retry(e, tries)
        )

    def _wait(self, waiter: _SyncWait, timeout: float, conn: Connection, subject: str) -> None:
        """Wait for the ack; in slices, so that closing the client ends the wait at once."""
        deadline = time.monotonic() + timeout
        acquire = waiter.lock.acquire
        while not acquire(timeout=min(timeout, 0.25)):
            if conn.closed_reason is not None or self._client.is_closed:
                raise ConnectionClosedError("client closed before the ack came")
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise TimeoutError(f"no ack from JetStream for {subject!r} in time")

    # ------------------------------------------------------------------ pipelined
    def publish_async(
        self,
        subject: str,
        data: Data,
        *,
        msg_id: str | None,
        headers: Headers | None,
        expected_stream: str | None,
        expected_last_seq: int | None,
        timeout: float | None,
    ) -> concurrent.futures.Future[PubAck]:
        client = self._client
        conn = client._live()
        wait = client._timeout(timeout, self.timeout)
        message = self.prepare(
            subject, data, msg_id, headers, expected_stream, expected_last_seq, conn
        )
        prefix = self._inbox(conn, wait)
        self._take_slot(wait)
        now = time.monotonic()
        policy_deadline = now + self.retry.deadline if self.retry.deadline else math.inf
        pending = _Pending(message, concurrent.futures.Future(), wait, now, policy_deadline)
        try:
            self._send(pending, conn, prefix)
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
            deadline = time.monotonic() + wait
            while self._outstanding >= self.max_pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"publish_async: {self.max_pending} messages still wait for their "
                        f"acks after {wait:g}s"
                    )
                self._room.wait(min(left, 0.5))
            self._outstanding += 1

    def _inbox(self, conn: Connection, timeout: float) -> str:
        """The reply prefix of this context's ack inbox on ``conn`` (subscribed once)."""
        prefix = self._prefix
        if prefix is not None and self._inbox_conn is conn:
            return prefix
        with self._inbox_lock:
            if self._prefix is not None and self._inbox_conn is conn:
                return self._prefix
            client = self._client
            prefix = f"{client.config.inbox_prefix}.{secrets.token_hex(11)}."
            client._loop().call(
                conn.subscribe(
                    prefix + "*",
                    "",
                    self._on_loop_ack,
                    max(self.max_pending * 4, 65536),
                    client.config.pending_bytes_limit,
                    timeout,
                ),
                timeout,
                what="publish_async inbox",
            )
            self._prefix, self._inbox_conn = prefix, conn
            return prefix

    async def _on_loop_ack(self, arrived: Any) -> None:
        """On the loop thread: acks arrived (one nats-py message, or a list of them); wake
        their publishers, or queue them for the acks thread; nothing more."""
        sync = self._sync
        for nats_msg in arrived if isinstance(arrived, list) else (arrived,):
            waiter = sync.pop(nats_msg.subject, None)
            if waiter is not None:
                waiter.data = nats_msg.data
                waiter.headers = nats_msg.headers
                waiter.lock.release()
            else:
                self._acks.put((nats_msg.subject, nats_msg.data, nats_msg.headers))

    def _send(self, pending: _Pending, conn: Connection, prefix: str) -> None:
        """Send one attempt (any thread but the loop)."""
        reply = prefix + str(next(self._tokens))
        pending.attempts += 1
        deadline = time.monotonic() + pending.timeout
        with self._lock:
            self._inflight[reply] = pending
            heapq.heappush(self._timeouts, (deadline, next(self._seq), reply))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"syncmsg-js-acks-{next(_thread_ids)}", daemon=True
                )
                self._thread.start()
        message = pending.message
        try:
            conn.enqueue(pub_command(message.subject, reply, message.payload, message.block))
        except BaseException:
            with self._lock:
                self._inflight.pop(reply, None)
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
        wait = self._client._timeout(timeout, self.timeout)
        deadline = time.monotonic() + wait
        with self._lock:
            while self._outstanding:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{self._outstanding} JetStream publishes still wait for acks "
                        f"after {wait:g}s"
                    )
                self._idle.wait(min(left, 0.5))

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
            self._fail_if_closed()
            self._expire(now)
            self._resend_due(now)
            with self._lock:
                if self._inflight or self._resends or self._outstanding:
                    idle_since = now
                elif now - idle_since > 2.0 and acks.empty():
                    self._thread = None
                    self._thread_ident = None
                    return

    def _next_wait(self) -> float:
        with self._lock:
            heads = [h[0][0] for h in (self._timeouts, self._resends) if h]
        if not heads:
            return 0.5
        return min(max(min(heads) - time.monotonic(), 0.0), 0.5)

    def _on_ack(self, reply: str, data: bytes, headers: dict[str, str] | None) -> None:
        with self._lock:
            pending = self._inflight.pop(reply, None)
        if pending is None:
            return  # a late ack for an attempt that already timed out (and was resent)
        try:
            if headers and headers.get(_STATUS) == _NO_RESPONDERS and not data:
                raise NoRespondersError(f"no responders on {pending.message.subject!r}")
            ack = parse_pub_ack(data, pending.message, pending.attempts, self._lookup)
        except Exception as exc:
            self._retry_or_fail(pending, exc, delay=self.retry.initial)
            return
        self._finish(pending, None, ack)

    def _fail_if_closed(self) -> None:
        """Once the client is closed no ack can come: fail whatever still waits."""
        client = self._client
        conn = client._conn
        if not (client.is_closed or (conn is not None and conn.closed_reason is not None)):
            return
        with self._lock:
            waiting = list(self._inflight.values()) + [p for _, _, p in self._resends]
            self._inflight.clear()
            self._resends.clear()
            self._timeouts.clear()
        for pending in waiting:
            self._finish(pending, ConnectionClosedError("client closed before the ack came"))

    def _expire(self, now: float) -> None:
        expired: list[_Pending] = []
        with self._lock:
            heap = self._timeouts
            while heap and heap[0][0] <= now:
                _, _, reply = heapq.heappop(heap)
                pending = self._inflight.pop(reply, None)
                if pending is not None:
                    expired.append(pending)
        for pending in expired:
            error = TimeoutError(
                f"no ack from JetStream for {pending.message.subject!r} within {pending.timeout:g}s"
            )
            self._retry_or_fail(pending, error, delay=0.0)

    def _retry_or_fail(self, pending: _Pending, error: BaseException, delay: float) -> None:
        if not self._should_retry(error, pending):
            self._finish(pending, error)
            return
        policy = self.retry
        if policy.attempts is not None and pending.attempts >= policy.attempts + 1:
            self._finish(pending, error)
            return
        backoff = min(policy.initial * policy.multiplier ** (pending.attempts - 1), policy.maximum)
        when = time.monotonic() + (0.0 if isinstance(error, TimeoutError) else max(delay, backoff))
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
                conn = self._client._live()
                self._send(pending, conn, self._inbox(conn, pending.timeout))
            except Exception as exc:
                if isinstance(exc, ConnectionClosedError) or not self._should_retry(exc, pending):
                    self._finish(pending, exc)
                else:
                    self._retry_or_fail(pending, exc, delay=self.retry.initial)


_Ack = tuple[str, bytes, "dict[str, str] | None"]


class _SyncWait:
    """One ``publish()`` attempt's wait: a lock held until the loop thread releases it.

    Cheaper than a ``threading.Event`` on both threads (no Condition, no Python-level code).
    """

    __slots__ = ("data", "headers", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.data = b""
        self.headers: dict[str, str] | None = None


class _Tries:
    """How one logical message's attempts went, for the retry decisions."""

    __slots__ = ("attempts", "no_responders_since")

    def __init__(self) -> None:
        self.attempts = 0
        self.no_responders_since: float | None = None


class _Pending(_Tries):
    """A ``publish_async`` message until its future is resolved."""

    __slots__ = ("deadline", "finished", "future", "message", "started", "timeout")

    def __init__(
        self,
        message: _Message,
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

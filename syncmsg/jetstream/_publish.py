"""Publishing to streams: message ids, retries, and the bounded window of ``publish_async``.

Threading:

* :meth:`Publisher.publish` runs entirely on the caller's thread: it builds the ``HPUB``
  command and sends it as a request on the connection (the core's reply mux wakes it when
  the ack arrives), then parses the ack. Retries sleep on the caller's thread too.
* :meth:`Publisher.publish_async` sends on the caller's thread as well, after taking a slot
  of the in-flight window (a counter under a lock: a full window blocks the caller, never
  memory). Its acks come through the same reply mux: for each, the loop thread only drops
  the ack into a queue. One thread per context, ``syncmsg-js-acks-N``, parses acks,
  schedules retries, expires attempts that got no answer, and resolves the futures; when
  the client closes, the mux fails every attempt still waiting.
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
from syncmsg._deadline import Deadline, check_timeout
from syncmsg._errors import (
    ConnectionClosedError,
    JetStreamError,
    LoopThreadError,
    NoRespondersError,
    PayloadTooLargeError,
    TimeoutError,
    map_api_error,
)
from syncmsg._replies import NO_RESPONDERS, STATUS, ReplyMux
from syncmsg._retry import RetryPolicy
from syncmsg._subjects import check_publish_subject
from syncmsg.jetstream._api import is_retryable

if TYPE_CHECKING:
    from syncmsg._client import Client
    from syncmsg._connection import Connection

__all__ = ["MSG_ID", "PubAck", "Publisher", "new_msg_id"]

log = logging.getLogger("syncmsg.jetstream")

MSG_ID = "Nats-Msg-Id"
EXPECTED_STREAM = "Nats-Expected-Stream"
EXPECTED_LAST_SEQ = "Nats-Expected-Last-Sequence"

_thread_ids = itertools.count(1)


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
        # Attempts waiting for their ack: (deadline, n, reply, mux, pending), a heap.
        self._timeouts: list[tuple[float, int, str, ReplyMux, _Pending]] = []
        self._resends: list[tuple[float, int, _Pending]] = []  # (when, n, pending) heap
        self._acks: queue.SimpleQueue[_Ack] = queue.SimpleQueue()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._thread_ident: int | None = None

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
        conn = client.connection()
        if conn.in_loop_thread():
            raise LoopThreadError("js.publish() cannot be called from the event loop thread")
        wait = check_timeout(timeout, self.timeout)
        message = self.prepare(
            subject, data, msg_id, headers, expected_stream, expected_last_seq, conn
        )
        started = time.monotonic()
        tries = _Tries()

        def once(left: float | None) -> PubAck:
            tries.attempts += 1
            limit = wait if left is None else min(wait, left)
            answer = client.connection().request(
                message.subject, message.payload, message.block, limit
            )
            return parse_pub_ack(answer.data, message, tries.attempts, self._lookup)

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
        conn = self._client.connection()
        wait = check_timeout(timeout, self.timeout)
        message = self.prepare(
            subject, data, msg_id, headers, expected_stream, expected_last_seq, conn
        )
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
        """Give up on attempts whose ack did not come in time (they may be resent)."""
        expired: list[_Pending] = []
        with self._lock:
            heap = self._timeouts
            while heap and heap[0][0] <= now:
                _, _, reply, replies, pending = heapq.heappop(heap)
                # Still waiting: no ack is coming. Not waiting: its ack is in the queue.
                if replies.forget(reply) and not pending.finished:
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
                self._send(pending, self._client.connection())
            except Exception as exc:
                if isinstance(exc, ConnectionClosedError) or not self._should_retry(exc, pending):
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

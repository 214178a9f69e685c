"""Durable pull consumers: handlers in worker threads, and ``fetch``.

Threading, for a :class:`JetStreamSubscription` (made by ``js.subscribe``):

* **The loop thread** runs :meth:`JetStreamSubscription._deliver` for each message nats-py
  reads from the subscription's private inbox: it wraps the message, counts it, and hands it
  to a bounded :class:`~syncmsg._dispatch.MessageQueue`. Nothing else happens there.
* **Worker threads** ``syncmsg-js-<sid>-<i>`` run the handler, then ack (on return), nak with
  the consumer's backoff (on an exception) or dead-letter (on the last allowed delivery).
  When a worker frees a slot it may send the next pull request itself: a ``PUB`` appended to
  the outbound queue, no round trip to the loop.
* **The keeper thread** ``syncmsg-js-<sid>-keeper`` is the leaser and the housekeeper: it
  sends ``in_progress`` for messages held longer than half the ack wait (queued or in a
  handler), expires pull requests the server never answered (a restart), notices
  reconnects, and re-creates the consumer if the server lost it.

Flow control: the subscription never holds more than ``prefetch`` (≤ ``max_ack_pending``)
messages between the server and its handlers. It asks the server for exactly the room left,
``prefetch - in_hand - requested``, once that room is a quarter of ``prefetch``, so
pull requests are few and large and nothing is buffered without bound.

A :class:`PullSubscription` (``js.pull_subscribe``) has no workers: :meth:`~PullSubscription.fetch`
sends one pull request and waits on the calling thread for its messages.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from syncmsg._codec import pub_command
from syncmsg._deadline import Deadline, check_timeout
from syncmsg._dispatch import MessageQueue, WorkerPool
from syncmsg._errors import (
    ConnectionClosedError,
    ConsumerNotFoundError,
    DeadLetterError,
    JetStreamError,
    NoRespondersError,
    SyncMsgError,
    TimeoutError,
)
from syncmsg._msg import Msg
from syncmsg._replies import ReplyMux
from syncmsg._subscription import SubscriptionBase
from syncmsg._types import ErrorCallback
from syncmsg.jetstream._api import Duration, from_nanos, to_nanos
from syncmsg.jetstream._deadletter import DeadLetterer
from syncmsg.jetstream._message import JsMsg, describe
from syncmsg.jetstream._streams import parse_time

if TYPE_CHECKING:
    from syncmsg._connection import Connection
    from syncmsg.jetstream._context import JetStream

__all__ = [
    "ConsumerInfo",
    "DeliverPolicy",
    "JetStreamSubscription",
    "PullSubscription",
    "consumer_config",
]

log = logging.getLogger("syncmsg.jetstream")

_STATUS = "Status"
_PENDING_MSGS = "Nats-Pending-Messages"
_ACK_PREFIX = "$JS.ACK."
_HEARTBEAT = "100"
# A pull request lives this long at the server; the client forgets it a little later.
_PULL_EXPIRES = 5.0
_PULL_GRACE = 2.0


class DeliverPolicy(str, enum.Enum):
    """Where a new consumer starts in the stream."""

    ALL = "all"
    LAST = "last"
    NEW = "new"
    LAST_PER_SUBJECT = "last_per_subject"


@dataclasses.dataclass(frozen=True)
class ConsumerInfo:
    """A consumer as the server reports it (``raw`` is the API's whole reply)."""

    stream: str
    name: str
    durable: str | None
    filter_subject: str | None
    ack_wait: dt.timedelta | None
    max_deliver: int
    max_ack_pending: int
    backoff: tuple[dt.timedelta, ...]
    num_pending: int
    num_ack_pending: int
    num_redelivered: int
    num_waiting: int
    delivered_stream_seq: int
    delivered_consumer_seq: int
    ack_floor_stream_seq: int
    ack_floor_consumer_seq: int
    created: dt.datetime | None
    raw: dict[str, Any] = dataclasses.field(repr=False, compare=False)

    @property
    def config(self) -> dict[str, Any]:
        """The consumer's configuration as the API reports it."""
        return dict(self.raw.get("config") or {})

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> ConsumerInfo:
        config = data.get("config") or {}
        delivered = data.get("delivered") or {}
        floor = data.get("ack_floor") or {}
        backoff = tuple(d for d in (from_nanos(v) for v in config.get("backoff") or ()) if d)
        return cls(
            stream=str(data.get("stream_name", "")),
            name=str(data.get("name", "")),
            durable=config.get("durable_name"),
            filter_subject=config.get("filter_subject"),
            ack_wait=from_nanos(config.get("ack_wait")),
            max_deliver=int(config.get("max_deliver", -1)),
            max_ack_pending=int(config.get("max_ack_pending", -1)),
            backoff=backoff,
            num_pending=int(data.get("num_pending", 0)),
            num_ack_pending=int(data.get("num_ack_pending", 0)),
            num_redelivered=int(data.get("num_redelivered", 0)),
            num_waiting=int(data.get("num_waiting", 0)),
            delivered_stream_seq=int(delivered.get("stream_seq", 0)),
            delivered_consumer_seq=int(delivered.get("consumer_seq", 0)),
            ack_floor_stream_seq=int(floor.get("stream_seq", 0)),
            ack_floor_consumer_seq=int(floor.get("consumer_seq", 0)),
            created=parse_time(data.get("created")),
            raw=data,
        )


def consumer_config(
    durable: str,
    subject: str | None,
    *,
    ack_wait: Duration,
    max_deliver: int,
    max_ack_pending: int,
    backoff: Sequence[Duration] | None,
    deliver_policy: DeliverPolicy | str,
    description: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The API ``ConsumerConfig`` of a durable pull consumer with explicit acks."""
    if max_ack_pending < 1:
        raise ValueError("max_ack_pending must be at least 1")
    if max_deliver == 0 or max_deliver < -1:
        raise ValueError("max_deliver must be positive, or -1 for no limit")
    config: dict[str, Any] = {
        "durable_name": durable,
        "ack_policy": "explicit",
        "deliver_policy": DeliverPolicy(deliver_policy).value,
        "replay_policy": "instant",
        "ack_wait": to_nanos(ack_wait),
        "max_deliver": max_deliver,
        "max_ack_pending": max_ack_pending,
    }
    if config["ack_wait"] <= 0:
        raise ValueError("ack_wait must be positive")
    if backoff:
        steps = [to_nanos(b) for b in backoff]
        if any(s <= 0 for s in steps):
            raise ValueError("backoff durations must be positive")
        if max_deliver != -1 and max_deliver <= len(steps):
            raise ValueError("max_deliver must be larger than the number of backoff steps")
        config["backoff"] = steps
    if subject:
        config["filter_subject"] = subject
    if description:
        config["description"] = description
    if extra:
        config.update(extra)
    return config


class _Lease:
    __slots__ = ("msg", "touched")

    def __init__(self, msg: JsMsg, now: float) -> None:
        self.msg = msg
        self.touched = now


def _status_of(nats_msg: Any) -> str | None:
    headers = nats_msg.headers
    if headers is None:
        return None
    status = headers.get(_STATUS)
    return None if status is None else str(status)


def _description_of(nats_msg: Any) -> str:
    for key, value in (nats_msg.headers or {}).items():
        if str(getattr(key, "value", key)).lower() == "description":
            lines = str(value).strip().splitlines()
            return lines[0].strip() if lines else ""
    return ""


class _PullRequest:
    """One pull request of a :class:`JetStreamSubscription`, waiting in its reply mux for
    the status that ends it (the messages themselves arrive on their own subjects)."""

    __slots__ = ("batch", "owner")

    def __init__(self, owner: JetStreamSubscription, batch: int) -> None:
        self.owner = owner
        self.batch = batch

    def resolve(self, msg: Any) -> None:
        self.owner._on_status(self, msg)

    def fail(self, error: BaseException) -> None:
        """Forgotten (expired, or a reconnect): the owner recounts what it asked for."""


class JetStreamSubscription(SubscriptionBase):
    """A durable consumer whose messages are handled on worker threads.

    Returned by :meth:`JetStream.subscribe`. By default a handler's return acks the message
    and an exception naks it (after the consumer's backoff for that delivery); on the last
    allowed delivery (``max_deliver``) a failing message is dead-lettered and terminated.
    ``unsubscribe()`` stops at once (queued messages are nak'd for prompt redelivery),
    ``drain()`` finishes what is in hand first; the durable consumer stays on the server.
    """

    def __init__(
        self,
        js: JetStream,
        *,
        subject: str,
        stream: str,
        durable: str,
        queue_group: str,
        handler: Callable[[Msg], Any],
        manual_ack: bool,
        workers: int,
        prefetch: int,
        ack_wait: float,
        backoff: tuple[float, ...],
        max_deliver: int,
        dead_letter: DeadLetterer | None,
        error_callback: ErrorCallback | None,
        consumer_request: dict[str, Any],
        conn: Connection,
    ) -> None:
        client = js.client
        handoff = MessageQueue(conn.loop, prefetch + 64, client.config.pending_bytes_limit)
        super().__init__(client, subject, queue_group, handoff)
        self.stream = stream
        self.durable = durable
        self._js = js
        self._handler = handler
        self._manual_ack = manual_ack
        self._max_deliver = max_deliver
        self._backoff = backoff
        self._dead_letter = dead_letter
        self._error_callback = error_callback
        self._consumer_request = consumer_request
        self.prefetch = prefetch
        self._threshold = max(1, prefetch // 4)
        # Leases: extend a held message after half of the shortest wait before redelivery.
        shortest = min((ack_wait, *backoff)) if backoff else ack_wait
        self._lease_after = max(shortest / 2.0, 0.05)
        self._tick = min(max(self._lease_after / 4.0, 0.02), 0.5)

        self._pulls = ReplyMux(client.new_inbox() + ".")  # pull requests, by reply token
        self._expiries: deque[tuple[float, str]] = deque()  # (forget at, reply), oldest first
        self._next_subject = js._api.subject(f"CONSUMER.MSG.NEXT.{stream}.{durable}")
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._in_hand = 0  # received, not yet through a handler
        self._requested = 0  # asked for, not yet received
        self._leases: dict[str, _Lease] = {}
        self._pause_until = 0.0
        self._failures = 0
        self._recreate = False
        self._stopping = False  # no more pulls
        self._discarding = False  # unsubscribe: nak instead of handling
        self._reconnects = client.reconnects
        self._counts = {"acked": 0, "nakked": 0, "dead_lettered": 0, "redelivered": 0}
        self._workers = workers
        self._pool: WorkerPool | None = None
        self._keeper: threading.Thread | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closed.is_set() else "active"
        return f"<JetStreamSubscription {self.stream}/{self.durable} {self.subject!r} {state}>"

    def _start(self, conn: Connection, timeout: float) -> None:
        """Subscribe the inbox, start the workers and the keeper, send the first pull."""
        self._open(
            conn,
            self._pulls.subscription_subject,
            timeout,
            queue="",
            msgs_limit=max(self.prefetch * 4, 1024),
            bytes_limit=self._host.config.pending_bytes_limit,
        )
        self._pool = WorkerPool(
            f"syncmsg-js-{self.sid}", self._queue, self._handle, self._workers, self._on_error
        )
        self._keeper = threading.Thread(
            target=self._keep, name=f"syncmsg-js-{self.sid}-keeper", daemon=True
        )
        self._keeper.start()
        self._pull()

    # ------------------------------------------------------------------ loop thread
    async def _deliver(self, nats_msgs: list[Any]) -> None:
        """The interest's pump: a batch of messages, and statuses of our pull requests."""
        for nats_msg in nats_msgs:
            if not nats_msg.reply.startswith(_ACK_PREFIX):
                if not self._pulls.dispatch_one(nats_msg):
                    self._on_status(None, nats_msg)  # a request we had already forgotten
                continue
            await self._deliver_one(nats_msg)

    async def _deliver_one(self, nats_msg: Any) -> None:
        reply = nats_msg.reply
        msg = JsMsg(nats_msg.subject, nats_msg.data, nats_msg.headers, reply, self._host, self)
        now = time.monotonic()
        with self._lock:
            self._requested = max(self._requested - 1, 0)
            self._in_hand += 1
            self._failures = 0
            self._leases[reply] = _Lease(msg, now)
            discarding = self._closed.is_set()
        if discarding:
            # Closing: give it back at once rather than let it wait for ack_wait.
            self._settle_quietly(msg, b"-NAK")
            self._release(msg, pull=False)
            return
        self.delivered += 1
        queue = self._queue
        while not queue.offer(msg):
            await queue.wait_for_room()

    def _on_status(self, request: _PullRequest | None, nats_msg: Any) -> None:
        """A status ended a pull request (loop thread)."""
        status = _status_of(nats_msg)
        if status is None or status == _HEARTBEAT:
            return
        headers = nats_msg.headers or {}
        with self._lock:
            if request is not None:
                try:
                    unfilled = int(headers.get(_PENDING_MSGS, request.batch))
                except (TypeError, ValueError):
                    unfilled = request.batch
                self._requested = max(self._requested - unfilled, 0)
            if not len(self._pulls):
                self._requested = 0
            if status not in ("408", "404"):
                self._failures += 1
                self._pause_until = time.monotonic() + min(0.25 * 2**self._failures, 5.0)
                if status == "503" or "deleted" in _description_of(nats_msg).lower():
                    self._recreate = True
            self._wake.notify()
        if status not in ("408", "404"):
            description = _description_of(nats_msg)
            if status == "503":
                description = "no responders: the consumer is missing, or electing a leader"
            log.warning(
                "syncmsg: pull from %s/%s answered %s %s",
                self.stream,
                self.durable,
                status,
                description,
            )

    # ------------------------------------------------------------------ pulling (any thread)
    def _pull(self) -> None:
        """Ask the server for as many messages as there is room for, if worth it."""
        while True:
            now = time.monotonic()
            with self._lock:
                if self._stopping or now < self._pause_until:
                    return
                room = self.prefetch - self._in_hand - self._requested
                if room < self._threshold:
                    return
                reply = self._pulls.expect(_PullRequest(self, room))
                self._expiries.append((now + _PULL_EXPIRES + _PULL_GRACE, reply))
                self._requested += room
            body = b'{"batch":%d,"expires":%d}' % (room, int(_PULL_EXPIRES * 1e9))
            try:
                conn = self._conn
                if conn is None:
                    raise ConnectionClosedError("client closed")
                conn.enqueue(pub_command(self._next_subject, reply, body, None), len(body))
            except SyncMsgError as exc:
                with self._lock:
                    if self._pulls.forget(reply):
                        self._requested = max(self._requested - room, 0)
                    self._pause_until = time.monotonic() + 1.0
                log.debug("syncmsg: pull request not sent: %s", exc)
                return

    def _release(self, msg: JsMsg, *, pull: bool = True) -> None:
        """A message left our hands (handled, or given back)."""
        with self._lock:
            self._in_hand -= 1
            self._leases.pop(msg.reply, None)
            room = self.prefetch - self._in_hand - self._requested
        if pull and room >= self._threshold:
            self._pull()

    def _bump(self, counter: str) -> None:
        with self._lock:
            self._counts[counter] += 1

    def _settled(self, msg: JsMsg) -> None:
        """Called by the message on its first ack/nak/term, from any thread."""
        with self._lock:
            self._leases.pop(msg.reply, None)

    # ------------------------------------------------------------------ worker threads
    def _handle(self, msg: Msg) -> None:
        assert isinstance(msg, JsMsg)
        try:
            if self._discarding:
                self._settle_quietly(msg, b"-NAK")
                return
            meta = msg.metadata
            if meta.num_delivered > 1:
                self._bump("redelivered")
            if self._dead_letter is not None and meta.num_delivered > self._max_deliver > 0:
                # The spare delivery: an earlier dead-letter attempt failed, or the process
                # died on the last one. Do not run the handler again.
                self._give_up(msg, "delivered more than max_deliver times")
                return
            try:
                self._handler(msg)
            except BaseException as exc:
                if not msg.is_acked:
                    self._failed(msg, exc)
                raise
            if not self._manual_ack and not msg.is_acked:
                msg.ack()
                self._bump("acked")
        finally:
            self._release(msg)

    def _failed(self, msg: JsMsg, exc: BaseException) -> None:
        delivered = msg.metadata.num_delivered
        try:
            if self._max_deliver > 0 and delivered >= self._max_deliver:
                self._give_up(msg, exc)
                return
            delay = None
            if self._backoff:
                delay = self._backoff[min(delivered - 1, len(self._backoff) - 1)]
            msg.nak(delay)
            self._bump("nakked")
        except SyncMsgError as error:
            log.warning("syncmsg: could not nak %r: %s", msg.subject, error)

    def _give_up(self, msg: JsMsg, error: BaseException | str) -> None:
        """Last delivery failed: dead-letter (if configured) and terminate."""
        try:
            self.dead_letter(msg, error)
        except DeadLetterError as exc:
            log.error("syncmsg: %s; it will be delivered once more to retry", exc)
            self._settle_quietly(msg, b"-NAK " + json.dumps({"delay": int(1e9)}).encode())

    def dead_letter(self, msg: Msg, error: BaseException | str) -> bool:
        """Publish ``msg`` to the dead-letter subject (if any) and terminate it.

        Returns True when a dead letter was published. Raises
        :class:`~syncmsg.DeadLetterError` if that publish failed; the message is then left
        unacknowledged, to come back for another try.
        """
        if not isinstance(msg, JsMsg) or msg.is_acked:
            return False
        reason = describe(error)
        published = False
        if self._dead_letter is not None:
            self._dead_letter.send(msg, error)
            published = True
            self._bump("dead_lettered")
        else:
            meta = msg.metadata
            log.error(
                "syncmsg: giving up on %r (stream %s seq %d) after %d deliveries: %s",
                msg.subject,
                meta.stream,
                meta.sequence_stream,
                meta.num_delivered,
                reason,
            )
        try:
            msg.term(reason[:200])
        except SyncMsgError as exc:
            log.warning("syncmsg: could not terminate %r: %s", msg.subject, exc)
        return published

    def _settle_quietly(self, msg: JsMsg, body: bytes) -> None:
        # Closing: if it cannot be sent, the server redelivers after ack_wait anyway.
        with contextlib.suppress(SyncMsgError):
            msg._send_terminal(body)

    def _on_error(self, exc: BaseException, msg: Msg | None) -> None:
        log.error(
            "syncmsg: handler for %s/%s raised on %r",
            self.stream,
            self.durable,
            msg.subject if msg else None,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        self._host.hooks.report_error(exc, msg, self._error_callback)

    # ------------------------------------------------------------------ keeper thread
    def _keep(self) -> None:
        while not self._closed.is_set():
            with self._wake:
                self._wake.wait(self._tick)
            if self._closed.is_set():
                return
            now = time.monotonic()
            try:
                self._extend_leases(now)
                self._expire_requests(now)
                if self._recreate and now >= self._pause_until:
                    self._recreate_consumer()
                self._pull()
            except Exception:  # never let housekeeping die
                log.exception("syncmsg: keeper of %s/%s failed", self.stream, self.durable)

    def _extend_leases(self, now: float) -> None:
        with self._lock:
            due = [
                lease for lease in self._leases.values() if now - lease.touched >= self._lease_after
            ]
            for lease in due:
                lease.touched = now
        for lease in due:
            try:
                lease.msg.in_progress()
            except SyncMsgError as exc:
                log.debug("syncmsg: in_progress failed: %s", exc)

    def _expire_requests(self, now: float) -> None:
        with self._lock:
            reconnects = self._host.reconnects
            if reconnects != self._reconnects:
                # Pull requests do not survive a server restart: ask again.
                self._reconnects = reconnects
                self._pulls.fail_all(ConnectionClosedError("reconnected"))
                self._expiries.clear()
            else:
                expiries = self._expiries
                while expiries and expiries[0][0] <= now:
                    self._pulls.forget(expiries.popleft()[1])
            if not len(self._pulls):
                self._requested = 0

    def _recreate_consumer(self) -> None:
        """Pulls found no consumer: if the server lost it (or it was deleted), make it again
        and say so; if it is there (a leader election had just ended), simply go on."""
        try:
            try:
                self._js.consumer_info(self.stream, self.durable)
            except ConsumerNotFoundError:
                pass
            else:
                with self._lock:
                    self._recreate = False
                    self._pause_until = 0.0
                return
            self._js._create_consumer(self.stream, self.durable, self._consumer_request)
        except SyncMsgError as exc:
            log.warning(
                "syncmsg: consumer %s/%s is unavailable: %s", self.stream, self.durable, exc
            )
            with self._lock:
                self._pause_until = time.monotonic() + 2.0
            return
        with self._lock:
            self._recreate = False
            self._failures = 0
            self._pause_until = 0.0
        error = ConsumerNotFoundError(
            f"consumer {self.stream}/{self.durable} had disappeared from the server; "
            "it was created again"
        )
        log.warning("syncmsg: %s", error)
        self._host.hooks.report_error(error, None, self._error_callback)

    # ------------------------------------------------------------------ any thread
    @property
    def handled(self) -> int:
        return self._pool.handled if self._pool else 0

    @property
    def failed(self) -> int:
        return self._pool.failed if self._pool else 0

    @property
    def acked(self) -> int:
        """Messages acked automatically after the handler returned."""
        return self._counts["acked"]

    @property
    def nakked(self) -> int:
        return self._counts["nakked"]

    @property
    def dead_lettered(self) -> int:
        return self._counts["dead_lettered"]

    @property
    def redelivered(self) -> int:
        """Deliveries seen that were not a message's first."""
        return self._counts["redelivered"]

    @property
    def in_hand(self) -> int:
        """Messages received and not yet through a handler (queued or running)."""
        return self._in_hand

    def stats(self) -> dict[str, Any]:
        data = super().stats()
        data.update(
            stream=self.stream,
            durable=self.durable,
            handled=self.handled,
            failed=self.failed,
            acked=self.acked,
            nakked=self.nakked,
            redelivered=self.redelivered,
            dead_lettered=self.dead_lettered,
            in_hand=self._in_hand,
            requested=self._requested,
        )
        return data

    def consumer_info(self, timeout: float | None = None) -> ConsumerInfo:
        """The server's view of this subscription's durable consumer."""
        return self._js.consumer_info(self.stream, self.durable, timeout=timeout)

    def unsubscribe(self, limit: int | None = None) -> None:
        """Stop now: queued messages are given back (nak) and not handled."""
        _no_limit(limit)
        if self._closed.is_set():
            return
        self._stop(discard=True)
        self._remove_interest(drain=False)
        self._queue.close(discard=False)  # workers nak what is left
        self._finish(self._host.config.close_timeout)

    def drain(self, timeout: float | None = None) -> None:
        """Stop pulling, handle every message in hand, then end the subscription.

        Raises :class:`~syncmsg.TimeoutError` when the handlers did not finish in time.
        """
        if self._closed.is_set():
            return
        timeout = check_timeout(timeout, self._host.config.drain_timeout)
        deadline = Deadline(timeout)
        self._stop(discard=False)
        in_worker = self._pool is not None and self._pool.in_worker()
        idle = True if in_worker else self._queue.wait_idle(timeout)
        self._remove_interest(drain=False, timeout=max(deadline.left(), 0.1))
        self._queue.close(discard=not idle)
        self._finish(deadline.left())
        if not idle:
            raise TimeoutError(
                f"drain of {self.stream}/{self.durable} did not finish in {timeout:g}s"
            )

    def _stop(self, *, discard: bool) -> None:
        with self._lock:
            self._stopping = True
            self._discarding = discard
            self._wake.notify()
        self._closed.set()

    def _finish(self, timeout: float) -> None:
        if self._pool is not None and not self._pool.join(timeout):
            log.warning(
                "syncmsg: handlers of %s/%s still busy after %.1fs",
                self.stream,
                self.durable,
                timeout,
            )
        self._forget()

    def _closed_by_client(self) -> None:
        with self._lock:
            self._stopping = True
            self._wake.notify()
        self._closed.set()
        self._queue.close(discard=True)


class PullSubscription(SubscriptionBase):
    """A durable consumer read with :meth:`fetch` on the calling thread.

    Returned by :meth:`JetStream.pull_subscribe`. Messages must be acknowledged by the
    caller (``msg.ack()``); unacknowledged ones come back after ``ack_wait``.

    Threading: :meth:`fetch` runs on the calling thread (several threads may fetch at
    once); the loop thread hands each arriving message to the oldest fetch with room.
    """

    def __init__(
        self, js: JetStream, conn: Connection, *, subject: str, stream: str, durable: str
    ) -> None:
        client = js.client
        super().__init__(client, subject, "", MessageQueue(conn.loop, 1, 1))
        self.stream = stream
        self.durable = durable
        self._js = js
        self._fetches = ReplyMux(client.new_inbox() + ".")  # fetches, by reply token
        self._next_subject = js._api.subject(f"CONSUMER.MSG.NEXT.{stream}.{durable}")

    def __repr__(self) -> str:
        state = "closed" if self._closed.is_set() else "active"
        return f"<PullSubscription {self.stream}/{self.durable} {self.subject!r} {state}>"

    def _start(self, conn: Connection, timeout: float) -> None:
        config = self._host.config
        self._open(
            conn,
            self._fetches.subscription_subject,
            timeout,
            msgs_limit=config.pending_msgs_limit,
            bytes_limit=config.pending_bytes_limit,
        )

    async def _deliver(self, nats_msgs: list[Any]) -> None:
        """The interest's pump: statuses end fetches; messages go to the oldest with room."""
        for nats_msg in nats_msgs:
            if not nats_msg.reply.startswith(_ACK_PREFIX):
                self._fetches.dispatch_one(nats_msg)  # a status, for the fetch it ends
                continue
            msg = JsMsg(
                nats_msg.subject, nats_msg.data, nats_msg.headers, nats_msg.reply, self._host
            )
            self.delivered += 1
            fetches = self._fetches.waiters()
            if not any(isinstance(f, _Fetch) and f.add(msg) for f in fetches):
                # Nobody waits for it any more (its fetch timed out): give it back at once.
                with contextlib.suppress(SyncMsgError):
                    msg._send_terminal(b"-NAK")

    def fetch(self, batch: int = 1, timeout: float | None = None) -> list[Msg]:
        """Up to ``batch`` messages, waiting at most ``timeout`` seconds for the first ones.

        Returns as soon as ``batch`` messages arrived, or when the server says no more are
        coming within ``timeout``: possibly with fewer, possibly with none (an empty list,
        not an error). Each message must be acked by the caller. Raises
        :class:`~syncmsg.NoRespondersError` when the consumer does not exist (any more),
        :class:`~syncmsg.JetStreamError` when the server refused the request (e.g. a
        ``batch`` above the consumer's limit), :class:`~syncmsg.ConnectionClosedError`
        once the subscription is closed.
        """
        if batch < 1:
            raise ValueError("batch must be at least 1")
        if self._closed.is_set():
            raise ConnectionClosedError(f"pull subscription {self.durable!r} is closed")
        wait = check_timeout(timeout, self._host.config.timeout)
        conn = self._host.connection()
        fetch = _Fetch(batch, f"{self.stream}/{self.durable}")
        # The server must end the request before we stop waiting for it.
        expires = max(wait - min(0.1, wait / 10), 0.001)
        body = b'{"batch":%d,"expires":%d}' % (batch, int(expires * 1e9))
        reply = self._fetches.expect(fetch)
        try:
            conn.enqueue(pub_command(self._next_subject, reply, body, None), len(body))
            fetch.wait(wait)
        finally:
            self._fetches.forget(reply)
            fetch.end(None)
        if fetch.error is not None and not fetch.msgs:
            raise fetch.error
        return list(fetch.msgs)

    def consumer_info(self, timeout: float | None = None) -> ConsumerInfo:
        """The server's view of this subscription's durable consumer."""
        return self._js.consumer_info(self.stream, self.durable, timeout=timeout)

    def unsubscribe(self, limit: int | None = None) -> None:
        _no_limit(limit)
        if self._closed.is_set():
            return
        self._closed.set()
        self._remove_interest(drain=False)
        self._wake_all()
        self._forget()

    def drain(self, timeout: float | None = None) -> None:
        self.unsubscribe()

    def _closed_by_client(self) -> None:
        self._closed.set()
        self._wake_all()

    def _wake_all(self) -> None:
        self._fetches.close(ConnectionClosedError(f"pull subscription {self.durable!r} closed"))


def _no_limit(limit: int | None) -> None:
    if limit:
        raise ValueError("unsubscribe(limit=) is for core subscriptions, not JetStream consumers")


class _Fetch:
    """The messages of one pull request: filled on the loop, read by the fetching thread.

    It waits in the subscription's reply mux for the status that ends it early (no
    messages, the request expired, the consumer is gone).
    """

    __slots__ = ("batch", "cond", "done", "error", "msgs", "what")

    def __init__(self, batch: int, what: str) -> None:
        self.batch = batch
        self.what = what
        self.msgs: list[Msg] = []
        self.cond = threading.Condition(threading.Lock())
        self.done = False
        self.error: SyncMsgError | None = None

    def add(self, msg: Msg) -> bool:
        with self.cond:
            if self.done:
                return False
            self.msgs.append(msg)
            if len(self.msgs) >= self.batch:
                self.done = True
                self.cond.notify_all()
            return True

    def resolve(self, nats_msg: Any) -> None:
        """A status for this request (loop thread)."""
        status = _status_of(nats_msg)
        if status is None or status == _HEARTBEAT:
            return
        if status in ("404", "408"):
            self.end(None)
        elif status == "503":
            self.end(NoRespondersError(f"no consumer {self.what}"))
        else:
            description = _description_of(nats_msg) or f"status {status}"
            code = int(status) if status.isdigit() else None
            self.end(JetStreamError(description, code=code))

    def fail(self, error: BaseException) -> None:
        self.end(error if isinstance(error, SyncMsgError) else SyncMsgError(str(error)))

    def end(self, error: SyncMsgError | None) -> None:
        with self.cond:
            self.done = True
            if error is not None:
                self.error = error
            self.cond.notify_all()

    def wait(self, timeout: float) -> None:
        deadline = Deadline(timeout)
        with self.cond:
            while not self.done and not deadline.expired:
                self.cond.wait(deadline.remaining(0.5))

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
import itertools
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from syncmsg._codec import pub_command
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
from syncmsg._subscription import ErrorCallback, _Base
from syncmsg.jetstream._api import Duration, from_nanos, to_nanos
from syncmsg.jetstream._deadletter import DeadLetterer
from syncmsg.jetstream._message import JsMsg, describe
from syncmsg.jetstream._streams import parse_time

if TYPE_CHECKING:
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
_token_ids = itertools.count(1)


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


class JetStreamSubscription(_Base):
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
        sid: int,
    ) -> None:
        client = js.client
        handoff = MessageQueue(
            client._loop().loop, prefetch + 64, client.config.pending_bytes_limit
        )
        super().__init__(client, subject, queue_group, handoff)
        self.sid = sid
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

        self._inbox = f"{client.config.inbox_prefix}.{secrets.token_hex(11)}"
        self._next_subject = js._api.subject(f"CONSUMER.MSG.NEXT.{stream}.{durable}")
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._in_hand = 0  # received, not yet through a handler
        self._requested = 0  # asked for, not yet received
        self._requests: dict[str, tuple[int, float]] = {}  # token -> (batch, forget at)
        self._leases: dict[str, _Lease] = {}
        self._pause_until = 0.0
        self._failures = 0
        self._recreate = False
        self._stopping = False  # no more pulls
        self._discarding = False  # unsubscribe: nak instead of handling
        self._reconnects = client._reconnects
        self._counts = {"acked": 0, "nakked": 0, "dead_lettered": 0, "redelivered": 0}
        self._pool = WorkerPool(f"syncmsg-js-{sid}", handoff, self._handle, workers, self._on_error)
        self._keeper = threading.Thread(
            target=self._keep, name=f"syncmsg-js-{sid}-keeper", daemon=True
        )

    def __repr__(self) -> str:
        state = "closed" if self._closed.is_set() else "active"
        return f"<JetStreamSubscription {self.stream}/{self.durable} {self.subject!r} {state}>"

    def _start(self, timeout: float) -> None:
        client = self._client
        conn = client._live()
        limit = max(self.prefetch * 4, 1024)
        self._nats_sub = client._loop().call(
            conn.subscribe(
                self._inbox + ".*",
                "",
                self._deliver,
                limit,
                client.config.pending_bytes_limit,
                timeout,
            ),
            timeout,
            what=f"subscribe {self.stream}/{self.durable}",
        )
        self._keeper.start()
        self._pull()

    # ------------------------------------------------------------------ loop thread
    async def _deliver(self, arrived: Any) -> None:
        """The connection's callback: one nats-py message, or a batch of them (a list)."""
        for nats_msg in arrived if isinstance(arrived, list) else (arrived,):
            await self._deliver_one(nats_msg)

    async def _deliver_one(self, nats_msg: Any) -> None:
        reply = nats_msg.reply
        if not reply.startswith(_ACK_PREFIX):
            self._on_status(nats_msg)
            return
        msg = JsMsg(nats_msg.subject, nats_msg.data, nats_msg.headers, reply, self._client, self)
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

    def _on_status(self, nats_msg: Any) -> None:
        status = _status_of(nats_msg)
        if status is None or status == _HEARTBEAT:
            return
        token = nats_msg.subject.rpartition(".")[2]
        headers = nats_msg.headers or {}
        with self._lock:
            request = self._requests.pop(token, None)
            if request is not None:
                try:
                    unfilled = int(headers.get(_PENDING_MSGS, request[0]))
                except (TypeError, ValueError):
                    unfilled = request[0]
                self._requested = max(self._requested - unfilled, 0)
            if not self._requests:
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
                token = str(next(_token_ids))
                self._requests[token] = (room, now + _PULL_EXPIRES + _PULL_GRACE)
                self._requested += room
            body = b'{"batch":%d,"expires":%d}' % (room, int(_PULL_EXPIRES * 1e9))
            try:
                conn = self._client._conn
                if conn is None:
                    raise ConnectionClosedError("client closed")
                conn.enqueue(pub_command(self._next_subject, f"{self._inbox}.{token}", body, None))
            except SyncMsgError as exc:
                with self._lock:
                    if self._requests.pop(token, None) is not None:
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
        self._client._report_error(exc, msg, self._error_callback)

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
            reconnected = self._client._reconnects != self._reconnects
            if reconnected:
                # Pull requests do not survive a server restart: ask again.
                self._reconnects = self._client._reconnects
                self._requests.clear()
            else:
                for token, (_, forget_at) in list(self._requests.items()):
                    if forget_at <= now:
                        del self._requests[token]
            if not self._requests:
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
        self._client._report_error(error, None, self._error_callback)

    # ------------------------------------------------------------------ any thread
    @property
    def handled(self) -> int:
        return self._pool.handled

    @property
    def failed(self) -> int:
        return self._pool.failed

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

    def unsubscribe(self) -> None:
        """Stop now: queued messages are given back (nak) and not handled."""
        if self._closed.is_set():
            return
        self._stop(discard=True)
        self._client._remove_interest(self, drain=False)
        self._queue.close(discard=False)  # workers nak what is left
        self._finish(self._client.config.close_timeout)

    def drain(self, timeout: float | None = None) -> None:
        """Stop pulling, handle every message in hand, then end the subscription.

        Raises :class:`~syncmsg.TimeoutError` when the handlers did not finish in time.
        """
        if self._closed.is_set():
            return
        timeout = self._client._timeout(timeout, self._client.config.drain_timeout)
        deadline = time.monotonic() + timeout
        self._stop(discard=False)
        idle = self._queue.wait_idle(timeout) if not self._pool.in_worker() else True
        self._client._remove_interest(
            self, drain=False, timeout=max(deadline - time.monotonic(), 0.1)
        )
        self._queue.close(discard=not idle)
        self._finish(max(deadline - time.monotonic(), 0.0))
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
        if not self._pool.join(timeout):
            log.warning(
                "syncmsg: handlers of %s/%s still busy after %.1fs",
                self.stream,
                self.durable,
                timeout,
            )
        self._client._forget(self)

    def _closed_by_client(self) -> None:
        with self._lock:
            self._stopping = True
            self._wake.notify()
        self._closed.set()
        self._queue.close(discard=True)


class PullSubscription(_Base):
    """A durable consumer read with :meth:`fetch` on the calling thread.

    Returned by :meth:`JetStream.pull_subscribe`. Messages must be acknowledged by the
    caller (``msg.ack()``); unacknowledged ones come back after ``ack_wait``.
    """

    def __init__(self, js: JetStream, *, subject: str, stream: str, durable: str, sid: int) -> None:
        client = js.client
        super().__init__(client, subject, "", MessageQueue(client._loop().loop, 1, 1))
        self.sid = sid
        self.stream = stream
        self.durable = durable
        self._js = js
        self._inbox = f"{client.config.inbox_prefix}.{secrets.token_hex(11)}"
        self._next_subject = js._api.subject(f"CONSUMER.MSG.NEXT.{stream}.{durable}")
        self._lock = threading.Lock()
        self._fetches: dict[str, _Fetch] = {}

    def __repr__(self) -> str:
        state = "closed" if self._closed.is_set() else "active"
        return f"<PullSubscription {self.stream}/{self.durable} {self.subject!r} {state}>"

    def _start(self, timeout: float) -> None:
        client = self._client
        conn = client._live()
        self._nats_sub = client._loop().call(
            conn.subscribe(
                self._inbox + ".*",
                "",
                self._deliver,
                client.config.pending_msgs_limit,
                client.config.pending_bytes_limit,
                timeout,
            ),
            timeout,
            what=f"pull_subscribe {self.stream}/{self.durable}",
        )

    async def _deliver(self, arrived: Any) -> None:
        """The connection's callback: one nats-py message, or a batch of them (a list)."""
        for nats_msg in arrived if isinstance(arrived, list) else (arrived,):
            self._deliver_one(nats_msg)

    def _deliver_one(self, nats_msg: Any) -> None:
        """On the loop: route the message to the fetch that asked for it."""
        reply = nats_msg.reply
        if not reply.startswith(_ACK_PREFIX):
            # Statuses come to inbox.<token>: they end that fetch's request.
            with self._lock:
                fetch = self._fetches.get(nats_msg.subject.rpartition(".")[2])
            status = _status_of(nats_msg)
            if fetch is not None and status is not None and status != _HEARTBEAT:
                if status in ("404", "408"):
                    fetch.end(None)
                elif status == "503":
                    fetch.end(NoRespondersError(f"no consumer {self.stream}/{self.durable}"))
                else:
                    description = _description_of(nats_msg) or f"status {status}"
                    code = int(status) if status.isdigit() else None
                    fetch.end(JetStreamError(description, code=code))
            return
        # Data messages keep their own subject: they go to the oldest fetch with room.
        msg = JsMsg(nats_msg.subject, nats_msg.data, nats_msg.headers, reply, self._client)
        self.delivered += 1
        with self._lock:
            fetches = list(self._fetches.values())
        if not any(fetch.add(msg) for fetch in fetches):
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
        client = self._client
        wait = client._timeout(timeout)
        conn = client._live()
        token = str(next(_token_ids))
        fetch = _Fetch(batch)
        # The server must end the request before we stop waiting for it.
        expires = max(wait - min(0.1, wait / 10), 0.001)
        body = b'{"batch":%d,"expires":%d}' % (batch, int(expires * 1e9))
        with self._lock:
            self._fetches[token] = fetch
        try:
            conn.enqueue(pub_command(self._next_subject, f"{self._inbox}.{token}", body, None))
            fetch.wait(wait)
        finally:
            with self._lock:
                self._fetches.pop(token, None)
            fetch.end(None)
        if fetch.error is not None and not fetch.msgs:
            raise fetch.error
        return list(fetch.msgs)

    def consumer_info(self, timeout: float | None = None) -> ConsumerInfo:
        """The server's view of this subscription's durable consumer."""
        return self._js.consumer_info(self.stream, self.durable, timeout=timeout)

    def unsubscribe(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._client._remove_interest(self, drain=False)
        self._wake_all()
        self._client._forget(self)

    def drain(self, timeout: float | None = None) -> None:
        self.unsubscribe()

    def _closed_by_client(self) -> None:
        self._closed.set()
        self._wake_all()

    def _wake_all(self) -> None:
        with self._lock:
            fetches = list(self._fetches.values())
        for fetch in fetches:
            fetch.end(ConnectionClosedError(f"pull subscription {self.durable!r} closed"))


class _Fetch:
    """The messages of one pull request, filled on the loop, read by the fetching thread."""

    __slots__ = ("batch", "cond", "done", "error", "msgs")

    def __init__(self, batch: int) -> None:
        self.batch = batch
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

    def end(self, error: SyncMsgError | None) -> None:
        with self.cond:
            self.done = True
            if error is not None:
                self.error = error
            self.cond.notify_all()

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.done:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self.cond.wait(min(left, 0.5))

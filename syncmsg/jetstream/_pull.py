"""Pull requests: the protocol of pull consumers, continuous (:class:`Puller`) or one fetch
at a time (:class:`PullSubscription`).

Threading:

* A pull request is a ``PUB`` to ``CONSUMER.MSG.NEXT.<stream>.<consumer>`` with a reply
  subject of the subscription's own inbox, appended to the outbound queue by whichever
  thread sends it (a worker, a ``fetch`` caller, the keeper thread); no round trip to the
  loop.
* The event-loop thread reads the inbox: messages go to their subscription; a status
  (``404`` no messages, ``408`` expired, ``409`` the server ended the request, ``503`` no
  consumer, ``100`` an idle heartbeat) goes to the pull request it ends, found in the
  subscription's reply mux by its random token.
* The keeper thread ``syncmsg-js-<sid>-keeper`` forgets pull requests the server never
  answered (they die with a server restart) and notices heartbeats that stopped.

A pull request asks the server for ``batch`` messages within ``expires``; the idle heartbeat,
when asked for, is a ``100`` status the server sends while a request is open and has nothing
to deliver, so a silent server can be told from an idle stream.

Priority groups (nats-server 2.11, :class:`PullGroup`): a pull request of a consumer with
priority groups names its ``group``. For an ``overflow`` consumer it may say
``min_pending`` / ``min_ack_pending``: serve me only when the backlog (or the unacknowledged
messages) reach that many. For a ``pinned_client`` consumer the server pins one client: the
messages it delivers to it carry a ``Nats-Pin-Id`` header, which that client's next pull
requests repeat (``"id"``); the others' requests wait. When the pinned client stops pulling
for the consumer's ``pinned_ttl`` (or is unpinned), the server pins the next request without
an id, and answers a request with the old id with a ``423`` status: the client forgets its
pin and pulls like the others.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from syncmsg import _instrumentation
from syncmsg._codec import pub_command
from syncmsg._deadline import Deadline, check_timeout
from syncmsg._dispatch import MessageQueue
from syncmsg._errors import (
    ConnectionClosedError,
    JetStreamError,
    NoRespondersError,
    SyncMsgError,
)
from syncmsg._msg import Msg
from syncmsg._replies import ReplyMux
from syncmsg._subscription import SubscriptionBase
from syncmsg.jetstream._flow import Flow
from syncmsg.jetstream._message import JsMsg
from syncmsg.jetstream._models import ConsumerInfo, check_group_name, iter_items

if TYPE_CHECKING:
    from syncmsg._connection import Connection
    from syncmsg.jetstream._context import JetStream

__all__ = [
    "ACK_PREFIX",
    "PIN_ID",
    "PullGroup",
    "PullSubscription",
    "Puller",
    "description_of",
    "no_limit",
    "status_of",
]

log = logging.getLogger("syncmsg.jetstream")

ACK_PREFIX = "$JS.ACK."
STATUS = "Status"
PENDING_MSGS = "Nats-Pending-Messages"
#: Statuses of a pull request: an idle heartbeat, and the two normal ends.
HEARTBEAT = "100"
NO_MESSAGES = "404"
EXPIRED = "408"
#: A pull request with a pin id that is not (or no longer) the pinned client's.
PIN_MISMATCH = "423"
NORMAL_ENDS = (NO_MESSAGES, EXPIRED)
#: The header of a pinned client's messages, and its pull requests' ``id``.
PIN_ID = "Nats-Pin-Id"
#: A pull request the server did not end is forgotten this long after it expired.
GRACE = 2.0
_NANOS = 1_000_000_000


def status_of(nats_msg: Any) -> str | None:
    headers = nats_msg.headers
    if headers is None:
        return None
    status = headers.get(STATUS)
    return None if status is None else str(status)


def description_of(nats_msg: Any) -> str:
    for key, value in iter_items(nats_msg.headers):
        if key.lower() == "description":
            lines = value.strip().splitlines()
            return lines[0].strip() if lines else ""
    return ""


def no_limit(limit: int | None) -> None:
    if limit:
        raise ValueError("unsubscribe(limit=) is for core subscriptions, not JetStream consumers")


def pin_of(nats_msg: Any) -> str | None:
    """The ``Nats-Pin-Id`` a message was delivered with (pinned_client consumers)."""
    headers = nats_msg.headers
    if not headers:
        return None
    pin = headers.get(PIN_ID)
    return None if pin is None else str(pin)


@dataclasses.dataclass(frozen=True)
class PullGroup:
    """What pull requests say about the consumer's priority groups: the group pulled as,
    whether the consumer pins a client, and an overflow request's thresholds (0: none)."""

    group: str
    pinned: bool = False
    min_pending: int = 0
    min_ack_pending: int = 0

    def options(self, pin_id: str | None) -> bytes:
        """The pull request's JSON members for this group (each after a comma)."""
        text = f',"group":{json.dumps(self.group)}'
        if self.min_pending:
            text += f',"min_pending":{self.min_pending}'
        if self.min_ack_pending:
            text += f',"min_ack_pending":{self.min_ack_pending}'
        if pin_id:
            text += f',"id":{json.dumps(pin_id)}'
        return text.encode()


# ===================================================================== continuous pulling


class _PullRequest:
    """One pull request of a :class:`Puller`, waiting in its reply mux for the status that
    ends it (the messages themselves arrive on their own subjects)."""

    __slots__ = ("batch", "puller")

    def __init__(self, puller: Puller, batch: int) -> None:
        self.puller = puller
        self.batch = batch

    def resolve(self, msg: Any) -> None:
        self.puller.on_status(self, msg)

    def fail(self, error: BaseException) -> None:
        """Forgotten (expired, or a reconnect): the puller recounts what it asked for."""


#: ``on_trouble(status, description)``: a pull request ended otherwise than normally
#: (the loop thread; only set flags there).
Trouble = Callable[[str, str], None]


class Puller:
    """Keeps a consumer's pull requests going, as large as the :class:`Flow` allows."""

    def __init__(
        self,
        flow: Flow,
        connection: Callable[[], Connection | None],
        on_trouble: Trouble,
        *,
        expires: float,
        heartbeat: float | None = None,
        inbox: str,
        group: PullGroup | None = None,
    ) -> None:
        self.flow = flow
        self.mux = ReplyMux(inbox + ".")  # pull requests, by reply token
        self.next_subject = ""  # no consumer yet: nothing is sent
        self.expires = expires
        self.heartbeat = heartbeat
        self.group = group
        #: The pin the server gave us (a pinned_client consumer), sent with each request.
        self.pin_id: str | None = None
        self.last_activity = time.monotonic()
        #: Called (on the loop thread) when an open pull request gets an idle heartbeat:
        #: the server has nothing more to deliver to the consumer right now.
        self.on_idle: Callable[[], None] | None = None
        self._connection = connection
        self._on_trouble = on_trouble
        self._expiries: deque[tuple[float, str]] = deque()  # (forget at, reply), oldest first
        options = b'"expires":%d' % int(expires * _NANOS)
        if heartbeat:
            options += b',"idle_heartbeat":%d' % int(heartbeat * _NANOS)
        self._options = options

    @property
    def subscription_subject(self) -> str:
        return self.mux.subscription_subject

    @property
    def outstanding(self) -> int:
        """Pull requests waiting for their end."""
        return len(self.mux)

    # -- any thread ----------------------------------------------------------------------
    def pull(self) -> None:
        """Ask the server for as many messages as there is room for, if worth it."""
        flow = self.flow
        mux = self.mux
        while True:
            now = time.monotonic()
            with flow.lock:
                subject = self.next_subject
                if flow.stopped or now < flow.pause_until or not subject:
                    return
                room = flow.prefetch - flow.in_hand - flow.requested
                if room < flow.threshold:
                    return
                if not len(mux):
                    self.last_activity = now  # heartbeats are due from now on
                reply = mux.expect(_PullRequest(self, room))
                self._expiries.append((now + self.expires + GRACE, reply))
                flow.requested += room
            body = b'{"batch":%d,%s%s}' % (
                room,
                self._options,
                b"" if self.group is None else self.group.options(self.pin_id),
            )
            try:
                conn = self._connection()
                if conn is None:
                    raise ConnectionClosedError("client closed")
                conn.enqueue(pub_command(subject, reply, body, None), len(body))
            except SyncMsgError as exc:
                with flow.lock:
                    if mux.forget(reply):
                        flow.requested = max(flow.requested - room, 0)
                    flow.pause_until = time.monotonic() + 1.0
                log.debug("syncmsg: pull request not sent: %s", exc)
                return

    def forget_all(self) -> None:
        """Forget every pull request (a reconnect: they did not survive, or a new consumer)."""
        self.mux.fail_all(ConnectionClosedError("pull requests forgotten"))
        self._expiries.clear()
        self.flow.forget_requests()

    # -- loop thread ---------------------------------------------------------------------
    def dispatch(self, nats_msg: Any) -> None:
        """A status on the inbox: it ends (or keeps alive) one of our pull requests."""
        if not self.mux.dispatch_one(nats_msg):
            self.on_status(None, nats_msg)  # a request we had already forgotten

    def pinned(self, nats_msgs: list[Any]) -> None:
        """Messages arrived: remember the pin they came with (loop thread)."""
        pin = pin_of(nats_msgs[-1])
        if pin is not None and pin != self.pin_id:
            if self.pin_id is None:
                log.info("syncmsg: pinned in priority group %r", self.group and self.group.group)
            self.pin_id = pin

    def on_status(self, request: _PullRequest | None, nats_msg: Any) -> None:
        status = status_of(nats_msg)
        if status == HEARTBEAT and request is not None and self.on_idle is not None:
            self.on_idle()
        if status is None or status == HEARTBEAT:
            return
        if status == PIN_MISMATCH:
            # Another client is pinned now (we stopped pulling for pinned_ttl, or were
            # unpinned): forget our pin, and pull like the others.
            if self.pin_id is not None:
                log.info(
                    "syncmsg: no longer pinned in priority group %r",
                    self.group and self.group.group,
                )
            self.pin_id = None
        flow = self.flow
        with flow.lock:
            if request is not None:
                try:
                    unfilled = int(nats_msg.headers.get(PENDING_MSGS, request.batch))
                except (TypeError, ValueError):
                    unfilled = request.batch
                flow.requested = max(flow.requested - unfilled, 0)
            if not len(self.mux):
                flow.requested = 0
        # A status for a request already forgotten (a reconnect, the consumer replaced)
        # says nothing about the requests now open: an ordered consumer that deleted its
        # consumer hears "409 Consumer Deleted" for the old requests after the new one
        # exists, and must not replace that one too.
        if request is not None and status not in NORMAL_ENDS and status != PIN_MISMATCH:
            self._on_trouble(status, description_of(nats_msg))

    # -- the keeper thread ---------------------------------------------------------------
    def expire(self, now: float) -> None:
        """Forget pull requests the server should have ended by now."""
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            self.mux.forget(expiries.popleft()[1])
        if not len(self.mux):
            self.flow.forget_requests()

    def silent(self, now: float) -> bool:
        """True when heartbeats were asked for and nothing came for two of them."""
        heartbeat = self.heartbeat
        return bool(heartbeat and len(self.mux) and now - self.last_activity > 2 * heartbeat + 1.0)


# ===================================================================== one fetch at a time


class PullSubscription(SubscriptionBase):
    """A pull consumer read with :meth:`fetch` on the calling thread.

    Returned by :meth:`JetStream.pull_subscribe`. Messages must be acknowledged by the
    caller (``msg.ack()``); unacknowledged ones come back after ``ack_wait``. An ephemeral
    consumer (no ``durable``) is deleted by :meth:`unsubscribe` (and by the server after
    its inactive threshold otherwise).

    With a priority group (``js.pull_subscribe(..., group=...)``) every fetch pulls as a
    member of that group; :attr:`pin_id` is the pin the server gave this subscription in a
    ``pinned_client`` consumer (None when another client is pinned).

    Threading: :meth:`fetch` runs on the calling thread (several threads may fetch at
    once); the loop thread hands each arriving message to the oldest fetch with room.
    """

    def __init__(
        self,
        js: JetStream,
        conn: Connection,
        *,
        subject: str,
        stream: str,
        name: str,
        durable: bool,
        group: PullGroup | None = None,
    ) -> None:
        client = js.client
        super().__init__(client, subject, "", MessageQueue(conn.loop, 1, 1))
        self.stream = stream
        self.name = name
        self.durable = name if durable else None
        self._js = js
        self._fetches = ReplyMux(client.new_inbox() + ".")  # fetches, by reply token
        self._next_subject = js._api.subject(f"CONSUMER.MSG.NEXT.{stream}.{name}")
        self.group = group
        self._pins: dict[str, str] = {}  # priority group -> the pin the server gave us

    @property
    def pin_id(self) -> str | None:
        """The pin of this subscription's group (pinned_client consumers), or None."""
        return None if self.group is None else self._pins.get(self.group.group)

    def __repr__(self) -> str:
        state = "closed" if self._closed.is_set() else "active"
        return f"<PullSubscription {self.stream}/{self.name} {self.subject!r} {state}>"

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
            if not nats_msg.reply.startswith(ACK_PREFIX):
                self._fetches.dispatch_one(nats_msg)  # a status, for the fetch it ends
                continue
            msg = JsMsg(
                nats_msg.subject, nats_msg.data, nats_msg.headers, nats_msg.reply, self._host
            )
            self.delivered += 1
            taker = next(
                (f for f in self._fetches.waiters() if isinstance(f, _Fetch) and f.add(msg)), None
            )
            if taker is None:
                # Nobody waits for it any more (its fetch timed out): give it back at once.
                with contextlib.suppress(SyncMsgError):
                    msg._send_terminal(b"-NAK")
            elif taker.group is not None:
                pin = pin_of(nats_msg)
                if pin is not None:
                    self._pins[taker.group] = pin

    def fetch(
        self,
        batch: int = 1,
        timeout: float | None = None,
        *,
        group: str | None = None,
        min_pending: int | None = None,
        min_ack_pending: int | None = None,
    ) -> list[Msg]:
        """Up to ``batch`` messages, waiting at most ``timeout`` seconds for the first ones.

        Returns as soon as ``batch`` messages arrived, or when the server says no more are
        coming within ``timeout``: possibly with fewer, possibly with none (an empty list,
        not an error). Each message must be acked by the caller. Raises
        :class:`~syncmsg.NoRespondersError` when the consumer does not exist (any more),
        :class:`~syncmsg.JetStreamError` when the server refused the request (e.g. a
        ``batch`` above the consumer's limit, or a missing priority group),
        :class:`~syncmsg.ConnectionClosedError` once the subscription is closed.

        Priority groups: ``group`` pulls as a member of that group (default: the
        subscription's); for an ``overflow`` consumer ``min_pending`` / ``min_ack_pending``
        (default: the subscription's) make the server answer only once the consumer's
        backlog, or its unacknowledged messages, reach that many. In a ``pinned_client``
        consumer a fetch of a client that is not pinned waits (and returns ``[]``) while
        another is; a fetch whose pin was taken away returns what it has and forgets the
        pin, so that the next one can be pinned again.
        """
        if batch < 1:
            raise ValueError("batch must be at least 1")
        if self._closed.is_set():
            raise ConnectionClosedError(f"pull subscription {self.name!r} is closed")
        wait = check_timeout(timeout, self._host.config.timeout)
        pull = self._pull_group(group, min_pending, min_ack_pending)
        tracing = _instrumentation.active
        started = time.time_ns() if tracing is not None else 0
        conn = self._host.connection()
        fetch = _Fetch(batch, f"{self.stream}/{self.name}", None if pull is None else pull.group)
        # The server must end the request before we stop waiting for it.
        expires = max(wait - min(0.1, wait / 10), 0.001)
        body = b'{"batch":%d,"expires":%d' % (batch, int(expires * 1e9))
        if pull is not None:
            body += pull.options(self._pins.get(pull.group))
        body += b"}"
        reply = self._fetches.expect(fetch)
        try:
            conn.enqueue(pub_command(self._next_subject, reply, body, None), len(body))
            fetch.wait(wait)
        finally:
            self._fetches.forget(reply)
            fetch.end(None)
        if fetch.pin_lost and pull is not None:
            self._pins.pop(pull.group, None)
        if fetch.error is not None and not fetch.msgs:
            raise fetch.error
        if tracing is not None and fetch.msgs:
            tracing.received(self, fetch.msgs, started)
        return list(fetch.msgs)

    def _pull_group(
        self, group: str | None, min_pending: int | None, min_ack_pending: int | None
    ) -> PullGroup | None:
        """The priority group part of one fetch: the subscription's, with these changes."""
        default = self.group
        if group is None and min_pending is None and min_ack_pending is None:
            return default
        if group is None and default is None:
            raise ValueError("min_pending and min_ack_pending need a priority group (group=)")
        for what, value in (("min_pending", min_pending), ("min_ack_pending", min_ack_pending)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise ValueError(f"{what} must be a non-negative integer")
        if group is not None:
            check_group_name(group)
        base = default or PullGroup(group or "")
        return dataclasses.replace(
            base,
            group=group or base.group,
            min_pending=base.min_pending if min_pending is None else min_pending,
            min_ack_pending=base.min_ack_pending if min_ack_pending is None else min_ack_pending,
        )

    def consumer_info(self, timeout: float | None = None) -> ConsumerInfo:
        """The server's view of this subscription's consumer."""
        return self._js.consumer_info(self.stream, self.name, timeout=timeout)

    def unsubscribe(self, limit: int | None = None) -> None:
        """Stop; an ephemeral consumer is deleted (a durable one stays on the server)."""
        no_limit(limit)
        if self._closed.is_set():
            return
        self._closed.set()
        self._remove_interest(drain=False)
        self._wake_all()
        self._forget()
        if self.durable is None:
            self._js._delete_quietly(self.stream, self.name)

    def drain(self, timeout: float | None = None) -> None:
        self.unsubscribe()

    def _closed_by_client(self) -> None:
        self._closed.set()
        self._wake_all()

    def _wake_all(self) -> None:
        self._fetches.close(ConnectionClosedError(f"pull subscription {self.name!r} closed"))


class _Fetch:
    """The messages of one pull request: filled on the loop, read by the fetching thread.

    It waits in the subscription's reply mux for the status that ends it early (no
    messages, the request expired, the consumer is gone).
    """

    __slots__ = ("batch", "cond", "done", "error", "group", "msgs", "pin_lost", "what")

    def __init__(self, batch: int, what: str, group: str | None = None) -> None:
        self.batch = batch
        self.what = what
        self.group = group
        self.pin_lost = False
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
        status = status_of(nats_msg)
        if status is None or status == HEARTBEAT:
            return
        if status in NORMAL_ENDS:
            self.end(None)
        elif status == PIN_MISMATCH:
            self.pin_lost = True
            self.end(None)
        elif status == "503":
            self.end(NoRespondersError(f"no consumer {self.what}"))
        else:
            description = description_of(nats_msg) or f"status {status}"
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

"""Consumers that pull continuously: handlers on worker threads (with the ack policy), or
``next_msg`` on the caller's thread.

Threading, for every :class:`PulledSubscription` (``js.subscribe``, ``js.subscribe_sync``
and the ordered consumers of :mod:`syncmsg.jetstream._ordered`):

* **The loop thread** runs :meth:`PulledSubscription._deliver` for each batch nats-py reads
  from the subscription's private inbox: it wraps each message, counts it
  (:mod:`~syncmsg.jetstream._flow`), leases it (:mod:`~syncmsg.jetstream._leaser`), and
  hands it to a bounded :class:`~syncmsg._dispatch.MessageQueue`; statuses go to the
  pull requests they end (:mod:`~syncmsg.jetstream._pull`). Nothing else happens there.
* **Worker threads** ``syncmsg-js-<sid>-<i>`` (subscriptions with a handler) run the
  handler, then, for :class:`JetStreamSubscription`, ack (on return), nak with the
  consumer's backoff (on an exception) or dead-letter (on the last allowed delivery,
  :mod:`~syncmsg.jetstream._deadletter`). When a worker frees a slot it may send the next
  pull request itself: a ``PUB`` appended to the outbound queue, no round trip to the loop.
  Without a handler, the thread that calls ``next_msg``/``fetch`` takes the messages.
* **The keeper thread** ``syncmsg-js-<sid>-keeper`` extends leases, expires pull requests
  the server never answered (a restart), notices reconnects, and re-creates the consumer
  if the server lost it.

An ephemeral consumer (no ``durable``) has a name of our own and an inactive threshold,
so the server removes it once nobody pulls from it; ``unsubscribe()`` and ``drain()``
delete it at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from syncmsg import _instrumentation
from syncmsg._deadline import Deadline, check_timeout
from syncmsg._dispatch import MessageQueue, WorkerPool
from syncmsg._errors import (
    ConnectionClosedError,
    ConsumerNotFoundError,
    DeadLetterError,
    SyncMsgError,
    TimeoutError,
)
from syncmsg._msg import Msg
from syncmsg._subscription import SubscriptionBase
from syncmsg._types import ErrorCallback
from syncmsg.jetstream._deadletter import DeadLetterer
from syncmsg.jetstream._flow import Flow
from syncmsg.jetstream._leaser import Leaser
from syncmsg.jetstream._message import JsMsg, describe
from syncmsg.jetstream._models import ConsumerConfig, ConsumerInfo
from syncmsg.jetstream._pull import ACK_PREFIX, Puller, PullGroup, no_limit

if TYPE_CHECKING:
    from syncmsg._connection import Connection
    from syncmsg.jetstream._context import JetStream

__all__ = [
    "JetStreamSubscription",
    "JetStreamSyncSubscription",
    "PulledSubscription",
    "SyncReads",
]

log = logging.getLogger("syncmsg.jetstream")

#: A pull request lives this long at the server (seconds); the client forgets it a little
#: later (``_pull.GRACE``) if the server never ended it.
PULL_EXPIRES = 5.0
#: How often the keeper looks around when there is no lease to keep (seconds).
KEEPER_TICK = 0.5


class PulledSubscription(SubscriptionBase):
    """What every continuously pulling subscription shares: the consumer, its pull
    requests and flow control, the keeper thread, and handlers or ``next_msg``."""

    def __init__(
        self,
        js: JetStream,
        *,
        subject: str,
        stream: str,
        name: str,
        durable: bool,
        config: ConsumerConfig,
        prefetch: int,
        conn: Connection,
        handler: Callable[[Msg], Any] | None = None,
        workers: int = 1,
        leaser: Leaser | None = None,
        queue_group: str = "",
        error_callback: ErrorCallback | None = None,
        heartbeat: float | None = None,
        expires: float = PULL_EXPIRES,
        pull_group: PullGroup | None = None,
    ) -> None:
        client = js.client
        handoff = MessageQueue(conn.loop, prefetch + 64, client.config.pending_bytes_limit)
        super().__init__(client, subject, queue_group, handoff)
        self.stream = stream
        self.name = name
        self.durable = name if durable else None
        self.prefetch = prefetch
        self._js = js
        self._consumer_config = config
        self._handler = handler
        self._workers = workers
        self._error_callback = error_callback
        self._flow = Flow(prefetch)
        self._leaser = leaser
        self._puller = Puller(
            self._flow,
            lambda: self._conn,
            self._on_trouble,
            expires=expires,
            heartbeat=heartbeat,
            inbox=client.new_inbox(),
            group=pull_group,
        )
        self._puller.next_subject = self._next_subject(name)
        self._tick = (
            KEEPER_TICK if leaser is None else min(max(leaser.lease_after / 4.0, 0.02), KEEPER_TICK)
        )
        self._wake = threading.Condition(threading.Lock())  # the keeper's sleep
        self._recreate = False
        self._discarding = False  # unsubscribe: give back instead of handling
        self._client_closing = False
        self._reconnects = client.reconnects
        self._pool: WorkerPool | None = None
        self._keeper: threading.Thread | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closed.is_set() else "active"
        return f"<{type(self).__name__} {self.stream}/{self.name} {self.subject!r} {state}>"

    def _next_subject(self, name: str) -> str:
        return self._js._api.subject(f"CONSUMER.MSG.NEXT.{self.stream}.{name}")

    def _start(self, conn: Connection, timeout: float) -> None:
        """Subscribe the inbox, start the workers (if any) and the keeper, send the first
        pull (the caller's thread)."""
        self._open(
            conn,
            self._puller.subscription_subject,
            timeout,
            queue="",
            msgs_limit=max(self.prefetch * 4, 1024),
            bytes_limit=self._host.config.pending_bytes_limit,
        )
        if self._handler is not None:
            handle: Callable[[Msg], Any] = self._handle
            tracing = _instrumentation.active
            if tracing is not None:  # a process span around the handler and its ack
                handle = tracing.js_process(self, handle)
            self._pool = WorkerPool(
                f"syncmsg-js-{self.sid}", self._queue, handle, self._workers, self._on_error
            )
        self._keeper = threading.Thread(
            target=self._keep, name=f"syncmsg-js-{self.sid}-keeper", daemon=True
        )
        self._keeper.start()
        self._puller.pull()

    # ------------------------------------------------------------------ loop thread
    async def _deliver(self, nats_msgs: list[Any]) -> None:
        """The interest's pump: a batch of messages, and statuses of our pull requests.

        The batch is counted, leased and queued in one lock round each, not per message.
        """
        puller = self._puller
        now = time.monotonic()
        puller.last_activity = now
        arrived: list[Any] = []
        for nats_msg in nats_msgs:
            if nats_msg.reply.startswith(ACK_PREFIX):
                arrived.append(nats_msg)
            else:
                puller.dispatch(nats_msg)
        if not arrived:
            return
        if puller.group is not None and puller.group.pinned:
            puller.pinned(arrived)
        msgs = self._accept(arrived)
        if not msgs:
            return
        self._flow.received(len(msgs))
        if self._leaser is not None:
            self._leaser.add(msgs, now)
        if self._closed.is_set():
            # Closing: give them back at once rather than let them wait for ack_wait.
            for msg in msgs:
                self._give_back(msg)
                self._release(msg, pull=False)
            return
        self.delivered += len(msgs)
        queue = self._queue
        batch: list[Msg] = list(msgs)
        start = queue.offer_batch(batch)
        while start < len(batch):
            await queue.wait_for_room()
            start = queue.offer_batch(batch, start)

    def _accept(self, nats_msgs: list[Any]) -> list[JsMsg]:
        """Wrap the messages of a batch (leaving out any that are not for us after all)."""
        host = self._host
        return [JsMsg(m.subject, m.data, m.headers, m.reply, host, self) for m in nats_msgs]

    def _on_trouble(self, status: str, description: str) -> None:
        """A pull request failed (the loop thread): pause, and look for the consumer if
        the server says it is gone."""
        self._flow.failed()
        if status == "503" or "deleted" in description.lower():
            self._recreate = True
        with self._wake:
            self._wake.notify()
        if status == "503":
            description = "no responders: the consumer is missing, or electing a leader"
        log.warning(
            "syncmsg: pull from %s/%s answered %s %s", self.stream, self.name, status, description
        )

    # ------------------------------------------------------------------ any thread
    def _release(self, msg: JsMsg, *, pull: bool = True) -> None:
        """A message left our hands (handled, taken by ``next_msg``, or given back)."""
        if self._leaser is not None and not msg.is_acked:  # settled: dropped already
            self._leaser.drop(msg)
        if self._flow.released() and pull:
            self._puller.pull()

    def _settled(self, msg: JsMsg) -> None:
        """Called by the message on its first ack/nak/term, from any thread."""
        if self._leaser is not None:
            self._leaser.drop(msg)

    def _give_back(self, msg: JsMsg) -> None:
        """Closing: let the server redeliver ``msg`` now rather than after ack_wait."""
        with contextlib.suppress(SyncMsgError):
            msg._send_terminal(b"-NAK")

    def dead_letter(self, msg: Msg, error: BaseException | str) -> bool:
        """Terminate ``msg``; :class:`JetStreamSubscription` also publishes it to its
        dead-letter subject. Returns True when a dead letter was published."""
        if not isinstance(msg, JsMsg) or msg.is_acked:
            return False
        reason = describe(error)
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
        return False

    # ------------------------------------------------------------------ worker threads
    def _handle(self, msg: Msg) -> None:
        assert isinstance(msg, JsMsg) and self._handler is not None
        try:
            if self._discarding:
                self._give_back(msg)
                return
            self._handler(msg)
        finally:
            self._release(msg)

    def _on_error(self, exc: BaseException, msg: Msg | None) -> None:
        log.error(
            "syncmsg: handler for %s/%s raised on %r",
            self.stream,
            self.name,
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
                if self._leaser is not None:
                    self._leaser.extend(now)
                self._look_after(now)
                self._puller.pull()
            except Exception:  # never let housekeeping die
                log.exception("syncmsg: keeper of %s/%s failed", self.stream, self.name)

    def _look_after(self, now: float) -> None:
        """Pull requests after a reconnect or that the server never ended; a lost consumer."""
        reconnects = self._host.reconnects
        if reconnects != self._reconnects:
            # Pull requests do not survive a server restart: ask again.
            self._reconnects = reconnects
            self._puller.forget_all()
        else:
            self._puller.expire(now)
        if self._recreate and now >= self._flow.pause_until:
            self._recreate_consumer()

    def _recreate_consumer(self) -> None:
        """Pulls found no consumer: if the server lost it (or it was deleted), make it again
        and say so; if it is there (a leader election had just ended), simply go on."""
        try:
            try:
                self._js.consumer_info(self.stream, self.name)
            except ConsumerNotFoundError:
                pass
            else:
                self._recreate = False
                self._flow.resume()
                return
            self._js._create_consumer(self.stream, self.name, self._consumer_config)
        except SyncMsgError as exc:
            log.warning("syncmsg: consumer %s/%s is unavailable: %s", self.stream, self.name, exc)
            self._flow.pause(2.0)
            return
        self._recreate = False
        self._flow.resume()
        error = ConsumerNotFoundError(
            f"consumer {self.stream}/{self.name} had disappeared from the server; "
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
    def in_hand(self) -> int:
        """Messages received and not yet let go (queued, or with a handler)."""
        return self._flow.in_hand

    def stats(self) -> dict[str, Any]:
        data = super().stats()
        data.update(
            stream=self.stream,
            consumer=self.name,
            durable=self.durable,
            group=self.group,
            pinned=self.pin_id is not None,
            handled=self.handled,
            failed=self.failed,
            in_hand=self._flow.in_hand,
            requested=self._flow.requested,
        )
        return data

    def consumer_info(self, timeout: float | None = None) -> ConsumerInfo:
        """The server's view of this subscription's consumer."""
        return self._js.consumer_info(self.stream, self.name, timeout=timeout)

    @property
    def group(self) -> str | None:
        """The priority group this subscription pulls as (None: the consumer has none)."""
        group = self._puller.group
        return None if group is None else group.group

    @property
    def pin_id(self) -> str | None:
        """The pin the server gave this subscription in a ``pinned_client`` consumer: it is
        the client that gets the group's messages. None while another client is pinned."""
        return self._puller.pin_id

    def unsubscribe(self, limit: int | None = None) -> None:
        """Stop now: queued messages are given back (nak) and not handled. An ephemeral
        consumer is deleted; a durable one stays on the server."""
        no_limit(limit)
        if self._closed.is_set():
            return
        self._stop(discard=True)
        self._remove_interest(drain=False)
        self._give_back_queued()
        self._finish(self._host.config.close_timeout)

    def drain(self, timeout: float | None = None) -> None:
        """Stop pulling, let the handlers finish every message in hand, then end.

        Messages already received stay readable with ``next_msg`` (subscriptions without a
        handler) until the subscription is closed. Raises :class:`~syncmsg.TimeoutError`
        when the handlers did not finish in time.
        """
        if self._closed.is_set():
            return
        timeout = check_timeout(timeout, self._host.config.drain_timeout)
        deadline = Deadline(timeout)
        self._stop(discard=False)
        in_worker = self._pool is not None and self._pool.in_worker()
        idle = True if in_worker or self._pool is None else self._queue.wait_idle(timeout)
        self._remove_interest(drain=False, timeout=max(deadline.left(), 0.1))
        self._queue.close(discard=not idle)
        self._finish(deadline.left())
        if not idle:
            raise TimeoutError(f"drain of {self.stream}/{self.name} did not finish in {timeout:g}s")

    def _give_back_queued(self) -> None:
        if self._pool is not None:
            self._queue.close(discard=False)  # the workers give back what is left
            return
        while True:
            msg = self._queue.take(0)
            if msg is None:
                break
            self._queue.done([msg])
            assert isinstance(msg, JsMsg)
            self._give_back(msg)
            self._release(msg, pull=False)
        self._queue.close(discard=True)

    def _stop(self, *, discard: bool) -> None:
        self._flow.stop()
        self._discarding = discard
        self._closed.set()
        with self._wake:
            self._wake.notify()

    def _finish(self, timeout: float) -> None:
        if self._pool is not None and not self._pool.join(timeout):
            log.warning(
                "syncmsg: handlers of %s/%s still busy after %.1fs", self.stream, self.name, timeout
            )
        self._forget()
        if self.durable is None and not self._client_closing:
            self._js._delete_quietly(self.stream, self.name)

    def _close_with_client(self, timeout: float) -> None:
        # The client is closing: finish what is in hand, but leave an ephemeral consumer to
        # its inactive threshold rather than spend the close's time on the API.
        self._client_closing = True
        self.drain(timeout)

    def _closed_by_client(self) -> None:
        self._flow.stop()
        self._closed.set()
        with self._wake:
            self._wake.notify()
        self._queue.close(discard=True)


class JetStreamSubscription(PulledSubscription):
    """A consumer whose messages are handled on worker threads, with explicit acks.

    Returned by :meth:`JetStream.subscribe`. By default a handler's return acks the message
    and an exception naks it (after the consumer's backoff for that delivery); on the last
    allowed delivery (``max_deliver``) a failing message is dead-lettered and terminated.
    ``unsubscribe()`` stops at once (queued messages are nak'd for prompt redelivery),
    ``drain()`` finishes what is in hand first; a durable consumer stays on the server.
    """

    def __init__(
        self,
        js: JetStream,
        *,
        manual_ack: bool,
        max_deliver: int,
        backoff: tuple[float, ...],
        dead_letter: DeadLetterer | None,
        **options: Any,
    ) -> None:
        super().__init__(js, **options)
        self._manual_ack = manual_ack
        self._max_deliver = max_deliver
        self._backoff = backoff
        self._dead_letter = dead_letter
        self._counts = {"acked": 0, "nakked": 0, "dead_lettered": 0, "redelivered": 0}
        self._count_lock = threading.Lock()

    def _bump(self, counter: str) -> None:
        with self._count_lock:
            self._counts[counter] += 1

    # ------------------------------------------------------------------ worker threads
    def _handle(self, msg: Msg) -> None:
        assert isinstance(msg, JsMsg) and self._handler is not None
        try:
            if self._discarding:
                self._give_back(msg)
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
            with contextlib.suppress(SyncMsgError):
                msg._send_terminal(b"-NAK " + json.dumps({"delay": int(1e9)}).encode())

    def dead_letter(self, msg: Msg, error: BaseException | str) -> bool:
        """Publish ``msg`` to the dead-letter subject (if any) and terminate it.

        Returns True when a dead letter was published. Raises
        :class:`~syncmsg.DeadLetterError` if that publish failed; the message is then left
        unacknowledged, to come back for another try.
        """
        if not isinstance(msg, JsMsg) or msg.is_acked:
            return False
        if self._dead_letter is None:
            return super().dead_letter(msg, error)
        self._dead_letter.send(msg, error)
        self._bump("dead_lettered")
        try:
            msg.term(describe(error)[:200])
        except SyncMsgError as exc:
            log.warning("syncmsg: could not terminate %r: %s", msg.subject, exc)
        return True

    # ------------------------------------------------------------------ any thread
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

    def stats(self) -> dict[str, Any]:
        data = super().stats()
        data.update(
            acked=self.acked,
            nakked=self.nakked,
            redelivered=self.redelivered,
            dead_lettered=self.dead_lettered,
        )
        return data


class SyncReads(PulledSubscription):
    """``next_msg``, iteration and ``fetch`` over what a subscription has pulled.

    Threading: any thread but the loop's may read, several at once; each message goes to
    one reader. A message taken is no longer leased: ack it within the consumer's ack wait
    (or call ``msg.in_progress()``).
    """

    def next_msg(self, timeout: float | None = None) -> JsMsg:
        """The next message, waiting at most ``timeout`` seconds (default from config).

        Raises :class:`~syncmsg.TimeoutError` when none arrives in time, and
        :class:`~syncmsg.ConnectionClosedError` once the subscription is closed (after
        :meth:`drain`, once what was received has been read).
        """
        wait = check_timeout(timeout, self._host.config.timeout)
        batch = self._take(wait, 1)
        if not batch:
            raise TimeoutError(f"no message on {self.subject!r} within {wait:g}s")
        return batch[0]

    def fetch(self, batch: int = 1, timeout: float | None = None) -> list[JsMsg]:
        """Up to ``batch`` messages: those already here, or the first ones to arrive
        within ``timeout``; an empty list when none came (not an error)."""
        if batch < 1:
            raise ValueError("batch must be at least 1")
        return self._take(check_timeout(timeout, self._host.config.timeout), batch)

    def __iter__(self) -> Iterator[JsMsg]:
        """Yield messages as they arrive until the subscription or the client closes."""
        while True:
            try:
                batch = self._take(None, 1)
            except ConnectionClosedError:
                return
            yield from batch

    def __enter__(self) -> SyncReads:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unsubscribe()

    def _take(self, timeout: float | None, limit: int) -> list[JsMsg]:
        queue = self._queue
        tracing = _instrumentation.active
        started = time.time_ns() if tracing is not None else 0
        batch = queue.take_batch(timeout, limit)
        if not batch:
            if queue.closed:
                raise ConnectionClosedError(f"subscription to {self.subject!r} is closed")
            return []
        queue.done(batch)
        taken: list[JsMsg] = []
        for msg in batch:
            assert isinstance(msg, JsMsg)
            self._taken(msg)
            taken.append(msg)
        if tracing is not None:
            tracing.received(self, taken, started)
        return taken

    def _taken(self, msg: JsMsg) -> None:
        self._release(msg)


class JetStreamSyncSubscription(SyncReads):
    """A consumer read with :meth:`next_msg`, by iteration or with :meth:`fetch`, on the
    caller's thread; returned by :meth:`JetStream.subscribe_sync`.

    It pulls ahead (at most ``prefetch`` messages waiting) and keeps the waiting ones
    leased. The caller acknowledges each message (``msg.ack()``); unacknowledged ones come
    back after ``ack_wait``. :meth:`unsubscribe` gives back what was not read.
    """

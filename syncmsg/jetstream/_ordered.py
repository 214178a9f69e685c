"""Ordered consumers: a stream read in order, never skipping and never repeating a message.

An ordered consumer is a chain of short-lived, ephemeral pull consumers on the server, as
nats.go's ``OrderedConsumer``: each is created with ``ack_policy: none``, ``max_deliver: 1``,
``mem_storage`` and one replica (cheap: nothing is acknowledged), and is pulled with idle
heartbeats. syncmsg remembers the stream sequence of the last message it accepted; when
anything goes wrong it deletes the consumer and creates the next one, starting right
after that sequence:

* a gap: a message whose consumer sequence is not the next one (the server lost or
  skipped some),
* the consumer is gone (``503`` no responders, ``409 Consumer Deleted``, a leader change),
* the heartbeats stopped (two of them missed while a pull request is open),
* a reconnect (the server may have restarted, and a memory consumer with it).

Messages of an earlier consumer still in flight are dropped on arrival (they name their
consumer in their reply subject), so each stream sequence is delivered once, in order.

Threading: the event-loop thread checks each message's sequences (under the consumer's
lock) and queues it; the keeper thread ``syncmsg-js-<sid>-keeper`` re-creates consumers (it
retries with backoff until it succeeds or the subscription ends; a failure is reported to
``error_callback`` once per outage); the handler runs on one worker thread
``syncmsg-js-<sid>-0`` (:class:`OrderedSubscription`), or ``next_msg`` on the caller's
(:class:`OrderedSyncSubscription`).

The initial backlog: ``initial_pending`` is how many messages the stream held for the
consumer when it started; ``caught_up`` turns True (and :meth:`~OrderedConsumer.wait_caught_up`
returns) once the last of them has been handled (or taken by ``next_msg``); a message's
``metadata.num_pending`` says how many were still after it when it was delivered. This is
what a key-value watcher needs to tell the initial values from the updates. A message the
consumer counted may vanish before it is delivered (its TTL ran out, it was purged): an idle
heartbeat of an open pull request, which says the server has nothing more to deliver, then
ends the backlog with the last message accepted.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from syncmsg._errors import ConnectionClosedError, SyncMsgError
from syncmsg._msg import Msg, MsgMetadata
from syncmsg._retry import RetryPolicy
from syncmsg._types import ErrorCallback
from syncmsg.jetstream._consumer import PulledSubscription, SyncReads
from syncmsg.jetstream._message import JsMsg
from syncmsg.jetstream._models import AckPolicy, ConsumerConfig, DeliverPolicy, ReplayPolicy

if TYPE_CHECKING:
    from syncmsg._connection import Connection
    from syncmsg.jetstream._context import JetStream

__all__ = ["OrderedConsumer", "OrderedSubscription", "OrderedSyncSubscription"]

log = logging.getLogger("syncmsg.jetstream")

#: Pull requests of an ordered consumer stay open this long (seconds), with an idle
#: heartbeat this often: two missed heartbeats (with a second's grace) mean a reset.
ORDERED_EXPIRES = 10.0
ORDERED_HEARTBEAT = 2.0
#: How re-creating a consumer is retried (within one round; rounds go on until it works
#: or the subscription ends).
RESET_RETRY = RetryPolicy(attempts=None, deadline=60.0, initial=0.5, maximum=10.0)
#: Deleting the consumer left behind is worth this much time, no more (seconds).
_DELETE_TIMEOUT = 1.0


class OrderedConsumer(PulledSubscription):
    """What both kinds of ordered subscription share (see the module's description)."""

    def __init__(
        self,
        js: JetStream,
        *,
        filters: tuple[str, ...],
        stream: str,
        deliver_policy: DeliverPolicy,
        opt_start_seq: int | None,
        opt_start_time: dt.datetime | None,
        headers_only: bool,
        inactive_threshold: dt.timedelta,
        replay_policy: ReplayPolicy,
        prefetch: int,
        conn: Connection,
        handler: Callable[[Msg], Any] | None,
        error_callback: ErrorCallback | None,
    ) -> None:
        self._filters = filters
        self._deliver_policy = deliver_policy
        self._opt_start_seq = opt_start_seq
        self._opt_start_time = opt_start_time
        self._headers_only = headers_only
        self._inactive_threshold = inactive_threshold
        self._replay_policy = replay_policy
        self._prefix = secrets.token_hex(8)
        self._serial = 0
        self._lock = threading.Lock()
        self._current: str | None = None  # the consumer whose messages are accepted
        self._stream_seq = 0  # the last accepted message's stream sequence
        self._consumer_seq = 0  # and its sequence in the current consumer
        self._reset_reason: str | None = None
        self._outage_reported = False
        self._backlog_end: JsMsg | None = None
        self._last_accepted: JsMsg | None = None
        self._last_released: JsMsg | None = None
        self._caught_up = threading.Event()
        #: How many messages the stream held for this consumer when it started (None until
        #: the first consumer exists).
        self.initial_pending: int | None = None
        #: How often a new consumer had to be made (gaps, reconnects, lost consumers).
        self.resets = 0
        name = self._next_name()
        super().__init__(
            js,
            subject=", ".join(filters),
            stream=stream,
            name=name,
            durable=False,
            config=self._config(name),
            prefetch=prefetch,
            conn=conn,
            handler=handler,
            workers=1,
            error_callback=error_callback,
            heartbeat=ORDERED_HEARTBEAT,
            expires=ORDERED_EXPIRES,
        )
        self._puller.next_subject = ""  # nothing is pulled before the consumer exists
        self._puller.on_idle = self._server_idle

    # ------------------------------------------------------------------ consumers
    def _next_name(self) -> str:
        self._serial += 1
        return f"{self._prefix}_{self._serial}"

    def _config(self, name: str) -> ConsumerConfig:
        """The configuration of the next consumer of the chain: where the stream was left,
        or, for the first, where the caller said to start."""
        options: dict[str, Any] = {
            "name": name,
            "ack_policy": AckPolicy.NONE,
            "max_deliver": 1,
            "mem_storage": True,
            "num_replicas": 1,
            "inactive_threshold": self._inactive_threshold,
            "replay_policy": self._replay_policy,
        }
        if self._headers_only:
            options["headers_only"] = True
        if len(self._filters) == 1:
            options["filter_subject"] = self._filters[0]
        elif self._filters:
            options["filter_subjects"] = self._filters
        if self._stream_seq:
            options["deliver_policy"] = DeliverPolicy.BY_START_SEQUENCE
            options["opt_start_seq"] = self._stream_seq + 1
        else:
            options["deliver_policy"] = self._deliver_policy
            if self._deliver_policy is DeliverPolicy.BY_START_SEQUENCE:
                options["opt_start_seq"] = self._opt_start_seq
            elif self._deliver_policy is DeliverPolicy.BY_START_TIME:
                options["opt_start_time"] = self._opt_start_time
        return ConsumerConfig(**options)

    def _begin(self, timeout: float | None = None) -> None:
        """Create the current consumer and start accepting its messages (the caller's
        thread the first time, the keeper's after a reset). Raises the API's error."""
        name = self.name
        config = self._config(name)
        info = self._js._create_consumer(self.stream, name, config, timeout=timeout)
        if self._closed.is_set():  # unsubscribed meanwhile: leave nothing behind
            self._js._delete_quietly(self.stream, name)
            return
        with self._lock:
            self._consumer_config = config
            self._consumer_seq = 0
            self._current = name
            self._puller.next_subject = self._next_subject(name)
            if self.initial_pending is None:
                self.initial_pending = info.num_pending
                if info.num_pending == 0:
                    self._caught_up.set()
                if self._deliver_policy is DeliverPolicy.NEW and not self._stream_seq:
                    # "From now on" is from the stream's last message now: a consumer made
                    # after a reset must not skip what was stored meanwhile.
                    self._stream_seq = info.delivered.stream_seq
        self._flow.resume()

    # ------------------------------------------------------------------ loop thread
    def _accept(self, nats_msgs: list[Any]) -> list[JsMsg]:
        """The messages of a batch that come next: in order, from the current consumer."""
        accepted: list[JsMsg] = []
        host = self._host
        with self._lock:
            for nats_msg in nats_msgs:
                meta = MsgMetadata.from_reply(nats_msg.reply)
                if meta is None or meta.consumer != self._current:
                    continue  # an earlier consumer's, still in flight
                if meta.sequence_consumer != self._consumer_seq + 1:
                    self._current = None  # accept nothing more from this consumer
                    self._want_reset(
                        f"gap: consumer sequence {meta.sequence_consumer} after "
                        f"{self._consumer_seq}"
                    )
                    break
                self._consumer_seq = meta.sequence_consumer
                self._stream_seq = meta.sequence_stream
                msg = JsMsg(nats_msg.subject, nats_msg.data, nats_msg.headers, nats_msg.reply, host)
                msg._metadata = meta
                accepted.append(msg)
                self._last_accepted = msg
                backlog_ends = meta.num_pending == 0 and not self._caught_up.is_set()
                if backlog_ends and self._backlog_end is None:
                    self._backlog_end = msg
        return accepted

    def _server_idle(self) -> None:
        """An idle heartbeat of an open pull request: the server has nothing more for this
        consumer now. Messages of the initial backlog that never came (they expired or were
        removed after the consumer counted them) are then not waited for: the backlog ends
        with the last message accepted (at once, if it has been handled already)."""
        if self._caught_up.is_set():
            return
        with self._lock:
            if self._current is None:
                return  # between two consumers: the next one may still bring some
            last = self._last_accepted
            if last is None or last is self._last_released:
                self._caught_up.set()
            elif self._backlog_end is None:
                self._backlog_end = last

    def _on_trouble(self, status: str, description: str) -> None:
        text = description.lower()
        if status == "503":
            self._want_reset("503 no responders: the consumer is gone")
        elif "deleted" in text or "leadership" in text:
            self._want_reset(f"{status} {description}")
        else:
            self._flow.failed()
            log.warning(
                "syncmsg: pull from ordered consumer %s/%s answered %s %s",
                self.stream,
                self.name,
                status,
                description,
            )

    def _want_reset(self, reason: str) -> None:
        """Ask the keeper for a new consumer (any thread)."""
        if self._reset_reason is None:
            self._reset_reason = reason
        with self._wake:
            self._wake.notify()

    # ------------------------------------------------------------------ any thread
    def _release(self, msg: JsMsg, *, pull: bool = True) -> None:
        super()._release(msg, pull=pull)
        with self._lock:  # against _server_idle's look at the last released message
            self._last_released = msg
            if msg is self._backlog_end:
                self._caught_up.set()

    def _give_back(self, msg: JsMsg) -> None:
        """Nothing to give back: an ordered consumer acknowledges nothing."""

    @property
    def caught_up(self) -> bool:
        """True once the messages the stream held at the start have all been handled (or
        taken by ``next_msg``)."""
        return self._caught_up.is_set()

    def wait_caught_up(self, timeout: float | None = None) -> bool:
        """Wait until :attr:`caught_up`; False when ``timeout`` (seconds) ran out first."""
        return self._caught_up.wait(timeout)

    def stats(self) -> dict[str, Any]:
        data = super().stats()
        data.update(
            ordered=True,
            resets=self.resets,
            stream_seq=self._stream_seq,
            initial_pending=self.initial_pending,
            caught_up=self.caught_up,
        )
        return data

    # ------------------------------------------------------------------ keeper thread
    def _look_after(self, now: float) -> None:
        reconnects = self._host.reconnects
        if reconnects != self._reconnects:
            self._reconnects = reconnects
            self._want_reset("reconnected")
        elif self._puller.silent(now):
            self._want_reset("no heartbeat")
        else:
            self._puller.expire(now)
        if self._reset_reason is not None:
            self._reset()

    def _reset(self) -> None:
        """Delete the consumer and create the next one, right after the last message
        accepted; retries until it works or the subscription ends."""
        with self._lock:
            reason, self._reset_reason = self._reset_reason, None
            self._current = None
            self._puller.next_subject = ""
            old = self.name
            self.name = self._next_name()
        self._puller.forget_all()
        self.resets += 1
        log.info(
            "syncmsg: ordered consumer on %s: new consumer after stream sequence %d (%s)",
            self.stream,
            self._stream_seq,
            reason,
        )
        self._js._delete_quietly(self.stream, old, timeout=_DELETE_TIMEOUT)
        while not self._closed.is_set():
            try:
                RESET_RETRY.call(
                    lambda left: self._begin(timeout=left),
                    should_retry=self._worth_retrying,
                    sleep=self._sleep,
                )
            except SyncMsgError as exc:
                if self._closed.is_set():
                    return
                self._report_outage(exc)
                continue
            if self._outage_reported:
                log.info("syncmsg: ordered consumer on %s is back", self.stream)
            self._outage_reported = False
            return

    def _worth_retrying(self, exc: BaseException) -> bool:
        if self._closed.is_set():
            return False
        if not self._outage_reported and isinstance(exc, SyncMsgError):
            self._report_outage(exc)
        return True

    def _sleep(self, seconds: float) -> None:
        if self._closed.wait(seconds):
            raise ConnectionClosedError("the subscription was closed")

    def _report_outage(self, exc: BaseException) -> None:
        if self._outage_reported:
            return
        self._outage_reported = True
        log.warning(
            "syncmsg: ordered consumer on %s cannot be re-created yet (%s); retrying",
            self.stream,
            exc,
        )
        self._host.hooks.report_error(exc, None, self._error_callback)


class OrderedSubscription(OrderedConsumer):
    """An ordered consumer whose handler runs on one worker thread, in stream order.

    Returned by ``js.subscribe(subject, handler, ordered_consumer=True)``. Nothing is
    acknowledged; ``unsubscribe()`` deletes the consumer on the server.
    """


class OrderedSyncSubscription(SyncReads, OrderedConsumer):
    """An ordered consumer read with :meth:`next_msg`, iteration or :meth:`fetch`.

    Returned by ``js.subscribe_sync(subject, ordered_consumer=True)``.
    """

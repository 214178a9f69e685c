"""The JetStream API of one client: streams, publishing, consumers and subscriptions.

Threading: every method runs on the calling thread and may be called from any thread but
the event-loop thread. API calls use the client's fast request path (a ``PUB`` in the
outbound queue and a lock the reply mux releases); publishes the same. Only subscribing
hands a coroutine to the loop. Background threads are started by
:meth:`JetStream.publish_async` (the acks thread, see
:mod:`syncmsg.jetstream._publish_async`) and by the subscriptions (workers and a keeper,
see :mod:`syncmsg.jetstream._consumer` and :mod:`syncmsg.jetstream._ordered`).

The stream and message calls are :class:`~syncmsg.jetstream._streams.StreamManager`'s,
the key-value and object store calls :class:`~syncmsg.jetstream._stores.StoreManager`'s;
this module adds consumers, publishing and subscribing.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from syncmsg._codec import Data, Headers
from syncmsg._deadline import check_timeout
from syncmsg._errors import (
    ConfigurationError,
    MessageNotFoundError,
    NoRespondersError,
    SyncMsgError,
)
from syncmsg._msg import Msg
from syncmsg._retry import RetryPolicy
from syncmsg._subjects import check_publish_subject, check_token
from syncmsg._types import ErrorCallback
from syncmsg.jetstream._api import ApiClient
from syncmsg.jetstream._batch import BATCH_COMMIT, BATCH_ID, BatchMessage, BatchPublisher
from syncmsg.jetstream._consumer import (
    PULL_EXPIRES,
    JetStreamSubscription,
    JetStreamSyncSubscription,
    PulledSubscription,
)
from syncmsg.jetstream._consumer_admin import ConsumerAdmin
from syncmsg.jetstream._counters import INCREMENT, counter_of, increment_header
from syncmsg.jetstream._deadletter import DeadLetterer
from syncmsg.jetstream._features import ATOMIC_PUBLISH, MESSAGE_COUNTERS, ApiLevel
from syncmsg.jetstream._leaser import Leaser
from syncmsg.jetstream._models import (
    ConsumerConfig,
    ConsumerInfo,
    DeliverPolicy,
    Duration,
    PriorityPolicy,
    PubAck,
    RawStreamMsg,
    to_seconds,
)
from syncmsg.jetstream._options import ConsumerChoices, ConsumerPlan, subscription_filters
from syncmsg.jetstream._ordered import OrderedSubscription, OrderedSyncSubscription
from syncmsg.jetstream._publish import Expect, Publisher
from syncmsg.jetstream._publish_async import AsyncPublisher
from syncmsg.jetstream._pull import PullSubscription
from syncmsg.jetstream._stores import StoreManager
from syncmsg.jetstream._streams import StreamManager

if TYPE_CHECKING:
    from syncmsg._client import Client
    from syncmsg._connection import Connection

__all__ = ["DEFAULT_API_RETRY", "DEFAULT_PUBLISH_RETRY", "JetStream"]

log = logging.getLogger("syncmsg.jetstream")

#: Publishes are retried for up to a minute: well inside the default two-minute duplicate
#: window, so a retry that crosses a server restart is still recognised as a duplicate.
DEFAULT_PUBLISH_RETRY = RetryPolicy(attempts=None, deadline=60.0, initial=0.1, maximum=2.0)
#: Management calls (stream and consumer info, create) ride out a short unavailability.
DEFAULT_API_RETRY = RetryPolicy(attempts=4, deadline=15.0, initial=0.2, maximum=2.0)
#: Deleting an ephemeral consumer when its subscription ends is worth this much time.
_DELETE_TIMEOUT = 2.0

Subjects = str | Sequence[str]
SubT = TypeVar("SubT", bound=PullSubscription | PulledSubscription)
OrderedT = TypeVar("OrderedT", OrderedSubscription, OrderedSyncSubscription)
Handler = Callable[[Msg], Any]


class JetStream(StreamManager, ConsumerAdmin, StoreManager):
    """JetStream on a :class:`~syncmsg.Client`; get it with ``client.jetstream()``.

    Options (keywords of ``client.jetstream(...)``):

    * ``timeout``: each API call's and each publish attempt's timeout (default: the
      client's ``timeout``).
    * ``domain`` or ``prefix``: reach the JetStream API of another domain / account.
    * ``publish_retry``: the :class:`~syncmsg.RetryPolicy` of publishes (default
      :data:`DEFAULT_PUBLISH_RETRY`: retry timeouts and lost connections for 60 s). Keep
      its deadline shorter than your streams' duplicate window, or a late retry may be
      stored twice.
    * ``no_responders_wait``: how long a publish that finds no stream leader keeps trying
      (a leader election, a restarting server), default 10 s. ``publish`` fails at once
      when the JetStream API answers that no stream captures the subject.
    * ``max_pending``: the ``publish_async`` window, default 4096 messages.
    """

    def __init__(
        self,
        client: Client,
        *,
        timeout: float | None = None,
        domain: str | None = None,
        prefix: str | None = None,
        publish_retry: RetryPolicy | None = None,
        api_retry: RetryPolicy | None = None,
        no_responders_wait: float = 10.0,
        max_pending: int = 4096,
    ) -> None:
        if domain and prefix:
            raise ConfigurationError("give either domain or prefix, not both")
        api_prefix = prefix or (f"$JS.{domain}.API" if domain else "$JS.API")
        self.client = client
        self.timeout = check_timeout(timeout, client.config.timeout)
        self._api = ApiClient(client, api_prefix, self.timeout, api_retry or DEFAULT_API_RETRY)
        self._levels = ApiLevel(
            lambda timeout: self.account_info(timeout=timeout).api.level,
            lambda: client.reconnects,
        )
        retry = publish_retry or DEFAULT_PUBLISH_RETRY
        self._publisher = Publisher(
            client,
            timeout=self.timeout,
            retry=retry,
            no_responders_wait=no_responders_wait,
            lookup=self._stored_lookup,
            check_captured=self._check_captured,
        )
        self._batcher = BatchPublisher(
            client,
            timeout=self.timeout,
            retry=retry,
            no_responders_wait=no_responders_wait,
            find_committed=self._find_committed,
        )
        self._async = AsyncPublisher(
            client,
            timeout=self.timeout,
            retry=retry,
            no_responders_wait=no_responders_wait,
            max_pending=max_pending,
            lookup=self._stored_lookup,
        )

    def __repr__(self) -> str:
        return f"<syncmsg.JetStream {self._api.prefix} on {self.client!r}>"

    # ================================================================ consumers
    def consumer_info(
        self, stream: str, consumer: str, *, timeout: float | None = None
    ) -> ConsumerInfo:
        """The consumer's configuration and state; raises
        :class:`~syncmsg.ConsumerNotFoundError` (or StreamNotFoundError)."""
        check_token(stream, "stream name")
        check_token(consumer, "consumer name")
        data = self._api.request(f"CONSUMER.INFO.{stream}.{consumer}", None, timeout=timeout)
        return ConsumerInfo.from_api(data)

    def delete_consumer(self, stream: str, consumer: str, *, timeout: float | None = None) -> None:
        """Delete a consumer (and its acknowledgement state)."""
        check_token(stream, "stream name")
        check_token(consumer, "consumer name")
        self._api.request(
            f"CONSUMER.DELETE.{stream}.{consumer}", None, timeout=timeout, idempotent=False
        )

    def add_consumer(
        self,
        stream: str,
        config: ConsumerConfig | None = None,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> ConsumerInfo:
        """Create a consumer without subscribing, and return its information.

        ``config`` is a :class:`~syncmsg.jetstream.ConsumerConfig`; keyword ``fields``
        (``durable_name="billing", ack_wait=30, ...``) set or override its fields. Creating a
        consumer identical to an existing one succeeds; one that exists with another
        configuration raises :class:`~syncmsg.JetStreamError`
        (``ApiErrorCode.CONSUMER_ALREADY_EXISTS``); use :meth:`update_consumer` to change it.
        Without a ``durable_name`` or ``name`` the server names an ephemeral consumer.
        """
        config = _with_fields(config, fields)
        name = config.durable_name or config.name
        return self._create_consumer(stream, name, config, timeout=timeout, action="create")

    def update_consumer(
        self,
        stream: str,
        config: ConsumerConfig | None = None,
        *,
        timeout: float | None = None,
        **fields: Any,
    ) -> ConsumerInfo:
        """Change an existing consumer (fields the server allows to change: ``ack_wait``,
        ``max_deliver``, ``backoff``, ``description``, ``max_ack_pending`` ...); raises
        :class:`~syncmsg.ConsumerNotFoundError` when it does not exist."""
        config = _with_fields(config, fields)
        name = config.durable_name or config.name
        if not name:
            raise ValueError("update_consumer() needs the consumer's durable_name or name")
        return self._create_consumer(stream, name, config, timeout=timeout, action="update")

    def consumer_names(self, stream: str, *, timeout: float | None = None) -> list[str]:
        """The names of the stream's consumers."""
        check_token(stream, "stream name")
        names: list[str] = []
        for page in self._pages(f"CONSUMER.NAMES.{stream}", "consumers", None, timeout):
            names.extend(page)
        return names

    def consumers(self, stream: str, *, timeout: float | None = None) -> list[ConsumerInfo]:
        """The information of each of the stream's consumers."""
        check_token(stream, "stream name")
        infos: list[ConsumerInfo] = []
        for page in self._pages(f"CONSUMER.LIST.{stream}", "consumers", None, timeout):
            infos.extend(ConsumerInfo.from_api(item) for item in page)
        return infos

    def _create_consumer(
        self,
        stream: str,
        name: str | None,
        config: ConsumerConfig,
        timeout: float | None = None,
        action: str | None = None,
    ) -> ConsumerInfo:
        """Create the consumer, or (without ``action``) update it to ``config`` if it exists."""
        check_token(stream, "stream name")
        self._check_consumer_features(config, timeout)
        suffix = f"CONSUMER.CREATE.{stream}"
        if name:
            suffix += f".{check_token(name, 'consumer name')}"
        body: dict[str, Any] = {"stream_name": stream, "config": config.to_api()}
        if action:
            body["action"] = action
        return ConsumerInfo.from_api(self._api.request(suffix, body, timeout=timeout))

    def _delete_quietly(self, stream: str, name: str, timeout: float = _DELETE_TIMEOUT) -> None:
        """Delete a consumer we made and no longer need; it goes by its inactive threshold
        anyway, so a failure is only logged."""
        try:
            self._api.request(
                f"CONSUMER.DELETE.{stream}.{name}", None, timeout=timeout, idempotent=False
            )
        except SyncMsgError as exc:
            log.debug("syncmsg: consumer %s/%s not deleted: %s", stream, name, exc)

    def _stored_lookup(
        self, stream: str, seq: int | None, subject: str | None
    ) -> RawStreamMsg | None:
        """The message at ``seq`` (or the last on ``subject``), None when there is none."""
        try:
            if subject is not None:
                return self.get_last_msg(stream, subject)
            if seq is not None:
                return self.get_msg(stream, seq)
        except SyncMsgError:
            pass
        return None

    def _check_captured(self, subject: str, timeout: float) -> None:
        """Raise :class:`~syncmsg.NoRespondersError` when the JetStream API answers that no
        stream captures ``subject``. No answer (JetStream restarting, a meta-leader election)
        is no verdict: the publish keeps waiting for a stream."""
        try:
            found = self._api.request(
                "STREAM.NAMES", {"subject": subject}, timeout=timeout, idempotent=False
            )
        except SyncMsgError:
            return
        if not found.get("streams"):
            raise NoRespondersError(f"no stream captures {subject!r}") from None

    def _stream_of(self, filters: tuple[str, ...], given: str | None, timeout: float) -> str:
        """The stream of a subscription on ``filters``: ``given``, or the one stream that
        captures them all."""
        if given:
            return check_token(given, "stream name")
        streams = {self.find_stream(subject, timeout=timeout) for subject in filters}
        if len(streams) > 1:
            raise ValueError(f"the subjects are in different streams {sorted(streams)}")
        return check_token(streams.pop(), "stream name")

    # ================================================================ publishing
    def publish(
        self,
        subject: str,
        data: Data = b"",
        *,
        msg_id: str | None = None,
        headers: Headers | None = None,
        expected_stream: str | None = None,
        expected_last_seq: int | None = None,
        expected_last_msg_id: str | None = None,
        expected_last_subject_seq: int | None = None,
        ttl: Duration | None = None,
        timeout: float | None = None,
    ) -> PubAck:
        """Store a message in the stream that captures ``subject`` and return its PubAck.

        Exactly once within the stream's duplicate window: the message carries
        ``Nats-Msg-Id`` (``msg_id``, or a unique id made once for this call) and every retry
        reuses it, so ``PubAck.duplicate`` is True when an earlier attempt had got through.
        Timeouts (``timeout`` bounds each attempt), lost connections, missing responders
        and a full ingest queue (429) are retried per the context's ``publish_retry``.

        Expectations make the stream refuse the message unless they hold: the stream's
        name (``expected_stream``), its last sequence (``expected_last_seq``), its last
        message id (``expected_last_msg_id``), or the last sequence of ``subject``
        (``expected_last_subject_seq``; 0: the subject has no message). ``ttl`` (seconds
        or a timedelta, at least one) removes the message after that long; the stream
        needs ``allow_msg_ttl`` (nats-server 2.11).

        Returns a PubAck or raises: :class:`~syncmsg.TimeoutError` when retries ran out,
        :class:`~syncmsg.NoRespondersError` when no stream captures the subject,
        :class:`~syncmsg.WrongLastSequenceError` when an expectation does not hold, or
        another :class:`~syncmsg.JetStreamError`.
        """
        expect = _expect(
            expected_stream, expected_last_seq, expected_last_msg_id, expected_last_subject_seq
        )
        return self._publisher.publish(
            subject, data, msg_id=msg_id, headers=headers, expect=expect, ttl=ttl, timeout=timeout
        )

    def publish_async(
        self,
        subject: str,
        data: Data = b"",
        *,
        msg_id: str | None = None,
        headers: Headers | None = None,
        expected_stream: str | None = None,
        expected_last_seq: int | None = None,
        expected_last_msg_id: str | None = None,
        expected_last_subject_seq: int | None = None,
        ttl: Duration | None = None,
        timeout: float | None = None,
    ) -> concurrent.futures.Future[PubAck]:
        """Send without waiting for the ack; the future resolves to the PubAck or the error.

        At most ``max_pending`` messages wait for acks: beyond that this call blocks (up to
        ``timeout``, then :class:`~syncmsg.TimeoutError`) until acks free room. Retries,
        exactly-once, expectations and ``ttl`` work as in :meth:`publish`. The futures are
        resolved, and their done-callbacks run, on the context's ``syncmsg-js-acks-N``
        thread, never on the event-loop thread; keep callbacks short. Call :meth:`flush`
        to wait for every ack.
        """
        expect = _expect(
            expected_stream, expected_last_seq, expected_last_msg_id, expected_last_subject_seq
        )
        return self._async.publish_async(
            subject, data, msg_id=msg_id, headers=headers, expect=expect, ttl=ttl, timeout=timeout
        )

    def publish_batch(
        self,
        messages: Iterable[BatchMessage | tuple[Any, ...]],
        *,
        timeout: float | None = None,
    ) -> PubAck:
        """Publish ``messages`` as one atomic batch: the stream stores all of them, or none
        (nats-server 2.12; the stream needs ``StreamSpec(allow_atomic=True)``).

        Each message is a :class:`~syncmsg.jetstream.BatchMessage` (subject, data, headers,
        ``msg_id``, ``ttl`` and expectations) or a ``(subject, data)`` /
        ``(subject, data, headers)`` tuple, all to subjects of one stream. Returns the
        PubAck of the last message (``seq``; ``batch``, the batch id; ``count``, how many
        were stored); the others are the ``count - 1`` sequences before it.

        Expectations are checked at the commit, against the stream as it was before the
        batch: one that fails (a :class:`~syncmsg.WrongLastSequenceError`), a lost message,
        a duplicate ``msg_id`` or a batch larger than the server allows (1000 messages by
        default) stores nothing and raises. Bad input (no messages, a bad subject,
        ``expected_last_seq`` after the first message, a ``Nats-Batch-*`` header of your
        own) raises before anything is sent; a server older than 2.12 raises
        :class:`~syncmsg.NotSupportedError`. Failures that may pass before the commit was
        sent start the batch again (``publish_retry``); if the commit's answer is lost, the
        stream is read to find out whether the batch was stored.
        """
        self._levels.require(ATOMIC_PUBLISH, timeout)
        return self._batcher.publish_batch(messages, timeout)

    def increment(
        self,
        subject: str,
        by: int = 1,
        *,
        msg_id: str | None = None,
        timeout: float | None = None,
    ) -> int:
        """Add ``by`` (an int, negative to subtract) to the counter ``subject`` and return
        its new value (nats-server 2.12; a stream with ``allow_msg_counter=True``).

        The increment is a publish (a ``Nats-Incr`` header, no payload) with a message id,
        retried like :meth:`publish`: an attempt whose ack was lost is recognised as a
        duplicate by the stream and counted once, and the value is then read from the
        message it stored. ``msg_id`` makes an increment idempotent across processes too
        (within the stream's duplicate window). Counters are big integers: Python ints of
        any size. Raises :class:`~syncmsg.JetStreamError`
        (``ApiErrorCode.COUNTER_DISABLED``) on a stream that is not a counter stream, and
        :class:`~syncmsg.NotSupportedError` on a server older than 2.12.
        """
        header = increment_header(by)
        self._levels.require(MESSAGE_COUNTERS, timeout)
        ack = self._publisher.publish(
            subject,
            b"",
            msg_id=msg_id,
            headers={INCREMENT: header},
            expect=None,
            ttl=None,
            timeout=timeout,
        )
        if ack.val is not None:
            return int(ack.val)
        # A duplicate's ack has no value: read the one its first attempt stored.
        return counter_of(self.get_msg(ack.stream, ack.seq, timeout=timeout))

    def counter_value(
        self, subject: str, *, stream: str | None = None, timeout: float | None = None
    ) -> int:
        """The value of the counter ``subject``: the total in its last message.

        ``stream`` defaults to the stream that captures ``subject`` (one more request).
        Raises :class:`~syncmsg.MessageNotFoundError` when the counter was never
        incremented (or was purged), :class:`~syncmsg.JetStreamError` when the subject's
        last message is not a counter value.
        """
        check_publish_subject(subject)
        stream = stream or self.find_stream(subject, timeout=timeout)
        return counter_of(self.get_last_msg(stream, subject, timeout=timeout))

    def _find_committed(self, subject: str, batch_id: str) -> RawStreamMsg | None:
        """The last message on ``subject`` if it is the commit of batch ``batch_id``."""
        stream = self.find_stream(subject)
        try:
            last = self.get_last_msg(stream, subject)
        except MessageNotFoundError:
            return None
        headers = last.headers or {}
        if headers.get(BATCH_ID) == batch_id and headers.get(BATCH_COMMIT) == "1":
            return last
        return None

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every :meth:`publish_async` so far is resolved (acked or failed).

        Raises :class:`~syncmsg.TimeoutError` if some are still waiting after ``timeout``.
        Errors are not raised here: they are on the futures.
        """
        self._async.flush(timeout)

    @property
    def pending_acks(self) -> int:
        """How many ``publish_async`` messages still wait for their ack."""
        return self._async.outstanding

    @property
    def max_pending(self) -> int:
        """The ``publish_async`` window: at most this many messages wait for acks."""
        return self._async.max_pending

    # ================================================================ subscribing
    @overload
    def subscribe(
        self,
        subject: Subjects,
        handler: Handler,
        *,
        ordered_consumer: Literal[True],
        stream: str | None = ...,
        deliver_policy: DeliverPolicy | str | None = ...,
        opt_start_seq: int | None = ...,
        opt_start_time: dt.datetime | None = ...,
        headers_only: bool = ...,
        inactive_threshold: Duration | None = ...,
        prefetch: int | None = ...,
        error_callback: ErrorCallback | None = ...,
        timeout: float | None = ...,
    ) -> OrderedSubscription: ...

    @overload
    def subscribe(
        self,
        subject: Subjects,
        handler: Handler,
        *,
        durable: str | None = ...,
        stream: str | None = ...,
        queue: str | None = ...,
        ordered_consumer: Literal[False] = ...,
        manual_ack: bool = ...,
        workers: int | None = ...,
        max_ack_pending: int | None = ...,
        ack_wait: Duration | None = ...,
        max_deliver: int | None = ...,
        backoff: Sequence[Duration] | None = ...,
        dead_letter: str | None = ...,
        deliver_policy: DeliverPolicy | str | None = ...,
        opt_start_seq: int | None = ...,
        opt_start_time: dt.datetime | None = ...,
        headers_only: bool = ...,
        inactive_threshold: Duration | None = ...,
        prefetch: int | None = ...,
        description: str | None = ...,
        group: str | None = ...,
        priority_policy: PriorityPolicy | str | None = ...,
        priority_groups: Sequence[str] | None = ...,
        pinned_ttl: Duration | None = ...,
        min_pending: int | None = ...,
        min_ack_pending: int | None = ...,
        error_callback: ErrorCallback | None = ...,
        timeout: float | None = ...,
    ) -> JetStreamSubscription: ...

    def subscribe(
        self,
        subject: Subjects,
        handler: Handler,
        *,
        durable: str | None = None,
        stream: str | None = None,
        queue: str | None = None,
        ordered_consumer: bool = False,
        manual_ack: bool = False,
        workers: int | None = None,
        max_ack_pending: int | None = None,
        ack_wait: Duration | None = None,
        max_deliver: int | None = None,
        backoff: Sequence[Duration] | None = None,
        dead_letter: str | None = None,
        deliver_policy: DeliverPolicy | str | None = None,
        opt_start_seq: int | None = None,
        opt_start_time: dt.datetime | None = None,
        headers_only: bool = False,
        inactive_threshold: Duration | None = None,
        prefetch: int | None = None,
        description: str | None = None,
        group: str | None = None,
        priority_policy: PriorityPolicy | str | None = None,
        priority_groups: Sequence[str] | None = None,
        pinned_ttl: Duration | None = None,
        min_pending: int | None = None,
        min_ack_pending: int | None = None,
        error_callback: ErrorCallback | None = None,
        timeout: float | None = None,
    ) -> JetStreamSubscription | OrderedSubscription:
        """Run ``handler(msg)`` on worker threads for each message of a consumer.

        ``subject`` is the consumer's filter: one subject, or a list of them (of one
        stream). With ``durable``, the durable pull consumer of that name on ``stream``
        (default: the stream capturing ``subject``) is created, or updated to these
        settings; every process subscribing with the same ``durable`` shares its messages.
        ``queue`` is the queue group of nats.go's ``QueueSubscribe``: its members share
        the durable consumer named after it (``queue="billing"`` is ``durable="billing"``;
        giving both takes the same name). Without either, an ephemeral consumer is
        made for this subscription alone: the server removes it ``inactive_threshold``
        (default 5 minutes) after nobody pulls, and ``unsubscribe()`` deletes it at once.
        ``workers`` threads (default ``config.workers``) run the handler.

        * Acks: unless ``manual_ack``, the handler's return acks the message. An exception
          naks it, delayed by ``backoff[delivery - 1]`` (the last step repeats) if given.
          Any thread may call ``msg.ack()/nak()/term()/in_progress()``; only the first
          ack, nak or term counts.
        * Leases: a message held longer than half of ``ack_wait`` (default 30 s; or of the
          shortest backoff step), queued or in a handler, gets ``in_progress``
          automatically.
        * Flow control: at most ``prefetch`` (default ``min(max_ack_pending, 256)``)
          messages are held by this subscription, and the server keeps the whole consumer
          under ``max_ack_pending`` (default 1000) unacknowledged messages.
        * Poison messages: when delivery number ``max_deliver`` (default 5) fails, the
          message is published to ``dead_letter`` (if given; see
          :mod:`syncmsg.jetstream._deadletter` for its headers) and terminated. With a
          dead-letter subject the server allows one spare delivery, used only to retry a
          dead letter that could not be published.
        * Where to start: ``deliver_policy`` (``"all"``, ``"last"``, ``"new"``,
          ``"last_per_subject"``, ``"by_start_sequence"`` with ``opt_start_seq``,
          ``"by_start_time"`` with ``opt_start_time``; inferred from those two when left
          out).
        * Priority groups (nats-server 2.11): with ``priority_policy="pinned_client"`` one
          member of ``group`` at a time gets every message, and another takes over when it
          has not pulled for ``pinned_ttl``; with ``"overflow"`` a member with
          ``min_pending`` (or ``min_ack_pending``) gets messages only once the backlog (or
          the unacknowledged messages) reach that many. ``priority_groups`` (default
          ``[group]``) are the consumer's groups.

        With ``ordered_consumer=True`` the stream is read in order, each message once,
        with no acks, on one worker thread: see :class:`OrderedSubscription` (the options
        about acks, durables and dead letters do not apply). ``ack_wait``, ``backoff`` and
        ``inactive_threshold`` take seconds or timedeltas.
        """
        choices = ConsumerChoices.of(locals())
        if not callable(handler):
            raise TypeError("handler must be callable")
        if ordered_consumer:
            choices.check_ordered(
                manual_ack=manual_ack,
                workers=None if workers == 1 else workers,
                dead_letter=dead_letter,
            )
            return self._ordered(
                OrderedSubscription,
                subject,
                handler,
                choices,
                error_callback=error_callback,
                timeout=timeout,
            )
        plan = choices.checked()
        if dead_letter is not None:
            check_publish_subject(dead_letter, "dead_letter subject")
        workers = workers or self.client.config.workers
        if workers < 1:
            raise ValueError("workers must be at least 1")
        max_deliver = 5 if max_deliver is None else max_deliver
        if backoff and max_deliver > 0 and max_deliver <= len(backoff):
            raise ValueError("max_deliver must be larger than the number of backoff steps")
        spare = 1 if dead_letter is not None and max_deliver > 0 else 0
        wait = check_timeout(timeout, self.timeout)
        options = self._consumer(
            subject,
            plan,
            max_deliver=max_deliver + spare if max_deliver > 0 else max_deliver,
            timeout=wait,
        )
        sub = JetStreamSubscription(
            self,
            manual_ack=manual_ack,
            max_deliver=max_deliver,
            backoff=plan.backoff_seconds,
            dead_letter=DeadLetterer(self, dead_letter, self.timeout) if dead_letter else None,
            handler=handler,
            workers=workers,
            error_callback=error_callback,
            **options,
        )
        return self._started(sub, options["conn"], wait)

    @overload
    def subscribe_sync(
        self,
        subject: Subjects,
        *,
        ordered_consumer: Literal[True],
        stream: str | None = ...,
        deliver_policy: DeliverPolicy | str | None = ...,
        opt_start_seq: int | None = ...,
        opt_start_time: dt.datetime | None = ...,
        headers_only: bool = ...,
        inactive_threshold: Duration | None = ...,
        prefetch: int | None = ...,
        error_callback: ErrorCallback | None = ...,
        timeout: float | None = ...,
    ) -> OrderedSyncSubscription: ...

    @overload
    def subscribe_sync(
        self,
        subject: Subjects,
        *,
        durable: str | None = ...,
        stream: str | None = ...,
        queue: str | None = ...,
        ordered_consumer: Literal[False] = ...,
        max_ack_pending: int | None = ...,
        ack_wait: Duration | None = ...,
        max_deliver: int | None = ...,
        backoff: Sequence[Duration] | None = ...,
        deliver_policy: DeliverPolicy | str | None = ...,
        opt_start_seq: int | None = ...,
        opt_start_time: dt.datetime | None = ...,
        headers_only: bool = ...,
        inactive_threshold: Duration | None = ...,
        prefetch: int | None = ...,
        description: str | None = ...,
        group: str | None = ...,
        priority_policy: PriorityPolicy | str | None = ...,
        priority_groups: Sequence[str] | None = ...,
        pinned_ttl: Duration | None = ...,
        min_pending: int | None = ...,
        min_ack_pending: int | None = ...,
        error_callback: ErrorCallback | None = ...,
        timeout: float | None = ...,
    ) -> JetStreamSyncSubscription: ...

    def subscribe_sync(
        self,
        subject: Subjects,
        *,
        durable: str | None = None,
        stream: str | None = None,
        queue: str | None = None,
        ordered_consumer: bool = False,
        max_ack_pending: int | None = None,
        ack_wait: Duration | None = None,
        max_deliver: int | None = None,
        backoff: Sequence[Duration] | None = None,
        deliver_policy: DeliverPolicy | str | None = None,
        opt_start_seq: int | None = None,
        opt_start_time: dt.datetime | None = None,
        headers_only: bool = False,
        inactive_threshold: Duration | None = None,
        prefetch: int | None = None,
        description: str | None = None,
        group: str | None = None,
        priority_policy: PriorityPolicy | str | None = None,
        priority_groups: Sequence[str] | None = None,
        pinned_ttl: Duration | None = None,
        min_pending: int | None = None,
        min_ack_pending: int | None = None,
        error_callback: ErrorCallback | None = None,
        timeout: float | None = None,
    ) -> JetStreamSyncSubscription | OrderedSyncSubscription:
        """A consumer read on your thread with ``next_msg(timeout=)``, by iteration, or
        with ``fetch(batch, timeout=)``.

        The consumer is as for :meth:`subscribe` (durable with ``durable`` or ``queue``,
        else ephemeral; priority groups alike), and the subscription pulls ahead up to
        ``prefetch`` messages; you ack
        each message yourself (``msg.ack()``) within ``ack_wait`` (default 30 s).
        ``max_deliver`` defaults to no limit. With ``ordered_consumer=True``: an ordered
        consumer (see :class:`OrderedSyncSubscription`), nothing to ack.
        """
        choices = ConsumerChoices.of(locals())
        if ordered_consumer:
            choices.check_ordered()
            return self._ordered(
                OrderedSyncSubscription,
                subject,
                None,
                choices,
                error_callback=error_callback,
                timeout=timeout,
            )
        plan = choices.checked()
        wait = check_timeout(timeout, self.timeout)
        options = self._consumer(
            subject, plan, max_deliver=-1 if max_deliver is None else max_deliver, timeout=wait
        )
        sub = JetStreamSyncSubscription(self, error_callback=error_callback, **options)
        return self._started(sub, options["conn"], wait)

    def pull_subscribe(
        self,
        subject: Subjects,
        *,
        durable: str | None = None,
        stream: str | None = None,
        max_ack_pending: int = 1000,
        ack_wait: Duration = 30.0,
        max_deliver: int = -1,
        backoff: Sequence[Duration] | None = None,
        deliver_policy: DeliverPolicy | str | None = None,
        opt_start_seq: int | None = None,
        opt_start_time: dt.datetime | None = None,
        headers_only: bool = False,
        inactive_threshold: Duration | None = None,
        description: str | None = None,
        group: str | None = None,
        priority_policy: PriorityPolicy | str | None = None,
        priority_groups: Sequence[str] | None = None,
        pinned_ttl: Duration | None = None,
        min_pending: int | None = None,
        min_ack_pending: int | None = None,
        timeout: float | None = None,
    ) -> PullSubscription:
        """A pull consumer read with ``fetch(batch, timeout=...)`` on your thread.

        With ``durable``, that durable consumer is created, or updated to these settings;
        without it, an ephemeral one (removed by the server ``inactive_threshold``, default
        5 minutes, after the last fetch; deleted by ``unsubscribe()``). The caller acks each
        message. Priority groups as for :meth:`subscribe`: every fetch pulls as a member of
        ``group`` (``fetch(group=, min_pending=, min_ack_pending=)`` may change that).
        """
        plan = ConsumerChoices.of(locals()).checked()
        wait = check_timeout(timeout, self.timeout)
        filters, stream, name, config = self._consumer_setup(
            subject, plan, max_deliver=max_deliver, timeout=wait
        )
        self._create_consumer(stream, name, config, timeout=wait)
        conn = self.client.connection()
        sub = PullSubscription(
            self,
            conn,
            subject=", ".join(filters),
            stream=stream,
            name=name,
            durable=plan.durable is not None,
            group=plan.pull_group,
        )
        return self._started(sub, conn, wait)

    # ---------------------------------------------------------------- subscribing: helpers
    def _consumer_setup(
        self, subject: Subjects, plan: ConsumerPlan, *, max_deliver: int, timeout: float
    ) -> tuple[tuple[str, ...], str, str, ConsumerConfig]:
        """Check a subscription's subjects and names, make the configuration of its
        (durable or ephemeral) consumer, and find its stream."""
        filters = subscription_filters(subject)
        name, config = plan.config(filters, max_deliver=max_deliver)
        stream = self._stream_of(filters, plan.choices.stream, timeout)
        return filters, stream, name, config

    def _consumer(
        self, subject: Subjects, plan: ConsumerPlan, *, max_deliver: int, timeout: float
    ) -> dict[str, Any]:
        """Create the consumer of a continuously pulling subscription, and return the
        subscription's arguments that do not depend on its kind."""
        prefetch = plan.prefetch()
        filters, stream, name, config = self._consumer_setup(
            subject, plan, max_deliver=max_deliver, timeout=timeout
        )
        self._create_consumer(stream, name, config, timeout=timeout)
        return {
            "subject": ", ".join(filters),
            "stream": stream,
            "name": name,
            "durable": plan.durable is not None,
            "config": config,
            "prefetch": prefetch,
            "conn": self.client.connection(),
            "queue_group": plan.queue_group,
            "leaser": Leaser(to_seconds(plan.ack_wait), plan.backoff_seconds),
            "pull_group": plan.pull_group,
            "expires": _pull_expires(plan.choices.pinned_ttl),
        }

    def _started(self, sub: SubT, conn: Connection, timeout: float) -> SubT:
        """Start ``sub`` on ``conn``; an ephemeral consumer it leaves behind if that fails
        is deleted."""
        try:
            sub._start(conn, timeout)
        except BaseException:
            if sub.durable is None:
                self._delete_quietly(sub.stream, sub.name)
            raise
        return sub

    def _ordered(
        self,
        kind: type[OrderedT],
        subject: Subjects,
        handler: Handler | None,
        choices: ConsumerChoices,
        *,
        error_callback: ErrorCallback | None,
        timeout: float | None,
    ) -> OrderedT:
        """Start an ordered subscription of ``kind``; ``_begin`` makes its first consumer
        here, and its keeper thread the next ones after a reset."""
        filters = subscription_filters(subject)
        settings = choices.ordered_settings()
        wait = check_timeout(timeout, self.timeout)
        stream = self._stream_of(filters, choices.stream, wait)
        conn = self.client.connection()
        sub = kind(
            self,
            filters=filters,
            stream=stream,
            conn=conn,
            handler=handler,
            error_callback=error_callback,
            **settings,
        )
        sub._begin(wait)
        return self._started(sub, conn, wait)


def _pull_expires(pinned_ttl: Duration | None) -> float:
    """How long a subscription's pull requests live: a pinned client keeps its pin only by
    pulling again within ``pinned_ttl``, so its requests end well before that."""
    if pinned_ttl is None:
        return PULL_EXPIRES
    return min(PULL_EXPIRES, max(to_seconds(pinned_ttl) / 3, 0.25))


def _expect(
    stream: str | None, last_seq: int | None, last_msg_id: str | None, last_subject_seq: int | None
) -> Expect | None:
    if stream is None and last_seq is None and last_msg_id is None and last_subject_seq is None:
        return None
    return Expect(stream, last_seq, last_msg_id, last_subject_seq)


def _with_fields(config: ConsumerConfig | None, fields: dict[str, Any]) -> ConsumerConfig:
    if config is not None and not isinstance(config, ConsumerConfig):
        raise TypeError("config must be a syncmsg.jetstream.ConsumerConfig")
    if not fields:
        return config if config is not None else ConsumerConfig()
    given = ConsumerConfig(**fields)
    if config is None:
        return given
    return config.model_copy(update={name: getattr(given, name) for name in given.model_fields_set})

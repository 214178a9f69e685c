"""The JetStream API of one client: streams, publishing and durable consumers.

Threading: every method runs on the calling thread and may be called from any thread but
the event-loop thread. API calls use the client's fast request path (a ``PUB`` in the
outbound queue and a ``threading.Event``); publishes the same, with acks coming to the
context's own inbox (see :mod:`syncmsg.jetstream._publish`). Only subscribing hands a
coroutine to the loop. Background threads are started by :meth:`JetStream.publish_async` (the acks
thread, see :mod:`syncmsg.jetstream._publish`) and by :meth:`JetStream.subscribe` (workers
and a keeper, see :mod:`syncmsg.jetstream._consumer`).
"""

from __future__ import annotations

import base64
import concurrent.futures
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from syncmsg._codec import Data, Headers
from syncmsg._deadline import check_timeout
from syncmsg._errors import (
    ConfigurationError,
    JetStreamError,
    StreamNotFoundError,
)
from syncmsg._msg import Msg
from syncmsg._retry import RetryPolicy
from syncmsg._subjects import (
    check_publish_subject,
    check_queue,
    check_subscribe_subject,
    check_token,
)
from syncmsg._types import ErrorCallback
from syncmsg.jetstream._api import ApiClient, Duration, parse_header_block, to_seconds
from syncmsg.jetstream._consumer import (
    ConsumerInfo,
    DeliverPolicy,
    JetStreamSubscription,
    PullSubscription,
    consumer_config,
)
from syncmsg.jetstream._deadletter import DeadLetterer
from syncmsg.jetstream._publish import MSG_ID, PubAck, Publisher
from syncmsg.jetstream._streams import StreamInfo, StreamSpec, drift

if TYPE_CHECKING:
    from syncmsg._client import Client

__all__ = ["DEFAULT_PUBLISH_RETRY", "JetStream"]

log = logging.getLogger("syncmsg.jetstream")

_STREAM_IN_USE = 10058

#: Publishes are retried for up to a minute: well inside the default two-minute duplicate
#: window, so a retry that crosses a server restart is still recognised as a duplicate.
DEFAULT_PUBLISH_RETRY = RetryPolicy(attempts=None, deadline=60.0, initial=0.1, maximum=2.0)
#: Management calls (stream and consumer info, create) ride out a short unavailability.
DEFAULT_API_RETRY = RetryPolicy(attempts=4, deadline=15.0, initial=0.2, maximum=2.0)


class JetStream:
    """JetStream on a :class:`~syncmsg.Client`; get it with ``client.jetstream()``.

    Options (keywords of ``client.jetstream(...)``):

    * ``timeout``: each API call's and each publish attempt's timeout (default: the
      client's ``timeout``).
    * ``domain`` or ``prefix``: reach the JetStream API of another domain / account.
    * ``publish_retry``: the :class:`~syncmsg.RetryPolicy` of publishes (default
      :data:`DEFAULT_PUBLISH_RETRY`: retry timeouts and lost connections for 60 s). Keep
      its deadline shorter than your streams' duplicate window, or a late retry may be
      stored twice.
    * ``no_responders_wait``: how long a publish that finds no stream keeps trying (a
      leader election, a restarting server), default 10 s.
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
        self._publisher = Publisher(
            client,
            timeout=self.timeout,
            retry=publish_retry or DEFAULT_PUBLISH_RETRY,
            no_responders_wait=no_responders_wait,
            max_pending=max_pending,
            lookup=self._stored_msg_id,
        )

    def __repr__(self) -> str:
        return f"<syncmsg.JetStream {self._api.prefix} on {self.client!r}>"

    # ================================================================ streams
    def ensure_stream(self, spec: StreamSpec, *, timeout: float | None = None) -> StreamInfo:
        """Make the stream exist as ``spec`` says: create it, or update it if it drifted.

        Idempotent, and safe when many processes run it at once: creating an identical
        stream succeeds, and an update to the same configuration is a no-op. Only the
        fields the spec sets are compared (see :func:`~syncmsg.jetstream.drift`).
        ``StreamInfo.action`` tells ``"created"``, ``"updated"`` or ``"unchanged"``
        (processes racing to create may each see ``"created"``). Raises
        :class:`~syncmsg.JetStreamError` when the server refuses the change (e.g. a
        different storage type).
        """
        if not isinstance(spec, StreamSpec):
            raise TypeError("ensure_stream() needs a syncmsg.StreamSpec")
        wanted = spec.to_api()
        try:
            data = self._api.request(f"STREAM.CREATE.{spec.name}", wanted, timeout=timeout)
            return StreamInfo.from_api(data, action="created")
        except JetStreamError as exc:
            if exc.err_code != _STREAM_IN_USE:
                raise
        current = self.stream_info(spec.name, timeout=timeout)
        changes = drift(wanted, current.raw.get("config") or {})
        if not changes:
            return StreamInfo.from_api(current.raw, action="unchanged")
        log.info(
            "syncmsg: stream %s drifted, updating: %s",
            spec.name,
            ", ".join(f"{k}: {have!r} -> {want!r}" for k, (want, have) in changes.items()),
        )
        config = dict(current.raw.get("config") or {})
        config.update(wanted)
        if "metadata" in wanted:
            config["metadata"] = {
                **(current.raw["config"].get("metadata") or {}),
                **wanted["metadata"],
            }
        data = self._api.request(f"STREAM.UPDATE.{spec.name}", config, timeout=timeout)
        return StreamInfo.from_api(data, action="updated")

    def add_stream(self, spec: StreamSpec, *, timeout: float | None = None) -> StreamInfo:
        """Create a stream; raises :class:`~syncmsg.JetStreamError` if one with a different
        configuration exists."""
        data = self._api.request(f"STREAM.CREATE.{spec.name}", spec.to_api(), timeout=timeout)
        return StreamInfo.from_api(data, action="created")

    def update_stream(self, spec: StreamSpec, *, timeout: float | None = None) -> StreamInfo:
        """Replace a stream's configuration with ``spec`` (fields it does not set are reset
        to their defaults; see :meth:`ensure_stream` to change only what drifted)."""
        data = self._api.request(f"STREAM.UPDATE.{spec.name}", spec.to_api(), timeout=timeout)
        return StreamInfo.from_api(data, action="updated")

    def stream_info(self, name: str, *, timeout: float | None = None) -> StreamInfo:
        """The stream's configuration and state; raises :class:`~syncmsg.StreamNotFoundError`."""
        check_token(name, "stream name")
        return StreamInfo.from_api(self._api.request(f"STREAM.INFO.{name}", None, timeout=timeout))

    def delete_stream(self, name: str, *, timeout: float | None = None) -> None:
        """Delete the stream and its messages; raises :class:`~syncmsg.StreamNotFoundError`."""
        check_token(name, "stream name")
        self._api.request(f"STREAM.DELETE.{name}", None, timeout=timeout, idempotent=False)

    def purge_stream(
        self, name: str, *, subject: str | None = None, timeout: float | None = None
    ) -> int:
        """Remove the stream's messages (those on ``subject`` only, if given); returns how many."""
        check_token(name, "stream name")
        body = {"filter": subject} if subject else None
        data = self._api.request(f"STREAM.PURGE.{name}", body, timeout=timeout, idempotent=False)
        return int(data.get("purged", 0))

    def stream_names(
        self, subject: str | None = None, *, timeout: float | None = None
    ) -> list[str]:
        """Names of all streams, or of those capturing ``subject``."""
        names: list[str] = []
        offset = 0
        while True:
            body: dict[str, Any] = {"offset": offset}
            if subject:
                body["subject"] = subject
            data = self._api.request("STREAM.NAMES", body, timeout=timeout)
            page = data.get("streams") or []
            names.extend(page)
            offset += len(page)
            if not page or offset >= int(data.get("total", 0)):
                return names

    def find_stream(self, subject: str, *, timeout: float | None = None) -> str:
        """The stream that captures ``subject``; raises :class:`~syncmsg.StreamNotFoundError`."""
        names = self.stream_names(subject, timeout=timeout)
        if not names:
            raise StreamNotFoundError(f"no stream captures {subject!r}")
        if len(names) > 1:
            raise JetStreamError(f"several streams capture {subject!r}: {names}; pass stream=")
        return names[0]

    def get_msg(self, stream: str, seq: int, *, timeout: float | None = None) -> Msg:
        """The message stored at ``seq`` in ``stream`` (its ``headers`` included)."""
        check_token(stream, "stream name")
        data = self._api.request(f"STREAM.MSG.GET.{stream}", {"seq": int(seq)}, timeout=timeout)
        raw = data.get("message") or {}
        headers = parse_header_block(base64.b64decode(raw["hdrs"])) if raw.get("hdrs") else None
        payload = base64.b64decode(raw.get("data") or b"")
        return Msg(str(raw.get("subject", "")), payload, headers or None)

    def _stored_msg_id(self, stream: str, seq: int) -> str | None:
        """The ``Nats-Msg-Id`` of the message at ``seq`` (None if there is none)."""
        try:
            stored = self.get_msg(stream, seq)
        except JetStreamError:
            return None
        return (stored.headers or {}).get(MSG_ID)

    # ================================================================ consumers
    def consumer_info(
        self, stream: str, durable: str, *, timeout: float | None = None
    ) -> ConsumerInfo:
        """The durable consumer's configuration and state; raises
        :class:`~syncmsg.ConsumerNotFoundError` (or StreamNotFoundError)."""
        check_token(stream, "stream name")
        check_token(durable, "consumer name")
        data = self._api.request(f"CONSUMER.INFO.{stream}.{durable}", None, timeout=timeout)
        return ConsumerInfo.from_api(data)

    def delete_consumer(self, stream: str, durable: str, *, timeout: float | None = None) -> None:
        """Delete a durable consumer (and its acknowledgement state)."""
        check_token(stream, "stream name")
        check_token(durable, "consumer name")
        self._api.request(
            f"CONSUMER.DELETE.{stream}.{durable}", None, timeout=timeout, idempotent=False
        )

    def _create_consumer(
        self, stream: str, durable: str, config: dict[str, Any], timeout: float | None = None
    ) -> ConsumerInfo:
        """Create the durable consumer, or update it to ``config`` if it exists."""
        body = {"stream_name": stream, "config": config}
        data = self._api.request(f"CONSUMER.CREATE.{stream}.{durable}", body, timeout=timeout)
        return ConsumerInfo.from_api(data)

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
        timeout: float | None = None,
    ) -> PubAck:
        """Store a message in the stream that captures ``subject`` and return its PubAck.

        Exactly once within the stream's duplicate window: the message carries
        ``Nats-Msg-Id`` (``msg_id``, or a unique id made once for this call) and every retry
        reuses it, so ``PubAck.duplicate`` is True when an earlier attempt had got through.
        Timeouts (``timeout`` bounds each attempt), lost connections and missing responders
        are retried per the context's ``publish_retry``. Returns a PubAck or raises: a
        :class:`~syncmsg.TimeoutError` when retries ran out,
        :class:`~syncmsg.NoRespondersError` when no stream captures the subject,
        :class:`~syncmsg.WrongLastSequenceError` when ``expected_stream`` /
        ``expected_last_seq`` do not hold, or another :class:`~syncmsg.JetStreamError`.
        """
        return self._publisher.publish(
            subject,
            data,
            msg_id=msg_id,
            headers=headers,
            expected_stream=expected_stream,
            expected_last_seq=expected_last_seq,
            timeout=timeout,
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
        timeout: float | None = None,
    ) -> concurrent.futures.Future[PubAck]:
        """Send without waiting for the ack; the future resolves to the PubAck or the error.

        At most ``max_pending`` messages wait for acks: beyond that this call blocks (up to
        ``timeout``, then :class:`~syncmsg.TimeoutError`) until acks free room. Retries and
        exactly-once work as in :meth:`publish`. The futures are resolved, and their
        done-callbacks run, on the context's ``syncmsg-js-acks-N`` thread, never on the
        event-loop thread; keep callbacks short. Call :meth:`flush` to wait for every ack.
        """
        return self._publisher.publish_async(
            subject,
            data,
            msg_id=msg_id,
            headers=headers,
            expected_stream=expected_stream,
            expected_last_seq=expected_last_seq,
            timeout=timeout,
        )

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every :meth:`publish_async` so far is resolved (acked or failed).

        Raises :class:`~syncmsg.TimeoutError` if some are still waiting after ``timeout``.
        Errors are not raised here: they are on the futures.
        """
        self._publisher.flush(timeout)

    @property
    def pending_acks(self) -> int:
        """How many ``publish_async`` messages still wait for their ack."""
        return self._publisher.outstanding

    # ================================================================ subscribing
    def subscribe(
        self,
        subject: str,
        handler: Callable[[Msg], Any],
        *,
        durable: str,
        stream: str | None = None,
        queue: str | None = None,
        manual_ack: bool = False,
        workers: int | None = None,
        max_ack_pending: int = 1000,
        ack_wait: Duration = 30.0,
        max_deliver: int = 5,
        backoff: Sequence[Duration] | None = None,
        dead_letter: str | None = None,
        deliver_policy: DeliverPolicy | str = DeliverPolicy.ALL,
        prefetch: int | None = None,
        description: str | None = None,
        error_callback: ErrorCallback | None = None,
        timeout: float | None = None,
    ) -> JetStreamSubscription:
        """Run ``handler(msg)`` on worker threads for each message of a durable consumer.

        The durable pull consumer ``durable`` on ``stream`` (default: the stream capturing
        ``subject``) is created, or updated to these settings. Every process subscribing
        with the same ``durable`` shares its messages, so ``queue`` is accepted for
        familiarity and changes nothing. ``workers`` threads (default ``config.workers``)
        run the handler.

        * Acks: unless ``manual_ack``, the handler's return acks the message. An exception
          naks it, delayed by ``backoff[delivery - 1]`` (the last step repeats) if given.
          Any thread may call ``msg.ack()/nak()/term()/in_progress()``; only the first
          ack, nak or term counts.
        * Leases: a message held longer than half of ``ack_wait`` (or of the shortest
          backoff step), queued or in a handler, gets ``in_progress`` automatically.
        * Flow control: at most ``prefetch`` (default ``min(max_ack_pending, 256)``)
          messages are held by this subscription, and the server keeps the whole consumer
          under ``max_ack_pending`` unacknowledged messages.
        * Poison messages: when delivery number ``max_deliver`` fails, the message is
          published to ``dead_letter`` (if given; see :mod:`syncmsg.jetstream._deadletter`
          for its headers) and terminated. With a dead-letter subject the server allows one
          spare delivery, used only to retry a dead letter that could not be published.

        ``ack_wait`` and ``backoff`` take seconds or timedeltas.
        """
        if not callable(handler):
            raise TypeError("handler must be callable")
        check_subscribe_subject(subject)
        check_token(durable, "durable name")
        queue_group = check_queue(queue)
        if dead_letter is not None:
            check_publish_subject(dead_letter, "dead_letter subject")
        workers = workers or self.client.config.workers
        if workers < 1:
            raise ValueError("workers must be at least 1")
        prefetch = prefetch or min(max_ack_pending, 256)
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        prefetch = min(prefetch, max_ack_pending)
        wait = check_timeout(timeout, self.timeout)
        stream = stream or self.find_stream(subject, timeout=wait)
        spare = 1 if dead_letter is not None and max_deliver > 0 else 0
        config = consumer_config(
            durable,
            subject,
            ack_wait=ack_wait,
            max_deliver=max_deliver + spare if max_deliver > 0 else max_deliver,
            max_ack_pending=max_ack_pending,
            backoff=backoff,
            deliver_policy=deliver_policy,
            description=description,
        )
        if backoff and max_deliver > 0 and max_deliver <= len(backoff):
            raise ValueError("max_deliver must be larger than the number of backoff steps")
        self._create_consumer(stream, durable, config, timeout=wait)
        conn = self.client.connection()
        sub = JetStreamSubscription(
            self,
            subject=subject,
            stream=stream,
            durable=durable,
            queue_group=queue_group,
            handler=handler,
            manual_ack=manual_ack,
            workers=workers,
            prefetch=prefetch,
            ack_wait=to_seconds(ack_wait),
            backoff=tuple(to_seconds(b) for b in backoff or ()),
            max_deliver=max_deliver,
            dead_letter=DeadLetterer(self, dead_letter, self.timeout) if dead_letter else None,
            error_callback=error_callback,
            consumer_request=config,
            conn=conn,
        )
        sub._start(conn, wait)
        return sub

    def pull_subscribe(
        self,
        subject: str,
        *,
        durable: str,
        stream: str | None = None,
        max_ack_pending: int = 1000,
        ack_wait: Duration = 30.0,
        max_deliver: int = -1,
        backoff: Sequence[Duration] | None = None,
        deliver_policy: DeliverPolicy | str = DeliverPolicy.ALL,
        timeout: float | None = None,
    ) -> PullSubscription:
        """A durable pull consumer read with ``fetch(batch, timeout=...)`` on your thread.

        The consumer is created, or updated to these settings. The caller acks each message.
        """
        check_subscribe_subject(subject)
        check_token(durable, "durable name")
        wait = check_timeout(timeout, self.timeout)
        stream = stream or self.find_stream(subject, timeout=wait)
        config = consumer_config(
            durable,
            subject,
            ack_wait=ack_wait,
            max_deliver=max_deliver,
            max_ack_pending=max_ack_pending,
            backoff=backoff,
            deliver_policy=deliver_policy,
        )
        self._create_consumer(stream, durable, config, timeout=wait)
        conn = self.client.connection()
        sub = PullSubscription(self, conn, subject=subject, stream=stream, durable=durable)
        sub._start(conn, wait)
        return sub

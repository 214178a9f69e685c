"""Atomic batch publishing (nats-server 2.12, ADR-50): a stream stores all of a batch's
messages or none of them.

Threading: :meth:`BatchPublisher.publish_batch` runs on the caller's thread. Its messages
go through the connection's outbound queue in order (one FIFO): the first as a request
(the server answers it with an empty message, or an error, such as a stream without
``allow_atomic``), the middle ones as plain publishes, the last as a request again, whose
answer is the batch's PubAck.

The protocol: every message carries ``Nats-Batch-Id`` (a random id of this attempt) and
``Nats-Batch-Sequence`` (1, 2, ...); the last also ``Nats-Batch-Commit: 1``. The server
stages the messages and, at the commit, checks every message's expectations against the
stream as it was before the batch, then stores them all, or none: a failed expectation, a
gap (a message lost on the way), a duplicate ``Nats-Msg-Id`` or a batch larger than the
server allows (1000 messages by default) fails the whole batch with the error of the
commit.

Retries: until the commit is sent nothing can have been stored, so a failure that may pass
(no responders during a leader election, a timeout, a lost connection) starts the batch
again under a new id, within the context's publish retry policy; the staged messages of
the abandoned attempt are dropped by the server 10 s later. After the commit was sent, a
lost answer is not retried: the stream is read to see whether the batch's last message is
there (then its PubAck is returned), else the error is raised.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from syncmsg._codec import Data, Headers, encode_headers, encode_payload, pub_command
from syncmsg._deadline import check_timeout
from syncmsg._errors import (
    LoopThreadError,
    NoRespondersError,
    NotSupportedError,
    PayloadTooLargeError,
    SyncMsgError,
)
from syncmsg._retry import RetryPolicy
from syncmsg._subjects import check_publish_subject
from syncmsg.jetstream._api import is_retryable
from syncmsg.jetstream._features import ATOMIC_PUBLISH
from syncmsg.jetstream._models import Duration, PubAck, RawStreamMsg
from syncmsg.jetstream._publish import (
    EXPECTED_LAST_MSG_ID,
    EXPECTED_LAST_SEQ,
    MSG_ID,
    TTL,
    Expect,
    Tries,
    parse_pub_ack,
    should_retry,
    ttl_header,
)

if TYPE_CHECKING:
    from syncmsg._client import Client
    from syncmsg._connection import Connection

__all__ = [
    "BATCH_COMMIT",
    "BATCH_ID",
    "BATCH_SEQUENCE",
    "BatchMessage",
    "BatchPublisher",
    "prepare_batch",
]

log = logging.getLogger("syncmsg.jetstream")

BATCH_ID = "Nats-Batch-Id"
BATCH_SEQUENCE = "Nats-Batch-Sequence"
BATCH_COMMIT = "Nats-Batch-Commit"
#: Headers syncmsg sets itself, or that a batch cannot carry.
_NOT_YOURS = frozenset(
    {BATCH_ID.lower(), BATCH_SEQUENCE.lower(), BATCH_COMMIT.lower(), EXPECTED_LAST_MSG_ID.lower()}
)
#: The batch headers take at most this many bytes of a message (for the max_payload check).
_BATCH_HEADERS_SIZE = 128


@dataclasses.dataclass(frozen=True)
class BatchMessage:
    """One message of :meth:`JetStream.publish_batch`, with what a publish may say about it.

    ``data`` is encoded as everywhere in syncmsg; ``msg_id`` makes a batch sent again
    refused as a duplicate (nats-server 2.12.1) instead of stored twice;
    ``expected_last_seq`` is allowed on the first message only (the stream's last sequence
    before the batch), ``expected_last_subject_seq`` on any message whose subject no earlier
    message of the batch writes, ``expected_stream`` on any.
    """

    subject: str
    data: Data = b""
    headers: Headers | None = None
    msg_id: str | None = None
    ttl: Duration | None = None
    expected_stream: str | None = None
    expected_last_seq: int | None = None
    expected_last_subject_seq: int | None = None


class _Prepared:
    """A checked and encoded batch message; its header block is made per attempt."""

    __slots__ = ("headers", "payload", "subject")

    def __init__(self, subject: str, payload: bytes, headers: dict[str, Any]) -> None:
        self.subject = subject
        self.payload = payload
        self.headers = headers

    def command(self, batch_id: str, seq: int, *, commit: bool, reply: str = "") -> bytes:
        return pub_command(self.subject, reply, self.payload, self.block(batch_id, seq, commit))

    def block(self, batch_id: str, seq: int, commit: bool) -> bytes:
        headers = {**self.headers, BATCH_ID: batch_id, BATCH_SEQUENCE: str(seq)}
        if commit:
            headers[BATCH_COMMIT] = "1"
        block = encode_headers(headers)
        assert block is not None  # never empty: it has the batch headers
        return block


def _as_message(item: Any, index: int) -> BatchMessage:
    if isinstance(item, BatchMessage):
        return item
    if isinstance(item, tuple) and len(item) in (2, 3) and isinstance(item[0], str):
        return BatchMessage(*item)
    raise TypeError(
        f"message {index} of the batch is a {type(item).__name__}: give a BatchMessage, "
        "(subject, data) or (subject, data, headers)"
    )


def prepare_batch(messages: Iterable[Any], max_payload: int) -> list[_Prepared]:
    """Check and encode every message of a batch; raises (``ValueError``, ``TypeError``,
    :class:`~syncmsg.InvalidSubjectError`, :class:`~syncmsg.PayloadError` ...) before
    anything reaches the wire."""
    if isinstance(messages, str | bytes | Mapping):
        raise TypeError("publish_batch() takes a list of messages")
    batch = [_as_message(item, index) for index, item in enumerate(messages)]
    if not batch:
        raise ValueError("a batch needs at least one message")
    prepared = []
    for index, message in enumerate(batch):
        check_publish_subject(message.subject)
        payload = encode_payload(message.data)
        headers: dict[str, Any] = dict(message.headers) if message.headers else {}
        wrong = sorted(key for key in headers if key.lower() in _NOT_YOURS)
        if wrong:
            raise ValueError(
                f"message {index} of the batch: {', '.join(wrong)} cannot be given "
                "(syncmsg sets the batch headers; a batch cannot expect a last message id)"
            )
        if message.expected_last_seq is not None and index > 0:
            raise ValueError(
                f"message {index} of the batch: only the first message may have "
                "expected_last_seq (the stream's last sequence before the batch)"
            )
        if index > 0 and any(key.lower() == EXPECTED_LAST_SEQ.lower() for key in headers):
            raise ValueError(
                f"message {index} of the batch: only the first message may "
                f"carry {EXPECTED_LAST_SEQ}"
            )
        expect = Expect(
            message.expected_stream,
            message.expected_last_seq,
            None,
            message.expected_last_subject_seq,
        )
        headers.update(expect.headers())
        if message.msg_id is not None:
            if not isinstance(message.msg_id, str) or not message.msg_id:
                raise ValueError(f"message {index} of the batch: msg_id must be a non-empty str")
            headers[MSG_ID] = message.msg_id
        if message.ttl is not None:
            headers[TTL] = ttl_header(message.ttl)
        encode_headers(headers)  # check them now
        size = len(payload) + len(encode_headers(headers) or b"") + _BATCH_HEADERS_SIZE
        if size > max_payload:
            raise PayloadTooLargeError(
                f"message {index} of the batch: {size} bytes is more than the server's "
                f"max_payload ({max_payload}) on {message.subject!r}"
            )
        prepared.append(_Prepared(message.subject, payload, headers))
    return prepared


#: ``find_committed(subject, batch_id)``: the batch's last message if the stream has it.
FindCommitted = Callable[[str, str], "RawStreamMsg | None"]


class BatchPublisher:
    """Atomic batches for one JetStream context."""

    def __init__(
        self,
        client: Client,
        *,
        timeout: float,
        retry: RetryPolicy,
        no_responders_wait: float,
        find_committed: FindCommitted,
    ) -> None:
        self._client = client
        self.timeout = timeout
        self.retry = retry
        self.no_responders_wait = no_responders_wait
        self._find_committed = find_committed

    def publish_batch(self, messages: Iterable[Any], timeout: float | None) -> PubAck:
        client = self._client
        conn = client.connection()
        if conn.in_loop_thread():
            raise LoopThreadError("js.publish_batch() cannot be called from the event loop thread")
        wait = check_timeout(timeout, self.timeout)
        batch = prepare_batch(messages, conn.max_payload)
        tries = Tries()
        committing: list[str] = []  # the batch id whose commit was sent

        def attempt(left: float | None) -> PubAck:
            tries.attempts += 1
            limit = wait if left is None else min(wait, left)
            return self._send(client.connection(), batch, limit, committing)

        def retry(exc: BaseException) -> bool:
            return not committing and should_retry(exc, tries, self.no_responders_wait)

        started = time.monotonic()
        try:
            try:
                return attempt(None)
            except Exception as exc:
                if not retry(exc):
                    raise
                log.debug("syncmsg: batch not started (%s); starting it again", exc)
                if isinstance(exc, NoRespondersError):
                    time.sleep(self.retry.initial)
            policy = self.retry
            deadline = started + policy.deadline if policy.deadline else None
            return policy.call(attempt, deadline=deadline, should_retry=retry)
        except SyncMsgError as exc:
            if committing and is_retryable(exc):
                found = self._committed(batch, committing[-1], len(batch))
                if found is not None:
                    return found
            raise

    def _send(
        self, conn: Connection, batch: list[_Prepared], timeout: float, committing: list[str]
    ) -> PubAck:
        batch_id = secrets.token_urlsafe(16)
        first = batch[0]
        if len(batch) > 1:
            reply = conn.request(
                first.subject, first.payload, first.block(batch_id, 1, False), timeout
            )
            if reply.data:  # an error (or a server that does not know batches)
                raise _refused(parse_pub_ack(reply.data), len(batch))
            for seq, message in enumerate(batch[1:-1], start=2):
                command = message.command(batch_id, seq, commit=False)
                conn.enqueue(command, len(message.payload))
        last = batch[-1]
        committing.append(batch_id)
        reply = conn.request(
            last.subject, last.payload, last.block(batch_id, len(batch), True), timeout
        )
        ack = parse_pub_ack(reply.data)
        if ack.batch != batch_id:
            raise _refused(ack, len(batch))
        return ack

    def _committed(self, batch: list[_Prepared], batch_id: str, size: int) -> PubAck | None:
        """The batch's PubAck if its last message is in the stream (its commit's answer
        was lost), else None."""
        try:
            stored = self._find_committed(batch[-1].subject, batch_id)
        except SyncMsgError as exc:
            log.warning("syncmsg: could not tell whether batch %s was stored: %s", batch_id, exc)
            return None
        if stored is None:
            return None
        return PubAck(stream=stored.stream, seq=stored.seq, batch=batch_id, count=size)


def _refused(ack: PubAck, size: int) -> NotSupportedError:
    """A first message answered with a PubAck, or a commit answered without the batch:
    the server stored a message on its own, it does not know atomic batches (the API level
    check before the batch makes this a server that lied about its level)."""
    return NotSupportedError(
        f"the server stored a message of a {size}-message batch on its own (stream "
        f"{ack.stream!r}, seq {ack.seq}): it does not support atomic batches",
        feature=ATOMIC_PUBLISH.name,
        required_level=ATOMIC_PUBLISH.level,
        stream=ack.stream,
    )

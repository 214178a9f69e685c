"""Publishing to streams: messages with their ids and expectations, acks, synchronous retries.

Threading: :meth:`Publisher.publish` runs entirely on the caller's thread: it builds the
``HPUB`` command and sends it as a request on the connection (the core's reply mux wakes it
when the ack arrives), then parses the ack. Retries sleep on the caller's thread too. The
pipelined form is :mod:`syncmsg.jetstream._publish_async`; both share :func:`prepare` and
:func:`parse_pub_ack`.

Exactly once: every logical message carries a ``Nats-Msg-Id`` (the caller's, or one made
here once) that every retry reuses, so the stream stores it once however often it is sent,
as long as the retries happen within the stream's duplicate window.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from syncmsg import _instrumentation
from syncmsg._codec import Data, Headers, encode_headers, encode_payload
from syncmsg._deadline import check_timeout
from syncmsg._errors import (
    ApiErrorCode,
    JetStreamError,
    LoopThreadError,
    NoRespondersError,
    PayloadTooLargeError,
    map_api_error,
)
from syncmsg._retry import RetryPolicy
from syncmsg._subjects import check_publish_subject
from syncmsg.jetstream._api import is_retryable
from syncmsg.jetstream._models import API, Duration, PubAck, RawStreamMsg, to_nanos

if TYPE_CHECKING:
    from syncmsg._client import Client
    from syncmsg._connection import Connection

__all__ = [
    "MSG_ID",
    "TTL",
    "Expect",
    "Message",
    "Publisher",
    "new_msg_id",
    "parse_pub_ack",
    "prepare",
]

log = logging.getLogger("syncmsg.jetstream")

MSG_ID = "Nats-Msg-Id"
TTL = "Nats-TTL"
EXPECTED_STREAM = "Nats-Expected-Stream"
EXPECTED_LAST_SEQ = "Nats-Expected-Last-Sequence"
EXPECTED_LAST_MSG_ID = "Nats-Expected-Last-Msg-Id"
EXPECTED_LAST_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"

_NANOS = 1_000_000_000


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


@dataclasses.dataclass(frozen=True)
class Expect:
    """What must hold in the stream for a publish to be stored (else
    :class:`~syncmsg.WrongLastSequenceError`): the target stream's name, its last
    sequence, its last message id, or the last sequence of the message's own subject
    (0: the subject has no message yet)."""

    stream: str | None = None
    last_seq: int | None = None
    last_msg_id: str | None = None
    last_subject_seq: int | None = None

    def __post_init__(self) -> None:
        for name in ("last_seq", "last_subject_seq"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise ValueError(f"expected_{name} must be a non-negative integer")
        for name in ("stream", "last_msg_id"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"expected_{name} must be a non-empty string")

    def headers(self) -> dict[str, str]:
        found = {
            EXPECTED_STREAM: self.stream,
            EXPECTED_LAST_SEQ: self.last_seq,
            EXPECTED_LAST_MSG_ID: self.last_msg_id,
            EXPECTED_LAST_SUBJECT_SEQ: self.last_subject_seq,
        }
        return {key: str(value) for key, value in found.items() if value is not None}


def ttl_header(ttl: Duration) -> str:
    """The ``Nats-TTL`` value for ``ttl`` (seconds or a timedelta, at least one second):
    whole seconds as a number, anything else as a Go duration (``1500ms``)."""
    nanos = to_nanos(ttl)
    if nanos < _NANOS:
        raise ValueError(f"ttl must be at least one second, got {ttl!r}")
    if nanos % _NANOS == 0:
        return str(nanos // _NANOS)
    return f"{nanos // 1_000_000}ms"


class Message:
    """One logical message: encoded once, sent as often as retries need."""

    __slots__ = ("block", "expect", "msg_id", "payload", "subject")

    def __init__(
        self,
        subject: str,
        payload: bytes,
        block: bytes | None,
        msg_id: str,
        expect: Expect | None = None,
    ) -> None:
        self.subject = subject
        self.payload = payload
        self.block = block
        self.msg_id = msg_id
        self.expect = expect


def prepare(
    subject: str,
    data: Data,
    msg_id: str | None,
    headers: Headers | None,
    expect: Expect | None,
    ttl: Duration | None,
    conn: Connection,
) -> Message:
    """Check and encode one message: its payload, its id and the headers that carry the
    expectations and the TTL. Raises before anything reaches the wire."""
    check_publish_subject(subject)
    payload = encode_payload(data)
    if msg_id is None and headers and isinstance(headers.get(MSG_ID), str):
        msg_id = str(headers[MSG_ID])  # the caller's id, given as a header
    if msg_id is None:
        msg_id = _ids.next()
        if not headers and expect is None and ttl is None:
            # The common case, built directly: our ids are plain ASCII.
            block = b"NATS/1.0\r\nNats-Msg-Id: %s\r\n\r\n" % msg_id.encode()
            return _checked(Message(subject, payload, block, msg_id), conn)
    elif not isinstance(msg_id, str) or not msg_id:
        raise ValueError("msg_id must be a non-empty string")
    merged: dict[str, Any] = dict(headers) if headers else {}
    merged[MSG_ID] = msg_id
    if expect is not None:
        merged.update(expect.headers())
    if ttl is not None:
        merged[TTL] = ttl_header(ttl)
    return _checked(Message(subject, payload, encode_headers(merged), msg_id, expect), conn)


def _checked(message: Message, conn: Connection) -> Message:
    size = len(message.payload) + (len(message.block) if message.block else 0)
    if size > conn.max_payload:
        raise PayloadTooLargeError(
            f"{size} bytes is more than the server's max_payload ({conn.max_payload}) "
            f"on {message.subject!r}"
        )
    return message


# Given a stream, a sequence (or None) and a subject (or None): the message stored there
# (at the sequence, or the subject's last), None when there is none.
StoredLookup = Callable[[str, "int | None", "str | None"], "RawStreamMsg | None"]
#: ``check(subject, timeout)``: raises :class:`~syncmsg.NoRespondersError` when the JetStream
#: API answers that no stream captures ``subject``; returns when it does, or gives no answer.
CaptureCheck = Callable[[str, float], None]


def parse_pub_ack(
    reply: bytes,
    message: Message | None = None,
    attempts: int = 1,
    lookup: StoredLookup | None = None,
) -> PubAck:
    """The PubAck in a reply, or the syncmsg error its ``{"error": ...}`` stands for.

    The server checks ``expected_last_seq`` and ``expected_last_subject_seq`` before it
    looks for duplicates, so a retry of a message whose first attempt was stored (and whose
    ack was lost) is refused with "wrong last sequence". On a retry, that answer is checked
    against the stream: if our message id is where the first attempt would have put it
    (right after the expected sequence, or last on its subject), the publish did succeed
    (a duplicate).
    """
    try:
        # As the server's answer (context=API): fields a newer server adds are kept, while
        # the same fields given by hand would be refused as typos.
        ack = PubAck.model_validate_json(reply, context=API)
    except ValidationError:
        ack = None
    if ack is not None and not (ack.model_extra and "error" in ack.model_extra):
        return ack
    try:
        data = json.loads(reply)
        error = data["error"]
        stream = data.get("stream")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise JetStreamError(f"not a publish ack: {reply[:200]!r}") from None
    mapped = map_api_error(error, stream=stream if isinstance(stream, str) and stream else None)
    if (
        mapped.err_code == ApiErrorCode.WRONG_LAST_SEQUENCE
        and attempts > 1
        and message is not None
        and message.expect is not None
        and lookup is not None
        and isinstance(stream, str)
        and stream
    ):
        earlier = _earlier_attempt(stream, message, message.expect, lookup)
        if earlier is not None:
            return earlier
    raise mapped


def _earlier_attempt(
    stream: str, message: Message, expect: Expect, lookup: StoredLookup
) -> PubAck | None:
    if expect.last_seq is not None:
        stored = lookup(stream, expect.last_seq + 1, None)
    elif expect.last_subject_seq is not None:
        stored = lookup(stream, None, message.subject)
    else:
        return None
    if stored is None or (stored.headers or {}).get(MSG_ID) != message.msg_id:
        return None
    return PubAck(stream=stream, seq=stored.seq, duplicate=True)


class Tries:
    """How one logical message's attempts went, for the retry decisions."""

    __slots__ = ("attempts", "no_responders_since")

    def __init__(self) -> None:
        self.attempts = 0
        self.no_responders_since: float | None = None


def should_retry(exc: BaseException, tries: Tries, no_responders_wait: float) -> bool:
    """Whether another attempt of a publish may succeed."""
    if isinstance(exc, NoRespondersError):
        # No stream listens (yet): a leader election or a restarting server answers
        # within seconds; a subject no stream captures never will.
        now = time.monotonic()
        if tries.no_responders_since is None:
            tries.no_responders_since = now
        return now - tries.no_responders_since < no_responders_wait
    return is_retryable(exc)


class Publisher:
    """Synchronous publishing for one JetStream context."""

    def __init__(
        self,
        client: Client,
        *,
        timeout: float,
        retry: RetryPolicy,
        no_responders_wait: float,
        lookup: StoredLookup | None = None,
        check_captured: CaptureCheck | None = None,
    ) -> None:
        self._client = client
        self.timeout = timeout
        self.retry = retry
        self.no_responders_wait = no_responders_wait
        self._lookup = lookup
        self._check_captured = check_captured

    def publish(
        self,
        subject: str,
        data: Data,
        *,
        msg_id: str | None,
        headers: Headers | None,
        expect: Expect | None,
        ttl: Duration | None,
        timeout: float | None,
    ) -> PubAck:
        tracing = _instrumentation.active
        if tracing is not None and type(headers) is not _instrumentation.TracedHeaders:
            ack: PubAck = tracing.js_publish(  # calls back with the context in the headers
                self.publish, subject, data=data, msg_id=msg_id, headers=headers,
                expect=expect, ttl=ttl, timeout=timeout,
            )  # fmt: skip
            return ack
        client = self._client
        conn = client.connection()
        if conn.in_loop_thread():
            raise LoopThreadError("js.publish() cannot be called from the event loop thread")
        wait = check_timeout(timeout, self.timeout)
        message = prepare(subject, data, msg_id, headers, expect, ttl, conn)
        started = time.monotonic()
        tries = Tries()
        lookup = self._lookup

        def once(left: float | None) -> PubAck:
            tries.attempts += 1
            limit = wait if left is None else min(wait, left)
            answer = client.connection().request(
                message.subject, message.payload, message.block, limit
            )
            return parse_pub_ack(answer.data, message, tries.attempts, lookup)

        def retry(exc: BaseException) -> bool:
            first_no_responders = (
                isinstance(exc, NoRespondersError) and tries.no_responders_since is None
            )
            if first_no_responders and self._check_captured is not None:
                # Waiting out no_responders_wait helps an election or a restart, never a
                # subject that no stream captures: the API says which, and then it ends here.
                self._check_captured(message.subject, wait)
            return should_retry(exc, tries, self.no_responders_wait)

        try:
            return once(None)  # the common case, without the retry machinery
        except Exception as exc:
            if not retry(exc):
                raise
            log.debug("syncmsg: publish to %r failed (%s); retrying", subject, exc)
            if isinstance(exc, NoRespondersError):
                time.sleep(self.retry.initial)
        policy = self.retry
        deadline = started + policy.deadline if policy.deadline else None
        return policy.call(once, deadline=deadline, should_retry=retry)

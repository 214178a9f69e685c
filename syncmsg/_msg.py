"""Received messages, and the acknowledgement protocol of JetStream.

Threading: a :class:`Msg` is created on the event-loop thread and handed to a worker thread
(or to a caller of ``next_msg``). Every method is safe from any thread but the loop: replies
and acks are published through the client that received the message (its
:class:`~syncmsg._types.Responder`), appended to the outbound queue without waiting for the
loop, except :meth:`Msg.ack_sync`, which waits for the server's confirmation with a timeout.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from syncmsg import _instrumentation
from syncmsg._codec import Data, Headers, decode_json, decode_model

if TYPE_CHECKING:
    from syncmsg._types import Responder

__all__ = ["Msg", "MsgMetadata"]

ModelT = TypeVar("ModelT", bound=BaseModel)

_ACK_PREFIX = "$JS.ACK."
_terminal_lock = threading.Lock()


@dataclasses.dataclass(frozen=True)
class MsgMetadata:
    """JetStream delivery facts, parsed from the message's ack subject."""

    stream: str
    consumer: str
    num_delivered: int
    sequence_stream: int
    sequence_consumer: int
    num_pending: int
    timestamp: dt.datetime
    domain: str | None = None

    @classmethod
    def from_reply(cls, reply: str) -> MsgMetadata | None:
        """Parse ``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>``.

        Also reads the newer form with a domain and an account hash before the stream.
        Returns None when ``reply`` is not a JetStream ack subject.
        """
        if not reply.startswith(_ACK_PREFIX):
            return None
        tokens = reply.split(".")
        if len(tokens) == 9:
            domain = None
            stream, consumer, delivered, sseq, cseq, ts, pending = tokens[2:9]
        elif len(tokens) >= 12:
            domain = None if tokens[2] == "_" else tokens[2]
            stream, consumer, delivered, sseq, cseq, ts, pending = tokens[4:11]
        else:
            return None
        try:
            stamp = dt.datetime.fromtimestamp(int(ts) / 1e9, tz=dt.timezone.utc)
            return cls(
                stream=stream,
                consumer=consumer,
                num_delivered=int(delivered),
                sequence_stream=int(sseq),
                sequence_consumer=int(cseq),
                num_pending=int(pending),
                timestamp=stamp,
                domain=domain,
            )
        except ValueError:
            return None


class Msg:
    """A message as received: ``subject``, ``data`` (bytes), ``headers``, ``reply``.

    ``headers`` maps each key to its (last) value; it is ``None`` when the message had none.
    """

    __slots__ = ("_client", "_done", "_metadata", "data", "headers", "reply", "subject")

    def __init__(
        self,
        subject: str,
        data: bytes,
        headers: dict[str, str] | None = None,
        reply: str = "",
        client: Responder | None = None,
    ) -> None:
        self.subject = subject
        self.data = data
        self.headers = headers
        self.reply = reply
        self._client = client
        self._done = False
        self._metadata: MsgMetadata | None = None

    def __repr__(self) -> str:
        size = len(self.data)
        return f"<Msg subject={self.subject!r} reply={self.reply!r} size={size}>"

    # -- payload -----------------------------------------------------------------------
    def text(self, encoding: str = "utf-8") -> str:
        """The payload decoded as text."""
        return self.data.decode(encoding)

    def json(self) -> Any:
        """The payload parsed as JSON (raises :class:`~syncmsg.PayloadError`)."""
        return decode_json(self.data, self.subject)

    def parse(self, model: type[ModelT]) -> ModelT:
        """The payload validated into a pydantic ``model`` (raises PayloadError)."""
        return decode_model(self.data, model, self.subject)

    # -- replies -----------------------------------------------------------------------
    def respond(self, data: Data = b"", *, headers: Headers | None = None) -> None:
        """Publish ``data`` to this message's reply subject.

        Raises :class:`ValueError` when the message has no reply subject.
        """
        if not self.reply:
            raise ValueError(f"message on {self.subject!r} has no reply subject")
        self._require_client().publish(self.reply, data, headers=headers)

    # -- JetStream acknowledgements ------------------------------------------------------
    @property
    def metadata(self) -> MsgMetadata:
        """JetStream metadata; raises :class:`ValueError` for a non-JetStream message."""
        if self._metadata is None:
            self._metadata = MsgMetadata.from_reply(self.reply)
            if self._metadata is None:
                raise ValueError(f"message on {self.subject!r} is not a JetStream message")
        return self._metadata

    @property
    def is_acked(self) -> bool:
        """True once ack, nak or term has been sent (or an automatic ack)."""
        return self._done

    def ack(self) -> None:
        """Acknowledge the message (no wait for the server; see :meth:`ack_sync`)."""
        self._send_terminal(b"+ACK")

    def ack_sync(self, timeout: float | None = None) -> None:
        """Acknowledge and wait until the server confirms it (double ack)."""
        if not self._claim():
            return
        self._require_client().request(self._ack_subject(), b"+ACK", timeout=timeout)
        tracing = _instrumentation.active
        if tracing is not None:
            tracing.settled(self, b"+ACK")

    def nak(self, delay: float | None = None) -> None:
        """Ask for redelivery, after ``delay`` seconds if given."""
        if delay is None:
            self._send_terminal(b"-NAK")
        else:
            body = json.dumps({"delay": int(delay * 1e9)}, separators=(",", ":"))
            self._send_terminal(b"-NAK " + body.encode())

    def term(self, reason: str | None = None) -> None:
        """Stop redelivery of this message for good."""
        self._send_terminal(b"+TERM" + (f" {reason}".encode() if reason else b""))

    def in_progress(self) -> None:
        """Tell the server work is still going on, resetting the ack-wait timer."""
        if not self._done:
            self._require_client().publish(self._ack_subject(), b"+WPI")

    def _claim(self) -> bool:
        with _terminal_lock:
            if self._done:
                return False
            self._done = True
            return True

    def _send_terminal(self, body: bytes) -> None:
        subject = self._ack_subject()
        if self._claim():
            self._require_client().publish(subject, body)
            tracing = _instrumentation.active
            if tracing is not None:
                tracing.settled(self, body)

    def _ack_subject(self) -> str:
        if not self.reply.startswith(_ACK_PREFIX):
            raise ValueError(f"message on {self.subject!r} is not a JetStream message")
        return self.reply

    def _require_client(self) -> Responder:
        if self._client is None:
            raise ValueError("message is not bound to a client")
        return self._client

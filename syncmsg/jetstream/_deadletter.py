"""Moving poison messages to a dead-letter subject.

Threading: runs on the worker thread whose handler failed (or that called ``dead_letter``);
the publish blocks that thread until the server has the message.

A dead letter is the original payload, the original headers (less the ``Nats-`` control
headers, which would make the dead-letter publish deduplicate or fail), and:

===========================  ===============================================================
``Syncmsg-Original-Subject``  the subject the message was published to
``Syncmsg-Stream``            the stream it came from
``Syncmsg-Consumer``          the durable consumer that gave up on it
``Syncmsg-Stream-Sequence``   its sequence in that stream
``Syncmsg-Delivery-Count``    how many times it was delivered
``Syncmsg-Last-Error``        the last error (``Type: message``, one line, ≤ 1024 chars)
===========================  ===============================================================

When a stream captures the dead-letter subject, the publish goes through JetStream with a
``Nats-Msg-Id`` derived from the origin (stream, consumer, sequence), so a dead letter sent
twice (a crash between the publish and the ``term``) is stored once. Otherwise it is a core
publish followed by a flush.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from syncmsg import _instrumentation
from syncmsg._errors import DeadLetterError, StreamNotFoundError, SyncMsgError
from syncmsg._msg import Msg
from syncmsg.jetstream._message import describe

if TYPE_CHECKING:
    from syncmsg.jetstream._context import JetStream

__all__ = ["HEADERS", "DeadLetterer"]

log = logging.getLogger("syncmsg.jetstream")

ORIGINAL_SUBJECT = "Syncmsg-Original-Subject"
STREAM = "Syncmsg-Stream"
CONSUMER = "Syncmsg-Consumer"
STREAM_SEQUENCE = "Syncmsg-Stream-Sequence"
DELIVERY_COUNT = "Syncmsg-Delivery-Count"
LAST_ERROR = "Syncmsg-Last-Error"
HEADERS = (ORIGINAL_SUBJECT, STREAM, CONSUMER, STREAM_SEQUENCE, DELIVERY_COUNT, LAST_ERROR)


class DeadLetterer:
    """Publishes dead letters for one subscription to ``subject``."""

    def __init__(self, js: JetStream, subject: str, timeout: float) -> None:
        self._js = js
        self.subject = subject
        self.timeout = timeout
        self._captured: bool | None = None  # does a stream capture the subject?
        self._lock = threading.Lock()
        self.sent = 0

    def _stream_captures(self) -> bool:
        with self._lock:
            if self._captured is None:
                try:
                    self._js.find_stream(self.subject, timeout=self.timeout)
                    self._captured = True
                except StreamNotFoundError:
                    self._captured = False
            return self._captured

    def send(self, msg: Msg, error: BaseException | str) -> None:
        """Publish ``msg`` as a dead letter; raises :class:`DeadLetterError` on failure."""
        meta = msg.metadata
        headers = {
            key: value
            for key, value in (msg.headers or {}).items()
            if not key.lower().startswith("nats-") and key not in HEADERS
        }
        headers.update(
            {
                ORIGINAL_SUBJECT: msg.subject,
                STREAM: meta.stream,
                CONSUMER: meta.consumer,
                STREAM_SEQUENCE: str(meta.sequence_stream),
                DELIVERY_COUNT: str(meta.num_delivered),
                LAST_ERROR: describe(error),
            }
        )
        try:
            if self._stream_captures():
                msg_id = f"syncmsg-dl.{meta.stream}.{meta.consumer}.{meta.sequence_stream}"
                self._js.publish(
                    self.subject, msg.data, msg_id=msg_id, headers=headers, timeout=self.timeout
                )
            else:
                client = self._js.client
                client.publish(self.subject, msg.data, headers=headers)
                client.flush(self.timeout)
        except SyncMsgError as exc:
            raise DeadLetterError(
                f"could not dead-letter {msg.subject!r} (stream {meta.stream} "
                f"seq {meta.sequence_stream}) to {self.subject!r}: {exc}"
            ) from exc
        self.sent += 1
        _instrumentation.dead_lettered(msg, self.subject, headers[LAST_ERROR])
        log.warning(
            "syncmsg: dead-lettered %r (stream %s seq %d, %d deliveries) to %r: %s",
            msg.subject,
            meta.stream,
            meta.sequence_stream,
            meta.num_delivered,
            self.subject,
            headers[LAST_ERROR],
        )

"""The syncmsg exception tree, and the one place that maps nats-py errors onto it.

Threading: pure functions and classes; :func:`map_error` runs on whichever thread
observed the nats-py exception (usually the loop thread, re-raised on the caller's).

::

    SyncMsgError
    ├── ConfigurationError(ValueError)        bad settings, missing key, bad URL
    ├── InvalidSubjectError(ValueError)       empty token, space, CR/LF, misplaced wildcard
    ├── InvalidHeaderError(ValueError)        header key or value not allowed on the wire
    ├── PayloadError(ValueError)              data cannot be encoded or decoded
    │   └── PayloadTooLargeError              larger than the server's max_payload
    ├── TimeoutError(builtins.TimeoutError)   a blocking call ran out of time
    ├── NoRespondersError                     nobody listens on a request subject
    ├── RemoteError                           a serve() handler raised; carries its message
    ├── LoopThreadError(RuntimeError)         blocking call made from the event-loop thread
    ├── NatsServerError(RuntimeError)         an embedded/test nats-server did not start
    │                                         (defined in syncmsg.testing)
    ├── SlowConsumerError                     a subscription fell behind; messages were dropped
    ├── NatsConnectionError(ConnectionError)
    │   ├── NoServersError                    no server could be reached
    │   ├── ConnectionClosedError             used after close(), or closed while waiting
    │   ├── BufferFullError                   reconnect buffer is full while disconnected
    │   └── AuthorizationError(PermissionError)
    └── JetStreamError                        the JetStream API said no (code, err_code)
        ├── StreamNotFoundError
        ├── ConsumerNotFoundError
        ├── WrongLastSequenceError            expected_last_seq / expected_stream failed
        └── DeadLetterError                   a dead-letter publish failed

nats-py exceptions never reach users: every bridge re-raises through :func:`map_error`.
"""

from __future__ import annotations

import asyncio
import builtins
from typing import Any

__all__ = [
    "AuthorizationError",
    "BufferFullError",
    "ConfigurationError",
    "ConnectionClosedError",
    "ConsumerNotFoundError",
    "DeadLetterError",
    "InvalidHeaderError",
    "InvalidSubjectError",
    "JetStreamError",
    "LoopThreadError",
    "NatsConnectionError",
    "NoRespondersError",
    "NoServersError",
    "PayloadError",
    "PayloadTooLargeError",
    "RemoteError",
    "SlowConsumerError",
    "StreamNotFoundError",
    "SyncMsgError",
    "TimeoutError",
    "WrongLastSequenceError",
    "map_api_error",
    "map_error",
]


class SyncMsgError(Exception):
    """Base class of every error syncmsg raises."""


class ConfigurationError(SyncMsgError, ValueError):
    """The configuration cannot work (bad URL, unreadable credentials, bad option)."""


class InvalidSubjectError(SyncMsgError, ValueError):
    """A subject, queue group or subject token is not valid for this operation."""


class InvalidHeaderError(SyncMsgError, ValueError):
    """A header key or value cannot be sent on the wire."""


class PayloadError(SyncMsgError, ValueError):
    """Data could not be encoded to bytes, or a message could not be decoded."""


class PayloadTooLargeError(PayloadError):
    """The encoded message is larger than the server's ``max_payload``."""


class TimeoutError(SyncMsgError, builtins.TimeoutError):
    """A blocking call did not complete within its timeout."""


class NoRespondersError(SyncMsgError):
    """A request was sent to a subject that has no subscribers."""


class RemoteError(SyncMsgError):
    """The responder's handler raised; ``code`` and ``description`` come from its reply."""

    def __init__(self, description: str, *, code: str = "500", subject: str = "") -> None:
        super().__init__(f"{subject}: {description}" if subject else description)
        self.code = code
        self.description = description
        self.subject = subject


class LoopThreadError(SyncMsgError, RuntimeError):
    """A blocking call was made from the client's own event-loop thread.

    It would wait for the loop it is blocking, so it is refused instead of deadlocking.
    """


class SlowConsumerError(SyncMsgError):
    """A subscription could not keep up and messages were dropped."""

    def __init__(self, message: str, *, subject: str = "", dropped: int = 0) -> None:
        super().__init__(message)
        self.subject = subject
        self.dropped = dropped


class NatsConnectionError(SyncMsgError, builtins.ConnectionError):
    """The connection to NATS failed or is unusable."""


class NoServersError(NatsConnectionError):
    """No server in the list could be reached."""


class ConnectionClosedError(NatsConnectionError):
    """The client is closed (or closing) and cannot do this any more."""


class BufferFullError(NatsConnectionError):
    """The outbound buffer is full while disconnected; the message was not accepted."""


class AuthorizationError(NatsConnectionError, PermissionError):
    """The server refused the credentials or the permission for a subject."""


class JetStreamError(SyncMsgError):
    """The JetStream API returned an error."""

    def __init__(
        self, description: str = "", *, code: int | None = None, err_code: int | None = None
    ) -> None:
        super().__init__(description or self.__class__.__doc__ or "JetStream error")
        self.description = description
        self.code = code
        self.err_code = err_code


class StreamNotFoundError(JetStreamError):
    """The stream does not exist."""


class ConsumerNotFoundError(JetStreamError):
    """The consumer does not exist."""


class WrongLastSequenceError(JetStreamError):
    """The stream's last sequence (or the target stream) was not what the publish expected."""


class DeadLetterError(JetStreamError):
    """A message could not be moved to its dead-letter subject."""


# JetStream API error codes (nats-server's errors.json) that have a class of their own.
_JS_ERR_CODES: dict[int, type[JetStreamError]] = {
    10059: StreamNotFoundError,
    10014: ConsumerNotFoundError,
    10071: WrongLastSequenceError,
    10060: WrongLastSequenceError,  # expected stream does not match
    10070: WrongLastSequenceError,  # expected last msg id does not match
}


def map_api_error(error: Any) -> JetStreamError:
    """The syncmsg exception for a JetStream API reply's ``{"code", "err_code", "description"}``.

    Used for replies parsed by syncmsg itself (JetStream publish acks and API calls) and for
    nats-py's ``APIError``, so both paths raise the same classes.
    """
    if not isinstance(error, dict):
        return JetStreamError(str(error))
    code = error.get("code")
    err_code = error.get("err_code")
    description = str(error.get("description") or "")
    cls = _JS_ERR_CODES.get(err_code if isinstance(err_code, int) else -1)
    if cls is None and code == 404:
        text = description.lower()
        if "consumer" in text:
            cls = ConsumerNotFoundError
        elif "stream" in text:
            cls = StreamNotFoundError
    return (cls or JetStreamError)(
        description,
        code=code if isinstance(code, int) else None,
        err_code=err_code if isinstance(err_code, int) else None,
    )


def map_error(exc: BaseException, *, subject: str = "") -> BaseException:
    """Return the syncmsg exception for ``exc``; the single nats-py → syncmsg mapping.

    syncmsg's own exceptions pass through unchanged. Anything unrecognised becomes
    a plain :class:`SyncMsgError` so that no nats-py type reaches a user.
    """
    if isinstance(exc, SyncMsgError):
        return exc
    # Imported here: nats-py is a runtime dependency, but keeping it out of module
    # import time lets the pure parts of syncmsg (codec, events models) load fast.
    from nats import errors as nerr
    from nats.js import errors as jerr

    where = f" ({subject})" if subject else ""
    if isinstance(exc, jerr.APIError):
        return map_api_error(
            {
                "code": getattr(exc, "code", None),
                "err_code": getattr(exc, "err_code", None),
                "description": getattr(exc, "description", None) or str(exc),
            }
        )
    if isinstance(exc, nerr.NoRespondersError):
        return NoRespondersError(f"no responders{where}")
    if isinstance(exc, nerr.TimeoutError | asyncio.TimeoutError | builtins.TimeoutError):
        return TimeoutError(f"timed out{where}")
    if isinstance(exc, nerr.MaxPayloadError):
        return PayloadTooLargeError(f"payload larger than the server's max_payload{where}")
    if isinstance(exc, nerr.BadSubjectError):
        return InvalidSubjectError(f"invalid subject{where}")
    if isinstance(exc, nerr.OutboundBufferLimitError):
        return BufferFullError(f"reconnect buffer is full{where}")
    if isinstance(exc, nerr.ConnectionClosedError | nerr.ConnectionDrainingError):
        return ConnectionClosedError(f"connection closed{where}")
    if isinstance(exc, nerr.AuthorizationError):
        return AuthorizationError(_describe(exc) or "authorization violation")
    if isinstance(exc, nerr.NoServersError):
        return NoServersError("could not connect to any server")
    if isinstance(exc, nerr.SlowConsumerError):
        return SlowConsumerError(
            f"slow consumer on {getattr(exc, 'subject', '?')}",
            subject=str(getattr(exc, "subject", "")),
        )
    if isinstance(exc, nerr.StaleConnectionError | nerr.UnexpectedEOF | builtins.ConnectionError):
        return NatsConnectionError(_describe(exc) or type(exc).__name__)
    if isinstance(exc, OSError):
        return NatsConnectionError(_describe(exc) or type(exc).__name__)
    if isinstance(exc, nerr.Error):
        return SyncMsgError(_describe(exc) or type(exc).__name__)
    return exc


def _describe(exc: BaseException) -> str:
    text: Any = getattr(exc, "description", None) or str(exc)
    return str(text).strip()

"""Requests to the JetStream API, sent with the client's ``request``.

Threading: everything here runs on the calling thread (never the loop's: ``request``
refuses that). A request is a ``PUB`` appended to the client's outbound queue plus a wait
for the reply mux to hand the answer back; no coroutine is handed to the loop. Replies are
JSON parsed here, and an ``{"error": {...}}`` reply is raised through
:func:`syncmsg._errors.map_api_error`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import TYPE_CHECKING, Any

from syncmsg._errors import (
    ConnectionClosedError,
    JetStreamError,
    NatsConnectionError,
    NoRespondersError,
    TimeoutError,
    map_api_error,
)
from syncmsg._retry import RetryPolicy

if TYPE_CHECKING:
    from syncmsg._client import Client
    from syncmsg._msg import Msg

__all__ = [
    "ApiClient",
    "Duration",
    "from_nanos",
    "is_retryable",
    "parse_header_block",
    "to_nanos",
    "to_seconds",
]

Duration = float | int | dt.timedelta

_NANOS = 1_000_000_000
# JetStream "temporarily unavailable" style replies: worth another try.
_RETRYABLE_API_CODES = {503}


def to_nanos(value: Duration | None) -> int:
    """A duration (seconds, or a timedelta) in whole nanoseconds; ``None`` is 0."""
    if value is None:
        return 0
    if isinstance(value, dt.timedelta):
        return (value.days * 86_400 + value.seconds) * _NANOS + value.microseconds * 1_000
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"not a duration: {value!r}")
    if value < 0:
        raise ValueError(f"a duration cannot be negative: {value!r}")
    return round(value * _NANOS)


def to_seconds(value: Duration) -> float:
    """A duration (seconds, or a timedelta) in seconds."""
    return to_nanos(value) / _NANOS


def from_nanos(value: Any) -> dt.timedelta | None:
    """A JetStream duration (nanoseconds) as a timedelta; 0 or missing is ``None``."""
    if not value:
        return None
    return dt.timedelta(microseconds=int(value) // 1_000)


def parse_header_block(raw: bytes) -> dict[str, str]:
    """Parse a ``NATS/1.0`` header block into a dict (the last value of a key wins)."""
    headers: dict[str, str] = {}
    lines = raw.decode("utf-8", "replace").split("\r\n")
    for line in lines[1:]:
        if not line:
            continue
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip()] = value.strip()
    return headers


def is_retryable(exc: BaseException) -> bool:
    """True for failures where the same request may succeed later.

    Timeouts, missing responders (JetStream restarting, a stream leader election) and a lost
    connection are; a closed client and every definite API answer are not.
    """
    if isinstance(exc, ConnectionClosedError):
        return False
    if isinstance(exc, TimeoutError | NoRespondersError | NatsConnectionError):
        return True
    return isinstance(exc, JetStreamError) and exc.code in _RETRYABLE_API_CODES


class ApiClient:
    """Sends JSON requests to ``<prefix>.<suffix>`` and returns the parsed reply."""

    def __init__(self, client: Client, prefix: str, timeout: float, retry: RetryPolicy) -> None:
        self.client = client
        self.prefix = prefix.rstrip(".")
        self.timeout = timeout
        self.retry = retry

    def subject(self, suffix: str) -> str:
        return f"{self.prefix}.{suffix}"

    def request(
        self,
        suffix: str,
        body: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """Call the API and return its JSON reply; raises the mapped error on failure.

        ``timeout`` bounds each attempt. Idempotent calls are retried per the context's API
        retry policy when the server is momentarily unavailable.
        """
        subject = self.subject(suffix)
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        wait = self.timeout if timeout is None else timeout
        client = self.client

        about = _about(suffix)

        def once(left: float | None) -> dict[str, Any]:
            limit = wait if left is None else min(wait, left)
            return parse_reply(client.request(subject, payload, timeout=limit), **about)

        if not idempotent:
            return once(None)
        return self.retry.call(once, should_retry=is_retryable)


def _about(suffix: str) -> dict[str, str | None]:
    """The stream and consumer an API subject names (``STREAM.INFO.<stream>``,
    ``CONSUMER.INFO.<stream>.<consumer>``, ``STREAM.MSG.GET.<stream>``, ...), so that an
    error can name them."""
    tokens = suffix.split(".")
    if tokens[0] == "STREAM" and len(tokens) >= 3 and tokens[1] != "NAMES" and tokens[1] != "LIST":
        return {"stream": tokens[-1], "consumer": None}
    if tokens[0] == "CONSUMER" and len(tokens) >= 4:
        return {"stream": tokens[2], "consumer": tokens[3]}
    if tokens[0] == "CONSUMER" and len(tokens) == 3:
        return {"stream": tokens[2], "consumer": None}
    return {"stream": None, "consumer": None}


def parse_reply(
    msg: Msg, *, stream: str | None = None, consumer: str | None = None
) -> dict[str, Any]:
    """The JSON object of a JetStream reply, raising the mapped error for an error reply
    (naming ``stream`` and ``consumer`` when given)."""
    try:
        data = json.loads(msg.data)
    except ValueError:
        raise JetStreamError(
            f"JetStream sent a reply that is not JSON: {msg.data[:200]!r}"
        ) from None
    if not isinstance(data, dict):
        raise JetStreamError(f"JetStream sent an unexpected reply: {msg.data[:200]!r}")
    error = data.get("error")
    if error is not None:
        raise map_api_error(error, stream=stream, consumer=consumer)
    return data

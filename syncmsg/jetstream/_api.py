"""Requests to the JetStream API, sent with the client's ``request``.

Threading: everything here runs on the calling thread (never the loop's: ``request``
refuses that). A request is a ``PUB`` appended to the client's outbound queue plus a wait
for the reply mux to hand the answer back; no coroutine is handed to the loop. Replies are
JSON parsed here, and an ``{"error": {...}}`` reply is raised through
:func:`syncmsg._errors.map_api_error` (the one table of error codes,
:class:`~syncmsg._errors.ApiErrorCode`). The callers read the JSON into the models of
:mod:`syncmsg.jetstream._models`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from syncmsg._errors import (
    ApiErrorCode,
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

__all__ = ["ApiClient", "is_retryable", "parse_reply"]

T = TypeVar("T")

# HTTP-like codes of answers worth another try: 503 "temporarily unavailable" (a leader
# election, JetStream starting), 429 "too many requests" (a stream's ingest queue is full).
_RETRYABLE_API_CODES = frozenset({503, 429})


def is_retryable(exc: BaseException) -> bool:
    """True for failures where the same request may succeed later.

    Timeouts, missing responders (JetStream restarting, a stream leader election), a lost
    connection and a full ingest queue (429) are; a closed client and every definite API
    answer are not.
    """
    if isinstance(exc, ConnectionClosedError):
        return False
    if isinstance(exc, TimeoutError | NoRespondersError | NatsConnectionError):
        return True
    return isinstance(exc, JetStreamError) and (
        exc.code in _RETRYABLE_API_CODES or exc.err_code == ApiErrorCode.TOO_MANY_REQUESTS
    )


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
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        about = _about(suffix)
        return self.call(
            suffix,
            payload,
            lambda msg: parse_reply(msg, **about),
            timeout=timeout,
            idempotent=idempotent,
        )

    def call(
        self,
        suffix: str,
        payload: bytes,
        read: Callable[[Msg], T],
        *,
        timeout: float | None = None,
        idempotent: bool = True,
        should_retry: Callable[[BaseException], bool] | None = None,
    ) -> T:
        """Send ``payload`` to ``<prefix>.<suffix>`` and return ``read(reply)``, with the
        context's retries for idempotent calls (``should_retry`` decides which errors)."""
        subject = self.subject(suffix)
        wait = self.timeout if timeout is None else timeout
        client = self.client

        def once(left: float | None) -> T:
            limit = wait if left is None else min(wait, left)
            return read(client.request(subject, payload, timeout=limit))

        if not idempotent:
            return once(None)
        return self.retry.call(once, should_retry=should_retry or is_retryable)


def _about(suffix: str) -> dict[str, str | None]:
    """The stream and consumer an API subject names (``STREAM.INFO.<stream>``,
    ``CONSUMER.INFO.<stream>.<consumer>``, ``STREAM.MSG.GET.<stream>``, ...), so that an
    error can name them."""
    tokens = suffix.split(".")
    if tokens[0] == "STREAM" and len(tokens) >= 3 and tokens[1] != "NAMES" and tokens[1] != "LIST":
        return {"stream": tokens[-1], "consumer": None}
    if tokens[0] == "CONSUMER" and len(tokens) >= 4 and tokens[1] not in ("NAMES", "LIST"):
        return {"stream": tokens[2], "consumer": tokens[3]}
    if tokens[0] == "CONSUMER" and len(tokens) >= 3:
        return {"stream": tokens[2], "consumer": None}
    if tokens[0] == "DIRECT" and len(tokens) >= 3:
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

"""The one reply mux: reply subject token → the waiter its answer wakes.

Threading: caller threads register waiters (:meth:`ReplyMux.expect`) and wait on them; the
event-loop thread resolves them: :meth:`ReplyMux.dispatch_one` as nats-py parses each reply
(the client's reply inbox hands replies over without a task in between), or
:meth:`ReplyMux.dispatch` for a batch; any thread may fail them all
(:meth:`ReplyMux.close`). A waiter's ``resolve`` runs on the loop thread, inside nats-py's
parser, and must only hand the answer on.

Every reply subject is ``<prefix><token>``: the prefix is random per connection (one
wildcard subscription, ``<prefix>*``, serves them all) and the token is random per request,
so a responder that has seen one reply subject cannot guess the next one and answer it
first with a forged reply.

The waiters:

* :class:`Reply`: one answer, waited for by one thread. A lock that the loop releases is
  cheaper on both sides than a ``threading.Event`` (no condition, no Python-level code).
* :class:`CallbackReply`: one answer handed to a function on the loop thread; for
  syncmsg's own pipelining (``publish_async``), which only queues it for its own thread.

Every answer and every failure reaches a waiter at most once: whoever removes the waiter
from the table (the loop with an answer, a caller giving up, :meth:`ReplyMux.close`) is
the only one who resolves it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import Any, Protocol

from syncmsg._errors import ConnectionClosedError, NoRespondersError, RemoteError, TimeoutError

__all__ = [
    "REPLY_TOKEN_LENGTH",
    "SERVICE_ERROR",
    "SERVICE_ERROR_CODE",
    "CallbackReply",
    "Reply",
    "ReplyMux",
    "new_token",
]

#: Header names of NATS services (ADR-32) for an error reply.
SERVICE_ERROR = "Nats-Service-Error"
SERVICE_ERROR_CODE = "Nats-Service-Error-Code"
#: A status header with this value and no payload: nobody was subscribed to the subject.
STATUS = "Status"
NO_RESPONDERS = "503"

_TOKEN_BYTES = 8  # 64 random bits per reply subject
#: Characters of a token (hex): what a reply subject adds to its prefix.
REPLY_TOKEN_LENGTH = 2 * _TOKEN_BYTES
_TOKENS_PER_REFILL = 256
_token_pool: list[str] = []


def new_token() -> str:
    """A fresh, unpredictable token (16 hex characters from the OS's random source).

    Tokens are drawn from the OS in batches: one system call per 256 tokens. The pool is
    a list whose ``pop`` is atomic, so threads share it without a lock; two threads that
    find it empty at once both refill it, which costs nothing but a few spare tokens.
    """
    try:
        return _token_pool.pop()
    except IndexError:
        raw = os.urandom(_TOKEN_BYTES * _TOKENS_PER_REFILL).hex()
        step = _TOKEN_BYTES * 2
        _token_pool.extend(raw[i : i + step] for i in range(step, len(raw), step))
        return raw[:step]


def _forget_tokens_after_fork() -> None:
    _token_pool.clear()  # the parent holds the same ones


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_tokens_after_fork)


class Waiter(Protocol):
    """What the mux needs of a waiter."""

    def resolve(self, msg: Any) -> None:
        """The answer arrived (a nats-py message, on the loop thread)."""

    def fail(self, error: BaseException) -> None:
        """No answer will come (any thread)."""


class Reply:
    """One answer, waited for by one thread with :meth:`wait`."""

    __slots__ = ("_done", "data", "error", "headers", "subject")

    def __init__(self) -> None:
        self._done = threading.Lock()
        self._done.acquire()
        self.subject = ""
        self.data = b""
        self.headers: dict[str, str] | None = None
        self.error: BaseException | None = None

    def resolve(self, msg: Any) -> None:
        self.subject = msg.subject
        self.data = msg.data
        self.headers = msg.headers
        self._done.release()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self._done.release()

    def wait(self, timeout: float) -> bool:
        """Block until resolved or failed; False when ``timeout`` ran out first.

        The wait is a lock acquisition, which Ctrl-C interrupts on the main thread.
        """
        return self._done.acquire(timeout=max(timeout, 0.0))

    def check(self, what: str) -> None:
        """Raise what the answer stands for: the failure, no responders, a remote error."""
        if self.error is not None:
            raise self.error
        headers = self.headers
        if headers:
            if headers.get(STATUS) == NO_RESPONDERS and not self.data:
                raise NoRespondersError(f"no responders on {what!r}")
            if SERVICE_ERROR in headers:
                raise RemoteError(
                    headers[SERVICE_ERROR],
                    code=headers.get(SERVICE_ERROR_CODE, "500"),
                    subject=what,
                )


class CallbackReply:
    """One answer handed to ``on_reply(msg, error)``: on the loop thread with the message,
    or on whichever thread fails it with the error. It must only hand the result on."""

    __slots__ = ("_on_reply",)

    def __init__(self, on_reply: Callable[[Any, BaseException | None], None]) -> None:
        self._on_reply = on_reply

    def resolve(self, msg: Any) -> None:
        self._on_reply(msg, None)

    def fail(self, error: BaseException) -> None:
        self._on_reply(None, error)


class ReplyMux:
    """Reply subjects ``<prefix><token>`` and the waiters their answers go to."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._cut = len(prefix)
        self._waiting: dict[str, Waiter] = {}
        self.closed_reason: BaseException | None = None

    def __repr__(self) -> str:
        return f"<ReplyMux {self.prefix}* waiting={len(self._waiting)}>"

    def __len__(self) -> int:
        return len(self._waiting)

    @property
    def subscription_subject(self) -> str:
        """The one wildcard subject that receives every reply."""
        return self.prefix + "*"

    # -- caller threads ------------------------------------------------------------------
    def expect(self, waiter: Waiter) -> str:
        """Register ``waiter`` under a fresh token; return the reply subject to send."""
        token = new_token()
        self._waiting[token] = waiter
        # Closed while registering: whoever removes the waiter resolves it, here us.
        if self.closed_reason is not None and self._waiting.pop(token, None) is not None:
            raise ConnectionClosedError(str(self.closed_reason))
        return self.prefix + token

    def new_reply(self) -> tuple[str, Reply]:
        """A reply subject and the :class:`Reply` its answer resolves."""
        waiter = Reply()
        return self.expect(waiter), waiter

    def waiters(self) -> list[Waiter]:
        """The waiters still waiting, oldest first."""
        return list(self._waiting.values())

    def forget(self, reply: str) -> bool:
        """Stop waiting for ``reply``; True when it was still waited for (a late answer is
        then dropped)."""
        return self._waiting.pop(reply[self._cut :], None) is not None

    def wait(self, reply: str, waiter: Reply, timeout: float, what: str) -> None:
        """Wait for ``waiter``; raise :class:`~syncmsg.TimeoutError` when no answer came."""
        if waiter.wait(timeout):
            waiter.check(what)
            return
        if self.forget(reply):
            raise TimeoutError(f"no reply on {what!r} within {timeout:g}s")
        # The answer was being delivered as the wait ended: it is ours after all.
        waiter.wait(1.0)
        waiter.check(what)

    # -- loop thread ---------------------------------------------------------------------
    def dispatch(self, msgs: list[Any]) -> None:
        """Resolve the waiter of each reply in ``msgs`` (the loop thread, one pass)."""
        pop = self._waiting.pop
        cut = self._cut
        for msg in msgs:
            waiter = pop(msg.subject[cut:], None)
            if waiter is not None:
                waiter.resolve(msg)

    def dispatch_one(self, msg: Any) -> bool:
        """Resolve the waiter of ``msg``; False when nobody waits for it."""
        waiter = self._waiting.pop(msg.subject[self._cut :], None)
        if waiter is None:
            return False
        waiter.resolve(msg)
        return True

    # -- any thread ----------------------------------------------------------------------
    def close(self, reason: BaseException) -> None:
        """Fail every waiter with ``reason``, now and from now on."""
        self.closed_reason = reason
        self.fail_all(reason)

    def fail_all(self, reason: BaseException) -> None:
        """Fail every waiter registered so far with ``reason``."""
        waiting = self._waiting
        while True:
            try:
                _, waiter = waiting.popitem()
            except KeyError:
                return
            with contextlib.suppress(Exception):
                waiter.fail(reason)

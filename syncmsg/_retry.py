"""Immutable retry policies, executed with tenacity.

Threading: a policy is a frozen value, safe to share between threads. :meth:`RetryPolicy.call`
runs the attempts on the calling thread and sleeps there between them; it never runs on
the event-loop thread (the client's guard refuses that earlier).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TypeVar

import tenacity

from syncmsg._errors import (
    NatsConnectionError,
    NoRespondersError,
    TimeoutError,
    is_definite_refusal,
)

__all__ = ["RetryPolicy"]

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How to retry a failed operation: exponential backoff with jitter under one deadline.

    ``attempts`` bounds the number of tries (``None``: unbounded, the deadline still applies),
    ``deadline`` bounds the total time in seconds (``None``: only ``attempts`` bounds it; at least
    one of the two must be set). Waits grow from ``initial`` by ``multiplier`` up to ``maximum``
    with up to ``jitter`` seconds of random jitter added, so that many clients restarting at once
    do not retry in lock-step. ``retry_on`` lists the exception types worth another try; a
    definite refusal (bad credentials, a certificate failure, a bad URL: see
    :func:`syncmsg._errors.is_definite_refusal`) is never retried, although
    :class:`~syncmsg.AuthorizationError` and :class:`~syncmsg.TLSError` are connection errors.

    Policies are immutable; derive variants with :meth:`replace`::

        patient = RetryPolicy.default().replace(deadline=60.0)
    """

    attempts: int | None = 5
    deadline: float | None = 30.0
    initial: float = 0.1
    maximum: float = 2.0
    multiplier: float = 2.0
    jitter: float = 0.1
    retry_on: tuple[type[BaseException], ...] = (
        TimeoutError,
        NoRespondersError,
        NatsConnectionError,
    )

    def __post_init__(self) -> None:
        if self.attempts is None and self.deadline is None:
            raise ValueError("a RetryPolicy needs attempts or a deadline, or it could run forever")
        if self.attempts is not None and self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.deadline is not None and self.deadline <= 0:
            raise ValueError("deadline must be positive")
        if min(self.initial, self.maximum, self.jitter) < 0 or self.multiplier < 1:
            raise ValueError("backoff values must be non-negative and multiplier >= 1")

    @classmethod
    def default(cls) -> RetryPolicy:
        """Five tries within 30 s, 0.1 s doubling to 2 s."""
        return cls()

    @classmethod
    def never(cls) -> RetryPolicy:
        """A single attempt."""
        return cls(attempts=1, deadline=None)

    def replace(self, **changes: object) -> RetryPolicy:
        """Return a copy with ``changes`` applied (the policy itself never changes)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def waits(self) -> tenacity.wait.wait_base:
        backoff = tenacity.wait_exponential(
            multiplier=self.initial, max=self.maximum, exp_base=self.multiplier
        )
        return backoff + tenacity.wait_random(0, self.jitter)

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1 for the first), as
        :meth:`call` waits: for code that schedules its own retries (``publish_async``)."""
        state = tenacity.RetryCallState(
            retry_object=tenacity.Retrying(), fn=None, args=(), kwargs={}
        )
        state.attempt_number = max(attempt, 1)
        return float(self.waits()(state))

    def call(
        self,
        fn: Callable[[float | None], T],
        *,
        deadline: float | None = None,
        should_retry: Callable[[BaseException], bool] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> T:
        """Call ``fn(remaining_seconds)`` until it returns, retrying what ``retry_on`` allows.

        ``deadline`` (monotonic seconds) caps the policy's own deadline; each attempt receives
        the time left so that no attempt outlives the whole. The last error is re-raised.
        ``should_retry`` replaces ``retry_on``; definite refusals are re-raised at once either way.
        """
        start = time.monotonic()
        ends = [d for d in (deadline, start + self.deadline if self.deadline else None) if d]
        end = min(ends) if ends else None

        def retryable(exc: BaseException) -> bool:
            if is_definite_refusal(exc):
                return False
            if should_retry is not None:
                return should_retry(exc)
            return isinstance(exc, self.retry_on)

        stop: tenacity.stop.stop_base = tenacity.stop_never
        if self.attempts is not None:
            stop = tenacity.stop_after_attempt(self.attempts)
        if end is not None:
            stop = stop | tenacity.stop_before_delay(end - start)

        retrying = tenacity.Retrying(
            stop=stop,
            wait=self.waits(),
            retry=tenacity.retry_if_exception(retryable),
            reraise=True,
            sleep=sleep,
        )
        for attempt in retrying:
            with attempt:
                remaining = None if end is None else max(end - time.monotonic(), 0.001)
                return fn(remaining)
        raise AssertionError(
            "unreachable: tenacity either returns or re-raises"
        )  # pragma: no cover

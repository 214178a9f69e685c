"""The one deadline helper: a point in monotonic time that many steps share.

Threading: a :class:`Deadline` is a plain value; any thread may read it. Operations made of
several waits (connect with retries, close, drain, a request with retries) take one
deadline at the start and give each step :meth:`Deadline.remaining`, so that the whole
never outlives its budget however many steps it has.
"""

from __future__ import annotations

import time

__all__ = ["Deadline", "check_timeout"]


class Deadline:
    """``timeout`` seconds from now; ``None`` never expires."""

    __slots__ = ("at",)

    def __init__(self, timeout: float | None) -> None:
        self.at = None if timeout is None else time.monotonic() + timeout

    def __repr__(self) -> str:
        left = self.remaining()
        return "<Deadline never>" if left is None else f"<Deadline in {left:.3f}s>"

    def remaining(self, cap: float | None = None) -> float | None:
        """Seconds left (never negative), at most ``cap``; ``None`` when unbounded."""
        if self.at is None:
            return cap
        left = max(self.at - time.monotonic(), 0.0)
        return left if cap is None else min(left, cap)

    def left(self, cap: float | None = None) -> float:
        """Like :meth:`remaining`, for a deadline known to be bounded (or capped)."""
        left = self.remaining(cap)
        if left is None:
            raise ValueError("an unbounded deadline has no time left to give")
        return left

    @property
    def expired(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at


def check_timeout(value: float | None, default: float) -> float:
    """``value`` as a float, or ``default`` when it is None; refuses zero and negatives."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {value!r}")
    return float(value)

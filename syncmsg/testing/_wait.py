"""Polling with a deadline, for tests that wait for something to happen.

Threading: runs on the calling thread; it sleeps there between polls.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from syncmsg._deadline import Deadline

__all__ = ["wait_until"]


def wait_until(
    predicate: Callable[[], object],
    timeout: float = 10.0,
    interval: float = 0.01,
    what: str = "",
) -> None:
    """Poll ``predicate`` until it is truthy; raise AssertionError after ``timeout`` seconds."""
    deadline = Deadline(timeout)
    while not predicate():
        if deadline.expired:
            raise AssertionError(f"{what or 'condition'} not met within {timeout}s")
        time.sleep(interval)

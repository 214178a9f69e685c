"""Shared test helpers. Servers come from the syncmsg.testing pytest plugin (real nats-server)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

import syncmsg


def _wait_until(
    predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.01
) -> None:
    """Poll ``predicate`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


@pytest.fixture
def wait_until() -> Callable[..., None]:
    return _wait_until


@pytest.fixture
def client(nats_url: str) -> Iterator[syncmsg.Client]:
    with syncmsg.connect(nats_url, timeout=5.0) as c:
        yield c


@pytest.fixture
def other_client(nats_url: str) -> Iterator[syncmsg.Client]:
    with syncmsg.connect(nats_url, timeout=5.0) as c:
        yield c

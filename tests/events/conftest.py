"""Fixtures of the event-layer integration tests: fresh event streams on the session server."""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import syncmsg
from syncmsg.events import EVENT_DEAD_LETTERS, EVENT_STREAMS, EventSubscriber, ensure_event_streams

STREAM_NAMES = [s.name for s in EVENT_STREAMS] + [EVENT_DEAD_LETTERS.name]


def _drop_event_streams(client: syncmsg.Client) -> None:
    js = client.jetstream()
    for name in STREAM_NAMES:
        with contextlib.suppress(syncmsg.StreamNotFoundError):
            js.delete_stream(name, timeout=5.0)


@pytest.fixture
def no_event_streams(client: syncmsg.Client) -> syncmsg.Client:
    """The client, with none of the event streams on the server."""
    _drop_event_streams(client)
    return client


@pytest.fixture
def event_streams(no_event_streams: syncmsg.Client) -> syncmsg.Client:
    """The client, with the event streams created empty for this test (no consumers)."""
    ensure_event_streams(no_event_streams, timeout=5.0)
    return no_event_streams


@pytest.fixture
def subscribers(client: syncmsg.Client) -> Iterator[list[EventSubscriber]]:
    """Subscribers appended here are stopped at the end of the test."""
    made: list[EventSubscriber] = []
    yield made
    for sub in made:
        sub.stop(timeout=5.0)


class Inbox:
    """A thread-safe collector that tests read with a timeout, never a sleep."""

    def __init__(self) -> None:
        self._q: queue.Queue[Any] = queue.Queue()

    def __call__(self, item: Any) -> None:
        self._q.put(item)

    def get(self, timeout: float = 10.0) -> Any:
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"nothing arrived within {timeout}s") from None

    def take(self, n: int, timeout: float = 10.0) -> list[Any]:
        return [self.get(timeout) for _ in range(n)]

    def empty(self) -> bool:
        return self._q.empty()


@pytest.fixture
def inbox() -> Callable[[], Inbox]:
    """Makes collectors: ``got = inbox(); handler = got; got.get(timeout=...)``."""
    return Inbox

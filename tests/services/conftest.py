"""Fixtures of the services tests: unique service names, and a nats-py peer on its own loop.

The peer is the other implementation, tested in the same run: raw nats-py and its
``nats.micro`` services, on an asyncio loop in a thread of the test process, driven with
``peer.run(coroutine)`` (bounded by a timeout, as every wait in these tests).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar
from uuid import uuid4

import nats
import pytest

import syncmsg

T = TypeVar("T")


class Peer:
    """A nats-py client on a loop of its own (thread ``nats-py-peer``)."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="nats-py-peer")
        self._thread.start()
        self.nc: Any = self.run(nats.connect(url, connect_timeout=5, max_reconnect_attempts=0))

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def request(self, subject: str, data: bytes = b"", timeout: float = 5.0) -> Any:
        return self.run(self.nc.request(subject, data, timeout=timeout), timeout + 5)

    def gather(self, subject: str, wait: float = 0.5) -> list[Any]:
        """Publish an empty request to ``subject`` and collect every answer for ``wait``
        seconds, as ``nats micro ls`` does."""

        async def collect() -> list[Any]:
            inbox = self.nc.new_inbox()
            sub = await self.nc.subscribe(inbox)
            await self.nc.publish(subject, b"", reply=inbox)
            answers = []
            loop = asyncio.get_running_loop()
            end = loop.time() + wait
            while (left := end - loop.time()) > 0:
                try:
                    answers.append(await sub.next_msg(timeout=left))
                except nats.errors.TimeoutError:
                    break
            await sub.unsubscribe()
            return answers

        return self.run(collect(), wait + 10)

    def close(self) -> None:
        try:
            self.run(self.nc.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


@pytest.fixture
def peer(nats_url: str) -> Iterator[Peer]:
    p = Peer(nats_url)
    yield p
    p.close()


@pytest.fixture
def service_name() -> str:
    """A name no other test uses (the tests of a worker share one server)."""
    return f"svc-{uuid4().hex[:10]}"


@pytest.fixture
def services_made(client: syncmsg.Client) -> Iterator[list[Any]]:
    """Services to stop at teardown, whatever the test did."""
    made: list[Any] = []
    yield made
    for svc in made:
        svc.stop(5.0)

"""Shared test helpers. Servers come from the syncmsg.testing pytest plugin (real nats-server)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest
from hypothesis import settings

import syncmsg
from syncmsg.testing import wait_until as wait_until_poll

# Hypothesis's per-example deadline (200 ms) measures the machine, not the code: on CI's
# shared cores it failed examples that took longer under load. pytest-timeout still bounds
# every test.
settings.register_profile("syncmsg", deadline=None)
settings.load_profile("syncmsg")


@pytest.fixture
def wait_until() -> Callable[..., None]:
    return wait_until_poll


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A URL where connections are refused for the whole test: this fixture holds its port
    bound and never listens. (A stopped server's port, or one just found free, can be taken
    meanwhile by a server of another xdist worker, and the test then connects to that.)"""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"nats://127.0.0.1:{held.getsockname()[1]}"


@pytest.fixture
def client(nats_url: str) -> Iterator[syncmsg.Client]:
    with syncmsg.connect(nats_url, timeout=5.0) as c:
        yield c


@pytest.fixture
def other_client(nats_url: str) -> Iterator[syncmsg.Client]:
    with syncmsg.connect(nats_url, timeout=5.0) as c:
        yield c


@pytest.fixture
def client_factory(nats_url: str) -> Iterator[Callable[..., syncmsg.Client]]:
    """``factory(**options)``: a client connected to the shared server, closed at teardown."""
    made: list[syncmsg.Client] = []

    def factory(**options: object) -> syncmsg.Client:
        made.append(syncmsg.connect(nats_url, **options))
        return made[-1]

    yield factory
    for c in made:
        c.close()

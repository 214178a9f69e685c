"""pytest fixtures that run real ``nats-server`` processes (see :mod:`syncmsg.testing`).

Registered through the ``pytest11`` entry point, so it is loaded by every pytest run in an
environment where syncmsg is installed: it imports nothing but pytest and
:mod:`syncmsg.testing`, and starts no server until a test asks for a fixture.

Threading: fixtures run on pytest's main thread; servers are child processes. Under
pytest-xdist every worker is its own process with its own session, so ``nats_server``
is shared by the tests of one worker, never across workers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import pytest

from syncmsg.testing import NatsCluster, NatsServer

__all__ = [
    "NatsClusterFactory",
    "NatsServerFactory",
    "nats_cluster_factory",
    "nats_server",
    "nats_server_factory",
    "nats_url",
]


class NatsServerFactory(Protocol):
    """``factory(**kwargs)``: a new :class:`NatsServer`, started unless ``start=False``."""

    def __call__(self, *, start: bool = True, timeout: float = 10.0, **kwargs: Any) -> NatsServer:
        """Create a server from :class:`NatsServer` keyword arguments."""


class NatsClusterFactory(Protocol):
    """``factory(size=3, **kwargs)``: a new :class:`NatsCluster`, started unless told not."""

    def __call__(
        self, size: int = 3, *, start: bool = True, timeout: float = 30.0, **kwargs: Any
    ) -> NatsCluster:
        """Create a cluster from :class:`NatsCluster` keyword arguments."""


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def nats_server() -> Iterator[NatsServer]:
    """One JetStream server (with a monitoring port) shared by this worker's tests.

    Do not stop, kill or restart it: use ``nats_server_factory`` for that.
    """
    server = NatsServer(jetstream=True, http_port=0, name=f"syncmsg-shared-{_worker()}")
    try:
        server.start(timeout=30.0)
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def nats_url(nats_server: NatsServer) -> str:
    """The URL of the shared ``nats_server``."""
    return nats_server.url


@pytest.fixture
def nats_server_factory() -> Iterator[NatsServerFactory]:
    """Make private servers: ``nats_server_factory(token="s3cret")``; closed after the test."""
    made: list[NatsServer] = []

    def factory(*, start: bool = True, timeout: float = 10.0, **kwargs: Any) -> NatsServer:
        server = NatsServer(**kwargs)
        made.append(server)
        if start:
            server.start(timeout=timeout)
        return server

    try:
        yield factory
    finally:
        _close_all(made)


@pytest.fixture
def nats_cluster_factory() -> Iterator[NatsClusterFactory]:
    """Make private clusters: ``nats_cluster_factory(3)``; closed after the test."""
    made: list[NatsCluster] = []

    def factory(
        size: int = 3, *, start: bool = True, timeout: float = 30.0, **kwargs: Any
    ) -> NatsCluster:
        cluster = NatsCluster(size, **kwargs)
        made.append(cluster)
        if start:
            cluster.start(timeout=timeout)
        return cluster

    try:
        yield factory
    finally:
        _close_all(made)


def _close_all(items: Sequence[NatsServer | NatsCluster]) -> None:
    """Close everything (newest first), then re-raise the first error, if any."""
    errors: list[BaseException] = []
    for item in reversed(items):
        try:
            item.close()
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]

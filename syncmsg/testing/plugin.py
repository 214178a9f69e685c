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
from pathlib import Path
from typing import Any, Protocol

import pytest

from syncmsg.testing import (
    AccountsConfig,
    JwtOperator,
    NatsCluster,
    NatsServer,
    TlsCertificates,
)

__all__ = [
    "NatsClusterFactory",
    "NatsSecureFactory",
    "NatsServerFactory",
    "nats_cluster_factory",
    "nats_mtls_server",
    "nats_operator",
    "nats_secure_factory",
    "nats_server",
    "nats_server_factory",
    "nats_tls_certs",
    "nats_tls_first_server",
    "nats_tls_server",
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


class NatsSecureFactory(Protocol):
    """``factory(tls=..., auth=..., **kwargs)``: a started, secured :class:`NatsServer`."""

    def __call__(
        self,
        *,
        tls: bool = False,
        tls_verify: bool = False,
        tls_handshake_first: bool = False,
        auth: AccountsConfig | JwtOperator | None = None,
        config_text: str | None = None,
        start: bool = True,
        timeout: float = 10.0,
        **kwargs: Any,
    ) -> NatsServer:
        """Create a server; ``tls_verify``/``tls_handshake_first`` imply ``tls``."""


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


# --------------------------------------------------------------------------- secured servers


@pytest.fixture(scope="session")
def nats_tls_certs(tmp_path_factory: pytest.TempPathFactory) -> TlsCertificates:
    """A test CA with a server certificate (127.0.0.1, localhost, ::1) and a client one."""
    return TlsCertificates(tmp_path_factory.mktemp("syncmsg-tls"))


@pytest.fixture
def nats_secure_factory(request: pytest.FixtureRequest) -> Iterator[NatsSecureFactory]:
    """Make secured private servers; closed after the test.

    ``nats_secure_factory(tls=True, tls_verify=True, auth=accounts)`` uses the session's
    ``nats_tls_certs`` and ``auth.config_text()`` (an :class:`AccountsConfig` or a
    :class:`JwtOperator`); other keywords go to :class:`NatsServer`. Connect with
    ``syncmsg.connect(server.client_url, **server.connect_options(), **user.connect_options())``.
    """
    made: list[NatsServer] = []

    def factory(
        *,
        tls: bool = False,
        tls_verify: bool = False,
        tls_handshake_first: bool = False,
        auth: AccountsConfig | JwtOperator | None = None,
        config_text: str | None = None,
        start: bool = True,
        timeout: float = 10.0,
        **kwargs: Any,
    ) -> NatsServer:
        if tls or tls_verify or tls_handshake_first:
            kwargs.update(
                tls=request.getfixturevalue("nats_tls_certs"),
                tls_verify=tls_verify,
                tls_handshake_first=tls_handshake_first,
            )
        parts = [text for text in (auth and auth.config_text(), config_text) if text]
        server = NatsServer(config_text="\n".join(parts) if parts else None, **kwargs)
        made.append(server)
        if start:
            server.start(timeout=timeout)
        return server

    try:
        yield factory
    finally:
        _close_all(made)


@pytest.fixture
def nats_tls_server(nats_secure_factory: NatsSecureFactory) -> NatsServer:
    """A started JetStream server that requires TLS (server certificate only).

    ``syncmsg.connect(nats_tls_server.client_url, **nats_tls_server.connect_options())``.
    """
    return nats_secure_factory(tls=True)


@pytest.fixture
def nats_mtls_server(nats_secure_factory: NatsSecureFactory) -> NatsServer:
    """A started JetStream server that requires TLS and a client certificate (mTLS)."""
    return nats_secure_factory(tls_verify=True)


@pytest.fixture
def nats_tls_first_server(nats_secure_factory: NatsSecureFactory) -> NatsServer:
    """A started JetStream server in TLS handshake-first mode (nats-server 2.10+)."""
    return nats_secure_factory(tls_handshake_first=True)


@pytest.fixture
def nats_operator(tmp_path: Path) -> Iterator[JwtOperator]:
    """A fresh :class:`JwtOperator` (operator + system account); creds go to ``tmp_path``."""
    operator = JwtOperator(directory=tmp_path / "nats-jwt")
    yield operator
    operator.cleanup()

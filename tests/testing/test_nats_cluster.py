"""syncmsg.testing.NatsCluster: real 3-node JetStream clusters on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.request
from typing import Any

import nats
import psutil
import pytest

from syncmsg._errors import ConfigurationError
from syncmsg.testing import NatsCluster, NatsServerError, _server
from syncmsg.testing.plugin import NatsClusterFactory

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _jsz(monitor_url: str | None) -> dict[str, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{monitor_url}/jsz", timeout=5) as response:
        data = json.loads(response.read())
    assert isinstance(data, dict)
    return data


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def _quiet(exc: Exception) -> None:
    """nats-py error callback: reconnects during failover are expected."""


async def _until_ok(what: Any, timeout: float = 30.0) -> Any:
    """Retry a JetStream call while a failover elects new leaders (poll, bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await what()
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def test_cluster_forms_and_survives_losing_a_node(
    nats_cluster_factory: NatsClusterFactory,
) -> None:
    cluster = nats_cluster_factory(3)
    servers = cluster.servers
    assert len(servers) == len(cluster) == 3
    assert all(server.is_running for server in servers)
    assert cluster.urls == ",".join(server.url for server in servers)
    assert cluster.url_list == [server.url for server in servers]
    assert len({server.port for server in servers}) == 3

    leader = cluster.wait_for_meta_leader(timeout=10)
    for server in servers:
        meta = _jsz(server.monitor_url)["meta_cluster"]
        assert meta["leader"] == leader.name
        assert meta["cluster_size"] == 3

    async def publish(subject: str, count: int) -> None:
        nc = await nats.connect(cluster.url_list, connect_timeout=5, error_cb=_quiet)
        try:
            js = nc.jetstream(timeout=5)
            await _until_ok(lambda: js.find_stream_name_by_subject("orders.>"))
            for i in range(count):
                await _until_ok(lambda i=i: js.publish(subject, f"{i}".encode()))
        finally:
            await nc.close()

    async def create() -> None:
        nc = await nats.connect(cluster.url_list, connect_timeout=5, error_cb=_quiet)
        try:
            await nc.jetstream(timeout=5).add_stream(
                name="ORDERS", subjects=["orders.>"], num_replicas=3
            )
        finally:
            await nc.close()

    async def messages(url: str) -> int:
        nc = await nats.connect(url, connect_timeout=5, error_cb=_quiet)
        try:
            info = await nc.jetstream(timeout=5).stream_info("ORDERS")
            return int(info.state.messages)
        finally:
            await nc.close()

    asyncio.run(create())
    asyncio.run(publish("orders.before", 5))

    # Kill the meta leader: the other two elect a new one and keep accepting writes.
    index = servers.index(leader)
    killed_pid = leader.pid
    assert killed_pid is not None
    cluster.kill(index)
    assert not leader.is_running
    assert _gone(killed_pid)
    new_leader = cluster.wait_for_meta_leader(timeout=60)
    assert new_leader is not leader
    assert new_leader.is_running
    asyncio.run(publish("orders.during", 5))

    # The killed node comes back on the same ports with its store and catches up.
    port = leader.port
    cluster.restart(index)
    assert leader.is_running
    assert leader.port == port
    assert cluster.wait_for_meta_leader(timeout=30).is_running

    async def caught_up() -> int:
        deadline = time.monotonic() + 30
        while True:
            count = await _until_ok(lambda: messages(leader.url))
            if count == 10 or time.monotonic() > deadline:
                return int(count)
            await asyncio.sleep(0.05)

    assert asyncio.run(caught_up()) == 10


def test_cluster_lifecycle_without_fixture() -> None:
    cluster = NatsCluster(2, name="pair")
    tmp = cluster._tmp
    assert cluster.name == "pair"
    assert "0/2" in repr(cluster)
    with cluster:
        assert "2/2" in repr(cluster)
        pids = [server.pid for server in cluster.servers]
        assert all(pid is not None for pid in pids)
        assert {s.name for s in cluster.servers} == {"pair-n0", "pair-n1"}
        config = cluster.servers[0]._config_file.read_text()
        assert 'server_name: "pair-n0"' in config
        assert "jetstream {" in config
        assert "routes: [" in config

        cluster.stop()
        assert not any(server.is_running for server in cluster.servers)
        with pytest.raises(NatsServerError, match="no node is running"):
            cluster.wait_for_meta_leader(timeout=1)

        cluster.restart(0)  # alone: no quorum, so it does not wait for a leader
        assert cluster.servers[0].is_running
        cluster.start()  # starts the rest and waits for the cluster to form
        assert all(server.is_running for server in cluster.servers)
        assert cluster.wait_for_meta_leader(timeout=10).is_running
        cluster.start()  # all running: just confirms the leader
    assert all(_gone(pid) for pid in pids if pid is not None)
    assert not tmp.exists()
    cluster.close()  # idempotent
    with pytest.raises(NatsServerError, match="closed"):
        cluster.start()


def test_cluster_needs_two_nodes() -> None:
    with pytest.raises(ConfigurationError):
        NatsCluster(1)


def test_cluster_port_clash_repicks_ports(
    nats_cluster_factory: NatsClusterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        real = _server._pick_ports
        calls: list[int] = []

        def clash_once(host: str, count: int) -> list[int]:
            calls.append(count)
            ports = real(host, count)
            return [taken, *ports[1:]] if len(calls) == 1 else ports

        monkeypatch.setattr(_server, "_pick_ports", clash_once)
        cluster = nats_cluster_factory(2, timeout=30)
        assert taken not in [server.port for server in cluster.servers]
        assert cluster.wait_for_meta_leader(timeout=10).is_running


def test_cluster_that_cannot_form_times_out(nats_cluster_factory: NatsClusterFactory) -> None:
    # Nodes that cannot reach each other's routes never elect a meta leader.
    cluster = nats_cluster_factory(3, start=False)
    for server in cluster.servers:
        assert server._config_text is not None
        server._config_text = server._config_text.replace("nats-route://", "nats-route://x")
    started = time.monotonic()
    with pytest.raises(NatsServerError, match="no JetStream meta leader"):
        cluster.start(timeout=2)
    assert time.monotonic() - started < 15

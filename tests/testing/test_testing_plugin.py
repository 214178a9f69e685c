"""The syncmsg.testing pytest plugin: its fixtures here, and in a separate pytest run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from syncmsg.testing import NatsServer, _server
from syncmsg.testing.plugin import NatsServerFactory

pytestmark = pytest.mark.timeout(60)


def _info(server: NatsServer) -> dict[str, object]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        line = sock.makefile("rb").readline()
    assert line.startswith(b"INFO ")
    info = json.loads(line[5:])
    assert isinstance(info, dict)
    return info


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_shared_server(nats_server: NatsServer, nats_url: str) -> None:
    assert nats_server.is_running
    assert nats_url == nats_server.url
    assert nats_server.monitor_url is not None
    assert _info(nats_server)["jetstream"] is True
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    assert nats_server.name == f"syncmsg-shared-{worker}"


def test_server_factory(nats_server_factory: NatsServerFactory, nats_server: NatsServer) -> None:
    first = nats_server_factory()
    second = nats_server_factory(token="s3cret", jetstream=False)
    later = nats_server_factory(start=False)
    assert first.is_running and second.is_running
    assert not later.is_running
    assert len({first.port, second.port, later.port, nats_server.port}) == 4
    assert _info(second)["auth_required"] is True
    assert not _info(second).get("jetstream")
    later.start()
    assert later.is_running


@pytest.mark.slow
def test_plugin_in_a_fresh_pytest_run(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fixtures work in a session of their own, and leave no process behind."""
    pids = tmp_path / "pids.txt"
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(
            f"""
            PIDS = {str(pids)!r}

            def record(*servers):
                with open(PIDS, "a") as f:
                    for server in servers:
                        f.write(f"{{server.pid}}\\n")

            def test_shared(nats_server, nats_url):
                assert nats_url == nats_server.url
                record(nats_server)

            def test_shared_is_shared(nats_server):
                record(nats_server)

            def test_factory(nats_server_factory):
                a = nats_server_factory()
                b = nats_server_factory(user="u", password="p")
                assert a.port != b.port
                record(a, b)

            def test_cluster_factory(nats_cluster_factory):
                cluster = nats_cluster_factory(2)
                assert cluster.wait_for_meta_leader().is_running
                record(*cluster.servers)
            """
        )
    )
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:cov"]
    if not request.config.pluginmanager.has_plugin("syncmsg"):
        # Not installed (no pytest11 entry point): load the plugin by module name.
        args += ["-p", "syncmsg.testing.plugin"]
    env = {**os.environ, "PYTHONPATH": str(Path(_server.__file__).parents[2])}
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run(
        [*args, "test_inner.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout
    recorded = [int(line) for line in pids.read_text().split()]
    assert len(recorded) == 6
    assert recorded[0] == recorded[1]  # one session-scoped server for both tests
    assert all(_gone(pid) for pid in recorded)

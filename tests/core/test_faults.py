"""Server restarts, reconnect buffering, fork, exit without close, auth and TLS."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import syncmsg
from syncmsg._subscription import SLOW_CONSUMER_REPORT_INTERVAL

pytestmark = pytest.mark.slow


def test_reconnect_across_a_restart_with_publishes_buffered_meanwhile(
    nats_server_factory, wait_until
):
    server = nats_server_factory()
    status: list[str] = []
    received: list[int] = []
    with syncmsg.connect(
        server.url,
        reconnect_wait=0.05,
        disconnected_callback=lambda: status.append("disconnected"),
        reconnected_callback=lambda: status.append("reconnected"),
    ) as client:
        client.subscribe("survive.>", lambda m: received.append(int(m.data)))
        for i in range(100):
            client.publish("survive.before", str(i))
        client.flush()
        wait_until(lambda: len(received) == 100)
        server.stop()
        wait_until(lambda: client.state is syncmsg.ClientState.RECONNECTING)
        assert not client.is_connected
        for i in range(100, 300):
            client.publish("survive.during", str(i))  # buffered while disconnected
        assert client.stats()["buffered_bytes"] > 0
        assert not client.health()["ok"]
        server.start()
        wait_until(lambda: client.is_connected, timeout=15)
        client.flush()
        wait_until(lambda: len(received) == 300, timeout=10)
        assert received == list(range(300))
        assert client.stats()["reconnects"] == 1
        wait_until(lambda: status == ["disconnected", "reconnected"])


def test_buffer_full_while_disconnected_raises_and_memory_stays_bounded(
    nats_server_factory, wait_until
):
    server = nats_server_factory()
    with syncmsg.connect(
        server.url, reconnect_buffer_size=64 * 1024, reconnect_wait=0.05
    ) as client:
        server.stop()
        wait_until(lambda: not client.is_connected)
        accepted = 0
        with pytest.raises(syncmsg.BufferFullError):
            for _ in range(100_000):
                client.publish("buffered", b"x" * 128)
                accepted += 1
        # The bound is checked against what the loop has moved, so one batch may overshoot.
        assert 0 < accepted < 10_000
        assert client.stats()["buffered_bytes"] <= 2 * 1024 * 1024
        server.start()
        wait_until(lambda: client.is_connected, timeout=15)
        client.publish("buffered", b"after")  # room again once reconnected
        client.flush()


def test_fork_child_and_parent_both_publish_and_request(nats_url, wait_until):
    if not hasattr(os, "fork"):
        pytest.skip("needs os.fork")
    script = textwrap.dedent(
        f"""
        import os, sys, syncmsg
        client = syncmsg.connect({nats_url!r})
        client.serve("fork.echo." + str(os.getpid()), lambda m: m.data)
        assert client.request("fork.echo." + str(os.getpid()), b"pre", timeout=5).data == b"pre"
        pid = os.fork()
        if pid == 0:
            try:
                client.publish("fork.events", b"child")
                reply = client.request("fork.svc", b"child", timeout=5)
                client.publish("fork.events", b"child-got-" + reply.data)
                client.flush(timeout=5)
                client.close(timeout=5)
                os._exit(0)
            except BaseException as exc:
                print("child failed:", repr(exc), file=sys.stderr, flush=True)
                os._exit(3)
        client.publish("fork.events", b"parent")
        reply = client.request("fork.svc", b"parent", timeout=5)
        client.publish("fork.events", b"parent-got-" + reply.data)
        client.flush(timeout=5)
        _, status = os.waitpid(pid, 0)
        client.close(timeout=5)
        sys.exit(os.waitstatus_to_exitcode(status))
        """
    )
    events: list[bytes] = []
    with syncmsg.connect(nats_url) as observer:
        observer.serve("fork.svc", lambda m: b"ok:" + m.data, workers=2)
        observer.subscribe("fork.events", lambda m: events.append(m.data))
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        wait_until(lambda: len(events) == 4)
    assert sorted(events) == sorted(
        [b"child", b"child-got-ok:child", b"parent", b"parent-got-ok:parent"]
    )


def test_process_exit_without_close_flushes_and_does_not_hang(nats_url, wait_until):
    script = textwrap.dedent(
        f"""
        import syncmsg
        client = syncmsg.connect({nats_url!r})
        client.subscribe("exit.ignored", lambda m: None)
        for i in range(5000):
            client.publish("exit.count", str(i))
        print("published", flush=True)
        # no close(), no flush(): the atexit hook must deliver them
        """
    )
    got: list[int] = []
    with syncmsg.connect(nats_url) as observer:
        observer.subscribe("exit.count", lambda m: got.append(int(m.data)))
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
        )
        assert proc.returncode == 0, proc.stderr
        assert "published" in proc.stdout
        wait_until(lambda: len(got) == 5000, timeout=10)
    assert got == list(range(5000))


def test_exit_with_the_server_gone_does_not_hang(nats_server_factory):
    server = nats_server_factory()
    script = textwrap.dedent(
        f"""
        import os, signal, syncmsg
        client = syncmsg.connect({server.url!r}, atexit_timeout=1.0, reconnect_wait=0.05)
        os.kill({server.pid}, signal.SIGKILL)
        for i in range(100):
            client.publish("gone", b"x")
        print("done", flush=True)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    assert "done" in proc.stdout


def test_wrong_credentials_raise_authorization_error(nats_server_factory):
    server = nats_server_factory(user="alice", password="s3cret-pw")
    once = syncmsg.RetryPolicy.never()
    with pytest.raises(syncmsg.AuthorizationError) as info:
        syncmsg.connect(server.url, user="alice", password="wrong-pw", connect_retry=once)
    assert "wrong-pw" not in str(info.value)
    assert isinstance(info.value, PermissionError)
    with syncmsg.connect(server.url, user="alice", password="s3cret-pw") as client:
        assert client.health()["ok"]
        assert "s3cret" not in repr(client.config)


def test_token_auth(nats_server_factory):
    server = nats_server_factory(token="tok-123")
    with syncmsg.connect(server.url, token="tok-123") as client:
        assert client.health()["ok"]
    with pytest.raises(syncmsg.AuthorizationError):
        syncmsg.connect(server.url, token="nope", connect_retry=syncmsg.RetryPolicy.never())


def test_tls_with_a_test_ca(nats_server_factory, tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_path, cert_path, key_path = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    server = nats_server_factory(tls_cert=str(cert_path), tls_key=str(key_path))
    url = server.url.replace("nats://", "tls://")
    with syncmsg.connect(url, tls_ca=ca_path) as client:
        client.serve("tls.echo", lambda m: m.data)
        assert client.request("tls.echo", b"secure").data == b"secure"
    with pytest.raises(syncmsg.ConfigurationError):
        syncmsg.connect(url, tls_ca=tmp_path / "missing.pem")


def test_slow_consumer_is_reported_and_memory_is_bounded(client, wait_until):
    errors: list[BaseException] = []
    gate = threading.Event()
    sub = client.subscribe(
        "flood",
        lambda m: gate.wait(10),
        pending_msgs_limit=100,
        error_callback=lambda e, m: errors.append(e),
    )
    started = time.monotonic()
    try:
        for _ in range(5000):
            client.publish("flood", b"x")
        client.flush()
        wait_until(lambda: errors)
        assert isinstance(errors[0], syncmsg.SlowConsumerError)
        assert errors[0].subject == "flood"
        assert errors[0].dropped > 0
        assert sub.pending <= 100
        # Rate-limited: one report a second (however slow this machine is), not one per drop.
        assert len(errors) <= (time.monotonic() - started) / SLOW_CONSUMER_REPORT_INTERVAL + 1
    finally:
        gate.set()
    wait_until(lambda: sub.stats()["dropped"] > 4000)
    sub.unsubscribe()

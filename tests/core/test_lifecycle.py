"""The client's life under the failures real users hit: forks, nats-py giving up, closes.

Each test here reproduces a defect of the first release (issue: core hardening) against a
real nats-server, and shows it gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
import uuid
from typing import Any

import psutil
import pytest

import syncmsg
from syncmsg import ClientState
from syncmsg.jetstream import StreamSpec

pytestmark = pytest.mark.timeout(120)


def _wait_child(pid: int, timeout: float = 60.0) -> int:
    """The exit code of a forked child, waiting at most ``timeout`` (then kill it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    raise AssertionError("the forked child did not finish in time")


def client_closed(client: syncmsg.Client) -> Any:
    return lambda: client.is_closed


# ----------------------------------------------------------------------------- 1. fork
@pytest.mark.slow
@pytest.mark.parametrize("trial", range(3))
def test_every_thread_of_a_forked_child_gets_the_new_connection(nats_url, trial):
    """Connect, fork, then 8 threads of the child publish, request, subscribe and use
    JetStream at once (a barrier releases them): all 8 succeed in every trial."""
    stream = f"FORK{uuid.uuid4().hex[:8].upper()}"
    client = syncmsg.connect(nats_url, timeout=10.0)
    js = client.jetstream()
    js.ensure_stream(StreamSpec(name=stream, subjects=[f"{stream.lower()}.>"]))
    client.serve("fork.echo", lambda m: m.data)
    seen = client.subscribe_sync("fork.race.>")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the module-level client of a gunicorn --preload worker
        os.close(read_end)
        results: list[str] = []
        barrier = threading.Barrier(8)

        def work(i: int) -> None:
            try:
                barrier.wait(10)
                client.publish(f"fork.race.{i}", str(i))
                answer = client.request("fork.echo", f"hi {i}".encode(), timeout=10)
                assert answer.data == f"hi {i}".encode()
                sub = client.subscribe_sync(f"fork.mine.{i}")
                client.publish(f"fork.mine.{i}", b"x")
                assert sub.next_msg(timeout=10).data == b"x"
                ack = client.jetstream().publish(f"{stream.lower()}.{i}", b"js")
                assert ack.stream == stream
                results.append("ok")
            except BaseException as exc:
                results.append(f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        os.write(write_end, json.dumps(results).encode())
        os.close(write_end)
        client.close(timeout=5)
        os._exit(0)
    os.close(write_end)
    try:
        assert _wait_child(pid) == 0
        with os.fdopen(read_end, "rb") as pipe:
            results = json.loads(pipe.read() or b"[]")
        assert results == ["ok"] * 8, results
        subjects = sorted(seen.next_msg(timeout=5).subject for _ in range(8))
        assert subjects == sorted(f"fork.race.{i}" for i in range(8))
        assert js.stream_info(stream).state.messages == 8
        assert client.is_connected  # the parent's connection was never touched
    finally:
        js.delete_stream(stream)
        client.close()


# ----------------------------------------------------------------------------- 2. zombies
def _nats_client(client: syncmsg.Client) -> Any:
    """The nats-py client under ``client`` (white-box: only these tests reach for it)."""
    return client.connection().nc


def test_nats_py_closing_its_client_does_not_close_ours(nats_url, wait_until):
    """nats-py closed under us: the connection is replaced, subscriptions come back."""
    events: list[str] = []
    received: list[bytes] = []
    with syncmsg.connect(
        nats_url,
        disconnected_callback=lambda: events.append("disconnected"),
        reconnected_callback=lambda: events.append("reconnected"),
    ) as client:
        client.subscribe("zombie.sub", lambda m: received.append(m.data))
        client.serve("zombie.echo", lambda m: m.data)
        nc = _nats_client(client)
        client.connection().call(nc.close(), 5, "close nats-py's client")
        wait_until(lambda: client.is_connected and _nats_client(client) is not nc, timeout=15)
        client.publish("zombie.sub", b"after")
        assert client.request("zombie.echo", b"ping", timeout=5).data == b"ping"
        wait_until(lambda: received == [b"after"])
        wait_until(lambda: events == ["disconnected", "reconnected"])
        assert client.reconnects == 1


def test_a_close_task_that_dies_half_way_is_noticed(nats_url, wait_until):
    """nats-py's close task may die (ConnectionResetError) before its closed callback;
    the client must not go on claiming CONNECTED on a dead connection."""
    with syncmsg.connect(nats_url) as client:
        client.serve("half.echo", lambda m: m.data)
        nc = _nats_client(client)
        # Close without any callback: what a close task that died half way leaves behind.
        client.connection().call(nc._close(nc.CLOSED, do_cbs=False), 5, "close silently")
        wait_until(lambda: _nats_client(client) is not nc and client.is_connected, timeout=15)
        assert client.request("half.echo", b"x", timeout=5).data == b"x"


def test_a_fatal_server_error_is_survived(nats_server_factory, wait_until):
    """The server closes the connection on a control line over its limit (here lowered
    below syncmsg's own check); the client reconnects and keeps working."""
    server = nats_server_factory(config_text="max_control_line: 256\n")
    errors: list[BaseException] = []
    with syncmsg.connect(server.url, error_callback=lambda e, m: errors.append(e)) as client:
        client.serve("fatal.echo", lambda m: m.data)
        nc = _nats_client(client)
        client.publish("fatal." + "x" * 400, b"too long a line")
        wait_until(lambda: _nats_client(client) is not nc and client.is_connected, timeout=15)
        assert client.request("fatal.echo", b"still here", timeout=5).data == b"still here"
        assert client.state is ClientState.CONNECTED


def test_max_subscriptions_refuses_one_subscription_and_keeps_the_connection(
    nats_server_factory,
):
    server = nats_server_factory(config_text="max_subscriptions: 4\n")
    with syncmsg.connect(server.url) as client:
        client.serve("limit.echo", lambda m: m.data)  # the reply inbox is one, this two
        subs = [client.subscribe_sync(f"limit.{i}") for i in range(2)]
        with pytest.raises(syncmsg.SyncMsgError, match="refused the subscription"):
            client.subscribe_sync("limit.too.many")
        assert client.is_connected
        assert client.request("limit.echo", b"ok", timeout=5).data == b"ok"
        client.publish("limit.0", b"m")
        assert subs[0].next_msg(timeout=5).data == b"m"


def test_headers_count_against_max_payload(nats_server_factory):
    server = nats_server_factory(config_text="max_payload: 1024\n")
    with syncmsg.connect(server.url) as client:
        assert client.max_payload == 1024
        client.serve("size.echo", lambda m: b"ok")
        with pytest.raises(syncmsg.PayloadTooLargeError, match="payload and headers"):
            client.publish("size.big", b"x" * 1000, headers={"K": "v" * 100})
        with pytest.raises(syncmsg.PayloadTooLargeError):
            client.request("size.echo", b"x" * 1000, headers={"K": "v" * 100})
        client.publish("size.small", b"x" * 900, headers={"K": "v"})
        assert client.request("size.echo", b"fine", timeout=5).data == b"ok"
        assert client.is_connected


def test_the_users_reconnect_limit_closes_the_client_and_frees_its_threads(
    nats_server_factory, wait_until
):
    server = nats_server_factory()
    closed = threading.Event()
    process = psutil.Process()
    threads_before = threading.active_count()
    fds_before = process.num_fds()
    for _ in range(6):
        server.start()
        client = syncmsg.connect(
            server.url,
            max_reconnect_attempts=1,
            reconnect_wait=0.05,
            closed_callback=closed.set,
        )
        client.subscribe("lost.sub", lambda m: None)
        server.stop()
        wait_until(client_closed(client), timeout=20)
        assert closed.wait(5)
        closed.clear()
        with pytest.raises(syncmsg.ConnectionClosedError):
            client.publish("lost.sub", b"x")
        client.close()
    wait_until(lambda: threading.active_count() <= threads_before + 1, timeout=10)
    assert process.num_fds() <= fds_before + 3


# ----------------------------------------------------------------------------- 3. close
def test_close_discards_a_large_unread_backlog_at_once(client_factory, caplog):
    """It used to take the whole close budget and abandon the loop thread. On an idle
    machine it takes about 0.2 s; the bound here only has to tell that from the budget."""
    client = client_factory()
    other = client_factory()
    sub = client.subscribe_sync("backlog.burst")
    for _ in range(200_000):
        other.publish("backlog.burst", b"m")
    other.flush(timeout=30)
    started = time.monotonic()
    client.close(timeout=30)
    assert time.monotonic() - started < 10.0
    assert client.is_closed
    assert not sub.is_active
    assert "did not stop in time" not in caplog.text
    assert "abandoned" not in caplog.text


def test_close_from_many_threads_returns_when_closed(nats_url):
    client = syncmsg.connect(nats_url)
    gate = threading.Event()
    client.subscribe("slow.close", lambda m: gate.wait(0.5))
    client.publish("slow.close", b"x")
    client.flush()
    states: list[ClientState] = []
    threads = [
        threading.Thread(target=lambda: (client.close(timeout=10), states.append(client.state)))
        for _ in range(10)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert states == [ClientState.CLOSED] * 10


def test_a_request_in_flight_is_woken_first_when_closing_with_the_server_gone(
    nats_server_factory, wait_until
):
    server = nats_server_factory()
    client = syncmsg.connect(server.url, reconnect_wait=0.05)
    outcome: list[tuple[type[BaseException], float]] = []

    def waiter() -> None:
        try:
            client.request("nobody.home.yet", timeout=30)
        except BaseException as exc:
            outcome.append((type(exc), time.monotonic()))

    server.kill()
    wait_until(lambda: client.state is ClientState.RECONNECTING)
    thread = threading.Thread(target=waiter)
    thread.start()
    wait_until(lambda: len(client.connection().replies) == 1)
    started = time.monotonic()
    client.close(timeout=4)
    thread.join(5)
    assert outcome and outcome[0][0] is syncmsg.ConnectionClosedError
    assert outcome[0][1] - started < 2.0  # woken before the close's own work, not after


def test_close_reports_disconnected_before_closed(nats_url, wait_until):
    events: list[str] = []
    client = syncmsg.connect(
        nats_url,
        disconnected_callback=lambda: events.append("disconnected"),
        closed_callback=lambda: events.append("closed"),
    )
    client.close()
    wait_until(lambda: len(events) == 2)
    assert events == ["disconnected", "closed"]


# ----------------------------------------------------------------------------- 16. state
def test_state_is_connected_and_health_never_disagree(nats_server_factory, wait_until):
    server = nats_server_factory()
    with syncmsg.connect(server.url, reconnect_wait=0.05) as client:
        stop = threading.Event()
        disagreements: list[tuple[Any, ...]] = []

        def load() -> None:
            while not stop.is_set():
                with contextlib.suppress(syncmsg.SyncMsgError):
                    client.publish("agree.load", b"x" * 512)

        def watch() -> None:
            while not stop.is_set():
                before, connected, after = client.state, client.is_connected, client.state
                if before is after and connected != (before is ClientState.CONNECTED):
                    disagreements.append((before, connected))
                health = client.health(timeout=0.2)  # one snapshot: it must agree with itself
                if health["connected"] != (health["state"] == "connected"):
                    disagreements.append((health["state"], health["connected"]))

        workers = [threading.Thread(target=load) for _ in range(2)]
        workers.append(threading.Thread(target=watch))
        for worker in workers:
            worker.start()
        server.stop()
        wait_until(lambda: client.state is ClientState.RECONNECTING)
        assert client.health()["state"] == "reconnecting"
        assert not client.is_connected
        server.start()
        wait_until(lambda: client.is_connected, timeout=15)
        stop.set()
        for worker in workers:
            worker.join(10)
        assert disagreements == []


def test_flush_while_reconnecting_waits_for_the_connection(nats_server_factory, wait_until):
    server = nats_server_factory()
    received: list[bytes] = []
    with syncmsg.connect(server.url, reconnect_wait=0.05) as client:
        client.subscribe("flush.wait", lambda m: received.append(m.data))
        server.stop()
        wait_until(lambda: client.state is ClientState.RECONNECTING)
        client.publish("flush.wait", b"buffered")
        with pytest.raises(syncmsg.TimeoutError):
            client.flush(timeout=0.3)
        server.start()
        client.flush(timeout=15)
        wait_until(lambda: received == [b"buffered"])


def test_no_invalid_state_error_after_flushes_that_time_out(nats_url, caplog):
    """A PONG for a flush that gave up must not break nats-py's reader."""
    with syncmsg.connect(nats_url) as client:
        conn = client.connection()

        async def flush_that_gives_up() -> None:
            with pytest.raises(asyncio.TimeoutError):
                await conn._ping(1e-9)

        for _ in range(20):
            conn.call(flush_that_gives_up(), 5, "test")
        client.flush(timeout=5)  # the reader still works
    assert "InvalidStateError" not in caplog.text

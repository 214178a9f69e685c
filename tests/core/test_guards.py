"""Input validation, the loop-thread guard, use after close, lifecycle and thread hygiene."""

from __future__ import annotations

import concurrent.futures
import socket
import threading
import time

import pytest

import syncmsg

BAD_PUBLISH_SUBJECTS = [
    "",
    "has space",
    "tab\tsubject",
    "crlf\r\nPUB x 1",
    "new\nline",
    "empty..token",
    ".leading",
    "trailing.",
    "wild.*",
    "wild.>",
    ">",
    "*",
]


@pytest.mark.parametrize("subject", BAD_PUBLISH_SUBJECTS)
def test_invalid_publish_subjects_are_refused_before_the_wire(client, other_client, subject):
    spy = other_client.subscribe_sync(">")
    with pytest.raises(syncmsg.InvalidSubjectError) as info:
        client.publish(subject, b"x")
    assert isinstance(info.value, ValueError)
    with pytest.raises(syncmsg.InvalidSubjectError):
        client.request(subject, b"x")
    client.flush()
    other_client.flush()
    with pytest.raises(syncmsg.TimeoutError):
        spy.next_msg(0.05)


@pytest.mark.parametrize("subject", ["a..b", "a.>.b", "sp ace", ""])
def test_invalid_subscribe_subjects(client, subject):
    with pytest.raises(syncmsg.InvalidSubjectError):
        client.subscribe_sync(subject)


def test_invalid_reply_and_queue(client):
    with pytest.raises(syncmsg.InvalidSubjectError):
        client.publish("ok", reply="bad reply")
    with pytest.raises(syncmsg.InvalidSubjectError):
        client.subscribe_sync("ok", queue="bad queue")
    with pytest.raises(syncmsg.InvalidSubjectError):
        client.publish(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.subscribe("ok", "not callable")  # type: ignore[arg-type]


def test_check_token():
    assert syncmsg.check_token("planner") == "planner"
    for bad in ["", "a.b", "a*", ">", "a b", "x\n"]:
        with pytest.raises(syncmsg.InvalidSubjectError):
            syncmsg.check_token(bad)


def test_blocking_call_from_the_loop_thread_raises_instead_of_deadlocking(client):
    result: concurrent.futures.Future[BaseException | None] = concurrent.futures.Future()

    def on_loop() -> None:
        try:
            client.flush(timeout=1)
            result.set_result(None)
        except BaseException as exc:
            result.set_result(exc)

    client.connection().loop.call_soon_threadsafe(on_loop)
    error = result.result(5)
    assert isinstance(error, syncmsg.LoopThreadError)
    assert isinstance(error, RuntimeError)
    assert "event loop thread" in str(error)

    request_result: concurrent.futures.Future[BaseException | None] = concurrent.futures.Future()

    def request_on_loop() -> None:
        try:
            client.request("x", timeout=1)
            request_result.set_result(None)
        except BaseException as exc:
            request_result.set_result(exc)

    client.connection().loop.call_soon_threadsafe(request_on_loop)
    assert isinstance(request_result.result(5), syncmsg.LoopThreadError)
    assert client.health()["ok"]


def test_use_after_close_raises_connection_closed(nats_url):
    client = syncmsg.connect(nats_url)
    sub = client.subscribe_sync("after.close")
    client.close()
    client.close()  # idempotent
    assert client.is_closed and not client.is_connected
    for call in (
        lambda: client.publish("x"),
        lambda: client.request("x"),
        lambda: client.flush(),
        lambda: client.subscribe_sync("x"),
        lambda: client.jetstream(),
        lambda: client.connect(),
    ):
        with pytest.raises(syncmsg.ConnectionClosedError):
            call()
    with pytest.raises(syncmsg.ConnectionClosedError):
        sub.next_msg(0.1)
    assert client.health()["ok"] is False
    assert client.stats()["state"] == "closed"


def test_close_wakes_a_waiting_request(nats_url, wait_until):
    client = syncmsg.connect(nats_url)
    silent = client.subscribe_sync("never.answers")  # receives, never replies
    outcome: concurrent.futures.Future[BaseException] = concurrent.futures.Future()

    def waiter() -> None:
        try:
            client.request("never.answers", timeout=30)
        except BaseException as exc:
            outcome.set_result(exc)

    thread = threading.Thread(target=waiter)
    thread.start()
    wait_until(lambda: silent.pending == 1)
    started = time.monotonic()
    client.close(timeout=3)
    assert isinstance(outcome.result(5), syncmsg.ConnectionClosedError)
    assert time.monotonic() - started < 5
    thread.join(5)


def test_replies_and_acks_still_flow_while_the_client_drains(nats_url, wait_until):
    client = syncmsg.connect(nats_url)
    gate = threading.Event()
    client.serve("slow.answer", lambda m: gate.wait(10) and b"answered")
    result: concurrent.futures.Future[bytes] = concurrent.futures.Future()
    threading.Thread(
        target=lambda: result.set_result(client.request("slow.answer", timeout=10).data)
    ).start()
    wait_until(lambda: client.stats()["subscriptions"][0]["delivered"] == 1)
    threading.Timer(0.2, gate.set).start()
    client.close(timeout=5)  # drains: the handler's reply still goes out
    assert result.result(5) == b"answered"


def test_close_from_inside_a_callback_does_not_deadlock(nats_url, wait_until):
    client = syncmsg.connect(nats_url)
    closed = threading.Event()

    def closer(msg: syncmsg.Msg) -> None:
        client.close(timeout=5)
        closed.set()

    client.subscribe("close.me", closer)
    client.publish("close.me")
    assert closed.wait(10)
    assert client.is_closed


def test_drain_client(nats_url):
    handled: list[int] = []
    with syncmsg.connect(nats_url) as client:
        client.subscribe("client.drain", lambda m: handled.append(1))
        for _ in range(50):
            client.publish("client.drain")
        client.flush()
        client.drain(timeout=5)
        assert client.state is syncmsg.ClientState.CLOSED
    assert len(handled) == 50


def test_no_thread_leak_after_fifty_connect_close_cycles(nats_url, wait_until):
    def syncmsg_threads() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("syncmsg-")]

    wait_until(lambda: not syncmsg_threads() or True)
    before = len(syncmsg_threads())
    for i in range(50):
        with syncmsg.connect(nats_url) as client:
            client.subscribe("leak.check", lambda m: None, workers=2)
            client.publish("leak.check", str(i))
            client.flush()
    wait_until(lambda: len(syncmsg_threads()) <= before, timeout=10)


def test_connect_to_nothing_fails_fast_with_a_clear_error():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    policy = syncmsg.RetryPolicy(attempts=2, deadline=3, initial=0.05)
    with pytest.raises(syncmsg.NoServersError) as info:
        syncmsg.connect(f"nats://127.0.0.1:{port}", connect_retry=policy, connect_timeout=0.5)
    assert f"127.0.0.1:{port}" in str(info.value)


def test_connect_with_a_config_object(nats_url):
    config = syncmsg.Config(url=nats_url, name="cfg-test")
    with syncmsg.connect(config=config, timeout=3) as client:
        assert client.config.timeout == 3
        assert client.config.name == "cfg-test"
    with pytest.raises(syncmsg.ConfigurationError):
        syncmsg.connect(config="nope")  # type: ignore[arg-type]


def test_client_lifecycle_without_context_manager(nats_url):
    client = syncmsg.Client(syncmsg.Config(url=nats_url))
    assert client.state is syncmsg.ClientState.NEW
    with pytest.raises(syncmsg.ConnectionClosedError, match="connect"):
        client.publish("x")
    assert client.connect() is client
    assert client.connect() is client  # already connected: no-op
    assert client.state is syncmsg.ClientState.CONNECTED
    client.close()
    assert client.state is syncmsg.ClientState.CLOSED
    never = syncmsg.Client(syncmsg.Config(url=nats_url))
    never.close()
    assert never.is_closed

"""Publish, subscribe, request/reply and serve against a real nats-server."""

from __future__ import annotations

import builtins
import threading
from collections import defaultdict

import pytest
from pydantic import BaseModel, Field

import syncmsg


class Order(BaseModel):
    order_id: int = Field(alias="orderId")
    item: str


def test_publish_and_subscribe_deliver_in_order(client, wait_until):
    got: list[bytes] = []
    client.subscribe("basic.order", lambda m: got.append(m.data))
    for i in range(500):
        client.publish("basic.order", str(i))
    client.flush()
    wait_until(lambda: len(got) == 500)
    assert got == [str(i).encode() for i in range(500)]


def test_sixteen_threads_publish_at_once_and_every_message_arrives(
    client, other_client, wait_until
):
    per_thread = 2000
    seen: dict[str, list[int]] = defaultdict(list)
    lock = threading.Lock()

    def record(msg: syncmsg.Msg) -> None:
        thread, number = msg.text().split(":")
        with lock:
            seen[thread].append(int(number))

    other_client.subscribe("fanin.>", record)
    start = threading.Barrier(16)

    def publisher(name: str) -> None:
        start.wait()
        for i in range(per_thread):
            client.publish(f"fanin.{name}", f"{name}:{i}")

    threads = [threading.Thread(target=publisher, args=(f"t{n}",)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    client.flush()
    wait_until(lambda: sum(len(v) for v in seen.values()) == 16 * per_thread, timeout=30)
    for name, numbers in seen.items():
        assert numbers == list(range(per_thread)), f"{name} lost or reordered messages"


def test_callbacks_run_on_worker_threads_not_the_loop(client, wait_until):
    names: list[str] = []
    client.subscribe("where.am.i", lambda m: names.append(threading.current_thread().name))
    client.publish("where.am.i")
    wait_until(lambda: names)
    assert names[0].startswith("syncmsg-sub-")
    assert not any(
        t.name.startswith("syncmsg-loop") and t.name == names[0] for t in threading.enumerate()
    )


def test_blocking_callback_does_not_stall_other_traffic(client, wait_until):
    release = threading.Event()
    entered = threading.Event()

    def stuck(msg: syncmsg.Msg) -> None:
        entered.set()
        release.wait(20)

    fast: list[bytes] = []
    client.subscribe("slow.lane", stuck)
    client.subscribe("fast.lane", lambda m: fast.append(m.data))
    client.serve("echo.lane", lambda m: m.data)
    client.publish("slow.lane", b"block")
    assert entered.wait(5)
    for i in range(100):
        client.publish("fast.lane", str(i))
    wait_until(lambda: len(fast) == 100)
    assert client.request("echo.lane", b"ping", timeout=2).data == b"ping"
    assert client.health()["ok"]
    release.set()


def test_request_from_inside_a_callback(client, wait_until):
    client.serve("inner.svc", lambda m: b"inner:" + m.data)
    answers: list[bytes] = []

    def outer(msg: syncmsg.Msg) -> None:
        answers.append(client.request("inner.svc", msg.data, timeout=2).data)

    client.subscribe("outer.topic", outer)
    client.publish("outer.topic", b"x")
    wait_until(lambda: answers)
    assert answers == [b"inner:x"]


def test_payload_types_are_encoded(client):
    sub = client.subscribe_sync("enc.>")
    client.publish("enc.bytes", b"\x00\x01")
    client.publish("enc.str", "héllo")
    client.publish("enc.dict", {"a": [1, 2]})
    client.publish("enc.list", [1, "x"])
    client.publish("enc.model", Order(orderId=7, item="tea"))
    client.publish("enc.none", None)
    client.publish("enc.bytearray", bytearray(b"ba"))
    assert sub.next_msg(2).data == b"\x00\x01"
    assert sub.next_msg(2).text() == "héllo"
    assert sub.next_msg(2).json() == {"a": [1, 2]}
    assert sub.next_msg(2).json() == [1, "x"]
    order = sub.next_msg(2)
    assert order.json() == {"orderId": 7, "item": "tea"}
    assert order.parse(Order).order_id == 7
    assert sub.next_msg(2).data == b""
    assert sub.next_msg(2).data == b"ba"


def test_bad_payload_is_refused_before_the_wire(client):
    with pytest.raises(syncmsg.PayloadError):
        client.publish("enc.bad", object())  # type: ignore[arg-type]
    with pytest.raises(syncmsg.PayloadError):
        client.publish("enc.bad", {"x": object()})
    msg = syncmsg.Msg("s", b"not json")
    with pytest.raises(syncmsg.PayloadError):
        msg.json()
    with pytest.raises(syncmsg.PayloadError):
        syncmsg.Msg("s", b'{"orderId": "x"}').parse(Order)


def test_headers_round_trip_and_bad_headers_are_refused(client):
    sub = client.subscribe_sync("hdr.test")
    client.publish("hdr.test", b"x", headers={"X-One": "1", "X-Many": ["a", "b"]})
    msg = sub.next_msg(2)
    assert msg.headers is not None
    assert msg.headers["X-One"] == "1"
    with pytest.raises(syncmsg.InvalidHeaderError):
        client.publish("hdr.test", b"x", headers={"Bad Key": "v"})
    with pytest.raises(syncmsg.InvalidHeaderError):
        client.publish("hdr.test", b"x", headers={"K": "v\r\nPUB evil 1"})
    with pytest.raises(syncmsg.InvalidHeaderError):
        client.publish("hdr.test", b"x", headers={"K": 1})  # type: ignore[dict-item]


def test_request_reply_and_respond(client):
    def handler(msg: syncmsg.Msg) -> None:
        msg.respond({"got": msg.json()}, headers={"X-Handled": "yes"})

    client.subscribe("svc.manual", handler)
    reply = client.request("svc.manual", {"n": 1}, headers={"X-Req": "1"}, timeout=2)
    assert reply.json() == {"got": {"n": 1}}
    assert reply.headers is not None and reply.headers["X-Handled"] == "yes"
    with pytest.raises(ValueError, match="no reply subject"):
        syncmsg.Msg("x", b"").respond(b"")


def test_serve_error_becomes_remote_error(client, wait_until):
    def failing(msg: syncmsg.Msg) -> bytes:
        raise KeyError("missing\nthing")

    errors: list[BaseException] = []
    client.serve("svc.fail", failing, error_callback=lambda e, m: errors.append(e))
    with pytest.raises(syncmsg.RemoteError) as info:
        client.request("svc.fail", b"", timeout=2)
    assert "missing" in info.value.description
    assert info.value.code == "500"
    wait_until(lambda: errors)  # reported after the error reply went out
    assert isinstance(errors[0], KeyError)


def test_no_responders_and_timeouts(client):
    with pytest.raises(syncmsg.NoRespondersError):
        client.request("nobody.home", b"", timeout=2)
    release = threading.Event()
    client.serve("svc.slow", lambda m: release.wait(5) and b"late")
    with pytest.raises(syncmsg.TimeoutError) as info:
        client.request("svc.slow", b"", timeout=0.2)
    assert isinstance(info.value, builtins.TimeoutError)
    release.set()
    sub = client.subscribe_sync("empty.subject")
    with pytest.raises(builtins.TimeoutError):
        sub.next_msg(timeout=0.05)
    with pytest.raises(ValueError, match="positive"):
        client.flush(timeout=0)


def test_request_retry_policy_retries_until_a_responder_appears(client, wait_until):
    attempts: list[int] = []
    policy = syncmsg.RetryPolicy(attempts=20, deadline=10, initial=0.05, maximum=0.2)
    started = threading.Event()

    def late_responder() -> None:
        started.wait(5)
        client.serve("svc.late", lambda m: b"finally")

    threading.Thread(target=late_responder, daemon=True).start()

    def observe(exc: BaseException) -> bool:
        attempts.append(1)
        started.set()
        return isinstance(exc, syncmsg.NoRespondersError)

    reply = policy.call(
        lambda left: client.request("svc.late", b"", timeout=min(left or 1, 1)),
        should_retry=observe,
    )
    assert reply.data == b"finally"
    assert attempts
    assert client.request("svc.late", b"", retry=policy, timeout=1).data == b"finally"


def test_queue_groups_share_the_work(client, wait_until):
    counts = [0, 0]

    def member(i: int):
        def handle(msg: syncmsg.Msg) -> None:
            counts[i] += 1

        return handle

    client.subscribe("work.q", member(0), queue="workers")
    client.subscribe("work.q", member(1), queue="workers")
    for _ in range(200):
        client.publish("work.q", b"")
    wait_until(lambda: sum(counts) == 200)


def test_sync_subscription_iterates_until_unsubscribed(client):
    sub = client.subscribe_sync("iter.me")
    for i in range(3):
        client.publish("iter.me", str(i))
    client.flush()
    seen = []
    for msg in sub:
        seen.append(msg.text())
        if len(seen) == 3:
            sub.unsubscribe()
    assert seen == ["0", "1", "2"]
    with pytest.raises(syncmsg.ConnectionClosedError):
        sub.next_msg(0.1)
    assert not sub.is_active
    sub.unsubscribe()  # idempotent


def test_unsubscribe_from_inside_its_own_callback(client, wait_until):
    seen: list[int] = []
    holder: dict[str, syncmsg.Subscription] = {}

    def once(msg: syncmsg.Msg) -> None:
        seen.append(1)
        holder["sub"].unsubscribe()

    holder["sub"] = client.subscribe("once.only", once)
    client.publish("once.only")
    wait_until(lambda: not holder["sub"].is_active)
    client.publish("once.only")
    client.flush()
    assert seen == [1]


def test_subscription_drain_finishes_queued_messages(client, wait_until):
    handled: list[int] = []
    gate = threading.Event()

    def slow(msg: syncmsg.Msg) -> None:
        gate.wait(5)
        handled.append(int(msg.data))

    sub = client.subscribe("drain.me", slow)
    for i in range(20):
        client.publish("drain.me", str(i))
    client.flush()
    wait_until(lambda: sub.delivered == 20)
    gate.set()
    sub.drain(timeout=5)
    assert handled == list(range(20))
    assert sub.stats()["handled"] == 20


def test_health_and_stats(client):
    health = client.health()
    assert health["ok"] and health["connected"] and health["rtt_ms"] is not None
    client.subscribe_sync("stats.x")
    client.publish("stats.x", b"abc")
    client.flush()
    stats = client.stats()
    assert stats["out_msgs"] >= 1 and stats["state"] == "connected"
    assert stats["subscriptions"][0]["subject"] == "stats.x"
    assert "connected" in repr(client)


def test_error_callback_sees_callback_exceptions(nats_url, wait_until, caplog):
    seen: list[tuple[BaseException, syncmsg.Msg | None]] = []
    with syncmsg.connect(nats_url, error_callback=lambda e, m: seen.append((e, m))) as c:
        c.subscribe("boom.topic", lambda m: 1 / 0)
        c.publish("boom.topic", b"x")
        c.publish("boom.topic", b"y")
        wait_until(lambda: len(seen) == 2)
    assert isinstance(seen[0][0], ZeroDivisionError)
    assert seen[0][1] is not None and seen[0][1].subject == "boom.topic"
    assert "boom.topic" in caplog.text


def test_payload_too_large_is_refused(client):
    with pytest.raises(syncmsg.PayloadTooLargeError):
        client.publish("too.big", b"x" * (2 * 1024 * 1024))
    with pytest.raises(syncmsg.PayloadTooLargeError):
        client.request("too.big", b"x" * (2 * 1024 * 1024))


def test_sync_subscription_drain_keeps_received_messages_readable(client, wait_until):
    sub = client.subscribe_sync("sync.drain")
    client.publish("sync.drain", b"1")
    client.publish("sync.drain", b"2")
    client.flush()
    wait_until(lambda: sub.pending == 2)
    sub.drain(timeout=2)
    assert [sub.next_msg(0.5).data, sub.next_msg(0.5).data] == [b"1", b"2"]
    with pytest.raises(syncmsg.ConnectionClosedError):
        sub.next_msg(0.1)

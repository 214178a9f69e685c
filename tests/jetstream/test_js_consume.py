"""Durable consumers: acks, naks with backoff, dead letters, leases, flow control, fetch."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from _js_helpers import unique, wait_until

import syncmsg
from syncmsg.jetstream import (
    DEAD_LETTER_DELIVERY_COUNT,
    DEAD_LETTER_LAST_ERROR,
    DEAD_LETTER_ORIGINAL_SUBJECT,
    DEAD_LETTER_STREAM,
    DEAD_LETTER_STREAM_SEQUENCE,
    StreamSpec,
    dead_letter,
)


@pytest.fixture
def stream(client: syncmsg.Client) -> Iterator[str]:
    name = unique("C")
    js = client.jetstream()
    js.ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"], storage="memory"))
    yield name
    if not client.is_closed:
        js.delete_stream(name)


def _settled(js: Any, stream: str, durable: str) -> bool:
    info = js.consumer_info(stream, durable)
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


def test_handler_return_acks_on_worker_threads(client: syncmsg.Client, stream: str) -> None:
    js = client.jetstream()
    for i in range(50):
        js.publish(f"{stream}.a", str(i))
    seen: list[tuple[int, str]] = []
    lock = threading.Lock()

    def handle(msg: syncmsg.Msg) -> None:
        with lock:
            seen.append((msg.metadata.sequence_stream, threading.current_thread().name))

    sub = js.subscribe(f"{stream}.>", handle, durable="work", workers=4)
    wait_until(lambda: len(seen) == 50, 10, what="50 handled")
    wait_until(lambda: _settled(js, stream, "work"), 10, what="all acked")
    assert sorted(s for s, _ in seen) == list(range(1, 51))
    assert all(name.startswith("syncmsg-js-") for _, name in seen)
    assert sub.stats()["acked"] == 50
    meta_msg: list[syncmsg.Msg] = []
    sub2 = js.subscribe(f"{stream}.>", meta_msg.append, durable="meta", max_ack_pending=5)
    wait_until(lambda: len(meta_msg) == 50, 10)
    meta = meta_msg[0].metadata
    assert (meta.stream, meta.consumer, meta.num_delivered) == (stream, "meta", 1)
    assert meta.sequence_consumer == 1
    assert meta.timestamp.year >= 2024
    sub.unsubscribe()
    sub2.drain(5)
    assert js.consumer_info(stream, "work").durable == "work"  # the durable stays


def test_failing_handler_is_dead_lettered_after_max_deliver(
    client: syncmsg.Client, stream: str
) -> None:
    js = client.jetstream()
    dlq = unique("DLQ")
    js.ensure_stream(StreamSpec(name=dlq, subjects=[f"{dlq}.>"], storage="memory"))
    attempts: Counter[int] = Counter()

    def always_fails(msg: syncmsg.Msg) -> None:
        attempts[msg.metadata.sequence_stream] += 1
        raise RuntimeError(f"boom {msg.metadata.num_delivered}")

    errors: list[BaseException] = []
    js.publish(f"{stream}.poison", b"p1", headers={"X-Tenant": "t"})
    js.publish(f"{stream}.poison", b"p2")
    js.subscribe(
        f"{stream}.>",
        always_fails,
        durable="poison",
        max_deliver=3,
        dead_letter=f"{dlq}.orders",
        error_callback=lambda exc, msg: errors.append(exc),
    )
    wait_until(lambda: js.stream_info(dlq).state.messages == 2, 15, what="2 dead letters")
    wait_until(lambda: _settled(js, stream, "poison"), 10, what="poison terminated")
    # The error callback runs after the dead letter and the term: wait for the last one.
    wait_until(lambda: len(errors) == 6, 10, what="6 error reports")
    assert attempts == {1: 3, 2: 3}
    letter = js.get_msg(dlq, 1)
    assert letter.subject == f"{dlq}.orders"
    assert letter.data == b"p1"
    headers = letter.headers or {}
    assert headers[DEAD_LETTER_ORIGINAL_SUBJECT] == f"{stream}.poison"
    assert headers[DEAD_LETTER_STREAM] == stream
    assert headers[DEAD_LETTER_STREAM_SEQUENCE] == "1"
    assert headers[DEAD_LETTER_DELIVERY_COUNT] == "3"
    assert headers[DEAD_LETTER_LAST_ERROR] == "RuntimeError: boom 3"
    assert headers["X-Tenant"] == "t"
    assert attempts == {1: 3, 2: 3}  # nothing came back after the term
    js.delete_stream(dlq)


def test_dead_letter_to_a_plain_subject_and_backoff(client: syncmsg.Client, stream: str) -> None:
    js = client.jetstream()
    dl_subject = unique("dl")
    letters = client.subscribe_sync(dl_subject)
    delivered_at: list[float] = []

    def fails(msg: syncmsg.Msg) -> None:
        delivered_at.append(time.monotonic())
        raise ValueError("bad")

    js.subscribe(
        f"{stream}.>",
        fails,
        durable="backoff",
        max_deliver=3,
        backoff=[0.3, 0.6],
        dead_letter=dl_subject,
    )
    js.publish(f"{stream}.x", b"payload")
    letter = letters.next_msg(timeout=10)
    assert letter.data == b"payload"
    assert (letter.headers or {})[DEAD_LETTER_DELIVERY_COUNT] == "3"
    assert len(delivered_at) == 3
    gaps = [b - a for a, b in itertools.pairwise(delivered_at)]
    assert gaps[0] >= 0.25
    assert gaps[1] >= 0.5
    info = js.consumer_info(stream, "backoff")
    assert info.max_deliver == 4  # one spare delivery, only for retrying the dead letter
    assert len(info.backoff) == 2


def test_dead_letter_from_a_handler_skips_retries(client: syncmsg.Client, stream: str) -> None:
    js = client.jetstream()
    dl_subject = unique("dl")
    letters = client.subscribe_sync(dl_subject)
    calls: list[int] = []

    outcome: list[bool] = []

    def validate(msg: syncmsg.Msg) -> None:
        calls.append(msg.metadata.num_delivered)
        try:
            msg.json()
        except syncmsg.PayloadError as exc:
            outcome.append(dead_letter(msg, exc))

    js.subscribe(f"{stream}.>", validate, durable="val", dead_letter=dl_subject)
    js.publish(f"{stream}.x", b"{not json")
    letter = letters.next_msg(timeout=10)
    assert (letter.headers or {})[DEAD_LETTER_LAST_ERROR].startswith("PayloadError")
    assert (letter.headers or {})[DEAD_LETTER_DELIVERY_COUNT] == "1"
    wait_until(lambda: _settled(js, stream, "val"), 10)
    assert calls == [1]
    assert outcome == [True]


def test_without_dead_letter_the_last_failure_terminates(
    client: syncmsg.Client, stream: str
) -> None:
    js = client.jetstream()
    calls: list[int] = []

    def fails(msg: syncmsg.Msg) -> None:
        calls.append(msg.metadata.num_delivered)
        raise RuntimeError("nope")

    js.subscribe(f"{stream}.>", fails, durable="noterm", max_deliver=2)
    js.publish(f"{stream}.x", b"1")
    wait_until(lambda: len(calls) == 2, 10)
    wait_until(lambda: _settled(js, stream, "noterm"), 10, what="terminated")
    assert calls == [1, 2]


def test_manual_ack_from_another_thread(client: syncmsg.Client, stream: str) -> None:
    js = client.jetstream()
    held: list[syncmsg.Msg] = []
    js.subscribe(f"{stream}.>", held.append, durable="manual", manual_ack=True)
    js.publish(f"{stream}.x", b"1")
    js.publish(f"{stream}.x", b"2")
    wait_until(lambda: len(held) == 2, 10)
    wait_until(lambda: js.consumer_info(stream, "manual").num_ack_pending == 2, 10)
    done = threading.Thread(target=held[0].ack_sync, kwargs={"timeout": 5})
    done.start()
    done.join(10)
    held[1].nak(delay=30)
    held[1].ack()  # ignored: the nak was the terminal answer
    assert held[0].is_acked and held[1].is_acked
    info = js.consumer_info(stream, "manual")
    assert info.ack_floor_stream_seq == 1
    assert info.num_ack_pending == 1  # the nak'd one waits for its redelivery


def test_flow_control_bounds_messages_in_hand(client: syncmsg.Client, stream: str) -> None:
    js = client.jetstream()
    for i in range(100):
        js.publish_async(f"{stream}.x", str(i))
    js.flush(10)
    gate = threading.Event()
    handled: list[int] = []

    def slow(msg: syncmsg.Msg) -> None:
        gate.wait(10)
        handled.append(1)

    sub = js.subscribe(f"{stream}.>", slow, durable="fc", workers=2, prefetch=10)
    wait_until(lambda: sub.in_hand == 10, 10, what="prefetch filled")
    for _ in range(20):
        assert sub.in_hand <= 10
        assert len(sub._queue) <= 10
        time.sleep(0.01)
    info = js.consumer_info(stream, "fc")
    assert info.num_ack_pending <= 10
    assert info.num_pending >= 90
    gate.set()
    wait_until(lambda: len(handled) == 100, 15)
    wait_until(lambda: _settled(js, stream, "fc"), 10)


def test_max_ack_pending_bounds_prefetch(client: syncmsg.Client, stream: str) -> None:
    js = client.jetstream()
    for i in range(20):
        js.publish(f"{stream}.x", str(i))
    gate = threading.Event()
    sub = js.subscribe(f"{stream}.>", lambda m: gate.wait(10), durable="map", max_ack_pending=3)
    wait_until(lambda: sub.in_hand == 3, 10)
    assert js.consumer_info(stream, "map").num_ack_pending == 3
    gate.set()
    wait_until(lambda: _settled(js, stream, "map"), 10)


def test_lease_keeps_a_slow_handler_from_redelivery(client: syncmsg.Client, stream: str) -> None:
    js = client.jetstream()
    deliveries: list[int] = []

    def slow(msg: syncmsg.Msg) -> None:
        deliveries.append(msg.metadata.num_delivered)
        time.sleep(3.0)  # the work itself: three ack waits long

    js.subscribe(f"{stream}.>", slow, durable="lease", ack_wait=1.0)
    js.publish(f"{stream}.x", b"1")
    # The consumer's counts may not show the new message yet: wait for it to be delivered.
    wait_until(lambda: deliveries, 10, what="delivered")
    wait_until(lambda: _settled(js, stream, "lease"), 10, what="acked once")
    assert deliveries == [1]


@pytest.mark.slow
def test_20s_handler_with_5s_ack_wait_is_not_redelivered(
    client: syncmsg.Client, stream: str
) -> None:
    js = client.jetstream()
    deliveries: list[int] = []
    done = threading.Event()

    def slow(msg: syncmsg.Msg) -> None:
        deliveries.append(msg.metadata.num_delivered)
        time.sleep(20.0)  # the work itself
        done.set()

    other: list[int] = []
    js.subscribe(f"{stream}.>", slow, durable="slow20", ack_wait=5.0)
    js.publish(f"{stream}.x", b"1")
    wait_until(lambda: deliveries, 5)
    # A second member of the same durable would receive a redelivery, if there were one.
    client.jetstream().subscribe(
        f"{stream}.>", lambda m: other.append(m.metadata.num_delivered), durable="slow20"
    )
    assert done.wait(30)
    wait_until(lambda: _settled(js, stream, "slow20"), 10, what="acked")
    assert deliveries == [1]
    assert other == []


def test_pull_subscribe_fetch(client: syncmsg.Client, stream: str) -> None:
    js = client.jetstream()
    for i in range(5):
        js.publish(f"{stream}.x", str(i))
    psub = js.pull_subscribe(f"{stream}.>", durable="puller")
    first = psub.fetch(3, timeout=2)
    assert [m.data for m in first] == [b"0", b"1", b"2"]
    rest = psub.fetch(10, timeout=0.5)
    assert [m.data for m in rest] == [b"3", b"4"]
    for msg in first + rest:
        msg.ack()
    assert psub.fetch(10, timeout=0.3) == []
    wait_until(lambda: _settled(js, stream, "puller"), 5)
    js.delete_consumer(stream, "puller")
    with pytest.raises(syncmsg.NoRespondersError):
        psub.fetch(1, timeout=1)
    psub.unsubscribe()
    with pytest.raises(syncmsg.ConnectionClosedError):
        psub.fetch(1, timeout=0.2)


def test_concurrent_fetches_from_threads(client: syncmsg.Client, stream: str) -> None:
    js = client.jetstream()
    for i in range(200):
        js.publish_async(f"{stream}.x", str(i))
    js.flush(10)
    psub = js.pull_subscribe(f"{stream}.>", durable="many")
    got: list[bytes] = []
    lock = threading.Lock()

    def reader() -> None:
        while True:
            msgs = psub.fetch(16, timeout=0.5)
            if not msgs:
                return
            for msg in msgs:
                msg.ack()
            with lock:
                got.extend(m.data for m in msgs)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    wait_until(lambda: _settled(js, stream, "many"), 10)
    counts = Counter(got)
    assert set(counts) == {str(i).encode() for i in range(200)}


def test_close_drains_handlers_and_their_acks(nats_url: str) -> None:
    client = syncmsg.connect(nats_url)
    js = client.jetstream()
    name = unique("DR")
    js.ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"], storage="memory"))
    for i in range(10):
        js.publish(f"{name}.x", str(i))
    started = threading.Event()
    handled: list[bytes] = []

    def slowish(msg: syncmsg.Msg) -> None:
        started.set()
        time.sleep(0.05)
        handled.append(msg.data)

    js.subscribe(f"{name}.>", slowish, durable="drain", prefetch=4)
    assert started.wait(5)
    client.close(timeout=10)
    with syncmsg.connect(nats_url) as other:
        ojs = other.jetstream()
        info = ojs.consumer_info(name, "drain")
        assert info.num_ack_pending == 0  # every message handed to a handler was acked
        assert info.ack_floor_stream_seq == len(handled)
        ojs.delete_stream(name)


def test_unsubscribe_gives_queued_messages_back(client: syncmsg.Client, stream: str) -> None:
    js = client.jetstream()
    for i in range(30):
        js.publish(f"{stream}.x", str(i))
    gate = threading.Event()
    first: list[int] = []

    def blocked(msg: syncmsg.Msg) -> None:
        first.append(msg.metadata.sequence_stream)
        gate.wait(10)

    sub = js.subscribe(f"{stream}.>", blocked, durable="give", prefetch=10, ack_wait=30)
    wait_until(lambda: sub.in_hand == 10, 10)
    releaser = threading.Timer(0.2, gate.set)
    releaser.start()
    sub.unsubscribe()
    releaser.join()
    # The queued ones were nak'd, so a new member gets them now, not after ack_wait (30 s).
    again: dict[int, int] = defaultdict(int)
    lock = threading.Lock()

    def record(msg: syncmsg.Msg) -> None:
        with lock:
            again[msg.metadata.sequence_stream] += 1

    js.subscribe(f"{stream}.>", record, durable="give")
    wait_until(lambda: len(again) + len(first) >= 30, 10, what="all 30 handled")
    assert set(again) | set(first) == set(range(1, 31))


def test_a_dead_letter_that_failed_is_retried_on_the_spare_delivery(
    client: syncmsg.Client, stream: str
) -> None:
    js = client.jetstream()
    dlq = unique("DLQ")
    small = StreamSpec(name=dlq, subjects=[f"{dlq}.>"], storage="memory", max_msg_size=5)
    js.ensure_stream(small)  # too small for the dead letter: its publish fails at first
    calls: list[int] = []

    def fails(msg: syncmsg.Msg) -> None:
        calls.append(msg.metadata.num_delivered)
        raise RuntimeError("always")

    def on_error(exc: BaseException, msg: syncmsg.Msg | None) -> None:
        if len(calls) == 2:  # the dead letter of delivery 2 failed: make room for it
            js.ensure_stream(small.model_copy(update={"max_msg_size": None}))

    js.subscribe(
        f"{stream}.>",
        fails,
        durable="spare",
        max_deliver=2,
        dead_letter=f"{dlq}.x",
        error_callback=on_error,
    )
    js.publish(f"{stream}.x", b"0123456789")
    wait_until(lambda: js.stream_info(dlq).state.messages == 1, 15, what="the dead letter")
    wait_until(lambda: _settled(js, stream, "spare"), 10)
    assert calls == [1, 2]  # the spare delivery never reaches the handler
    assert (js.get_msg(dlq, 1).headers or {})[DEAD_LETTER_DELIVERY_COUNT] == "3"
    js.delete_stream(dlq)


def test_a_deleted_consumer_is_created_again(client: syncmsg.Client, stream: str) -> None:
    js = client.jetstream()
    got: list[bytes] = []
    errors: list[BaseException] = []
    sub = js.subscribe(
        f"{stream}.>",
        lambda m: got.append(m.data),
        durable="phoenix",
        error_callback=lambda exc, msg: errors.append(exc),
    )
    js.publish(f"{stream}.x", b"before")
    wait_until(lambda: got == [b"before"], 10)
    js.delete_consumer(stream, "phoenix")
    wait_until(lambda: errors, 15, what="the re-creation reported")
    assert isinstance(errors[0], syncmsg.ConsumerNotFoundError)
    js.publish(f"{stream}.x", b"after")
    wait_until(lambda: b"after" in got, 15, what="consumption resumes")
    assert sub.consumer_info().durable == "phoenix"

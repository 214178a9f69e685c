"""Ordered consumers against a real nats-server: every message once, in order, across a
deleted consumer, a sequence gap, stopped heartbeats, a server restart; and the options a
key-value watcher needs (where to start, several subjects, headers only, the backlog)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from _js_helpers import unique, wait_until

import syncmsg
from syncmsg.jetstream import (
    DeliverPolicy,
    JsMsg,
    OrderedSubscription,
    OrderedSyncSubscription,
    StreamSpec,
)


@pytest.fixture
def js(client: syncmsg.Client) -> syncmsg.JetStream:
    return client.jetstream()


@pytest.fixture
def stream(js: syncmsg.JetStream) -> Iterator[str]:
    name = unique("ORD")
    js.ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"], storage="memory"))
    yield name
    with contextlib.suppress(syncmsg.SyncMsgError):
        js.delete_stream(name)


class Collector:
    """Stream sequences a handler saw, in the order it saw them."""

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, msg: syncmsg.Msg) -> None:
        with self.lock:
            self.seqs.append(msg.metadata.sequence_stream)
            self.threads.add(threading.current_thread().name)

    def count(self) -> int:
        with self.lock:
            return len(self.seqs)


def _publish(js: syncmsg.JetStream, stream: str, count: int, subject: str = "x") -> None:
    futures = [js.publish_async(f"{stream}.{subject}", str(i)) for i in range(count)]
    js.flush(30)
    assert all(f.result().seq for f in futures)


def test_ordered_subscription_sees_each_message_once_in_order(
    js: syncmsg.JetStream, stream: str
) -> None:
    _publish(js, stream, 300)
    seen = Collector()
    sub = js.subscribe(f"{stream}.>", seen, ordered_consumer=True)
    assert isinstance(sub, OrderedSubscription)
    assert sub.initial_pending == 300
    assert sub.wait_caught_up(10) and sub.caught_up
    _publish(js, stream, 200)
    wait_until(lambda: seen.count() == 500, 10)
    assert seen.seqs == list(range(1, 501))
    assert len(seen.threads) == 1  # one worker: in order
    info = sub.consumer_info()
    assert info.config.ack_policy == "none" and info.config.mem_storage is True
    assert info.config.num_replicas == 1 and info.config.max_deliver == 1
    assert info.config.inactive_threshold == dt.timedelta(minutes=5)
    assert sub.stats()["resets"] == 0
    sub.unsubscribe()
    assert js.consumer_names(stream) == []  # nothing left behind


def test_ordered_sync_subscription(js: syncmsg.JetStream, stream: str) -> None:
    sub = js.subscribe_sync(f"{stream}.>", ordered_consumer=True)
    assert isinstance(sub, OrderedSyncSubscription)
    assert sub.initial_pending == 0 and sub.caught_up  # an empty stream: nothing to catch up
    with pytest.raises(syncmsg.TimeoutError):
        sub.next_msg(timeout=0.3)
    _publish(js, stream, 50)
    seqs = []
    for msg in sub:
        assert isinstance(msg, JsMsg)
        seqs.append(msg.metadata.sequence_stream)
        if len(seqs) == 20:
            break
    seqs += [m.metadata.sequence_stream for m in sub.fetch(30, timeout=5)]
    while len(seqs) < 50:
        seqs.append(sub.next_msg(timeout=5).metadata.sequence_stream)
    assert seqs == list(range(1, 51))
    sub.drain()
    assert js.consumer_names(stream) == []


def test_a_deleted_consumer_is_replaced_without_gaps_or_repeats(
    js: syncmsg.JetStream, stream: str
) -> None:
    seen = Collector()
    sub = js.subscribe(f"{stream}.>", seen, ordered_consumer=True)
    stop = threading.Event()
    published = [0]

    def publish() -> None:
        while not stop.is_set() and published[0] < 2000:
            js.publish(f"{stream}.x", str(published[0]))
            published[0] += 1

    publisher = threading.Thread(target=publish)
    publisher.start()
    try:
        for _ in range(3):  # someone deletes the consumer under our feet, three times
            wait_until(lambda: seen.count() > 50 * (sub.resets + 1), 20)
            name = sub.name
            js.delete_consumer(stream, name)
            wait_until(lambda n=name: sub.name != n and sub.caught_up, 20)
    finally:
        stop.set()
        publisher.join(30)
    wait_until(lambda: seen.count() == published[0], 20)
    assert seen.seqs == list(range(1, published[0] + 1))
    assert sub.resets == 3  # one per deletion: the old requests' 409s replace nothing more
    sub.unsubscribe()
    wait_until(lambda: js.consumer_names(stream) == [], 10)


def test_a_sequence_gap_makes_a_new_consumer_from_the_next_message(
    client: syncmsg.Client, js: syncmsg.JetStream, stream: str, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="syncmsg.jetstream")
    _publish(js, stream, 10)
    seen = Collector()
    sub = js.subscribe(f"{stream}.>", seen, ordered_consumer=True)
    wait_until(lambda: seen.count() == 10, 10)
    # A message from our consumer two consumer sequences ahead: as if one had been lost on
    # the way (the server refuses a client that forges $JS.ACK reply subjects, so it is
    # handed to the subscription's loop-side delivery directly). It is not delivered, and
    # the consumer is replaced, starting after the last message delivered.
    forged = SimpleNamespace(
        subject=f"{stream}.x",
        data=b"never delivered",
        headers=None,
        reply=f"$JS.ACK.{stream}.{sub.name}.1.11.12.{time.time_ns()}.0",
    )
    client.connection().call(sub._deliver([forged]), 5, "a forged delivery")
    wait_until(lambda: sub.resets == 1, 10)
    _publish(js, stream, 10)
    wait_until(lambda: seen.count() == 20, 10)
    assert seen.seqs == list(range(1, 21))
    assert "gap: consumer sequence 12 after 10" in caplog.text
    sub.unsubscribe()


@pytest.mark.slow
def test_stopped_heartbeats_make_a_new_consumer(nats_server_factory: Any, caplog: Any) -> None:
    # A server that stops answering (SIGSTOP) keeps its connection open but sends no
    # heartbeats: the ordered consumer gives up on its consumer and, once the server is
    # back, goes on from where it was.
    caplog.set_level(logging.INFO, logger="syncmsg.jetstream")
    server = nats_server_factory()
    with syncmsg.connect(server.url, timeout=2.0, reconnect_wait=0.1) as client:
        js = client.jetstream()
        js.ensure_stream(StreamSpec(name="HB", subjects=["HB.>"]))
        _publish(js, "HB", 20, "a")
        errors: list[BaseException] = []
        seen = Collector()
        sub = js.subscribe(
            "HB.>", seen, ordered_consumer=True, error_callback=lambda e, m: errors.append(e)
        )
        wait_until(lambda: seen.count() == 20, 10)
        assert server.pid is not None
        os.kill(server.pid, signal.SIGSTOP)
        try:
            wait_until(lambda: "no heartbeat" in caplog.text, 15)
            wait_until(lambda: errors, 40)  # the new consumer cannot be made yet: said once
        finally:
            os.kill(server.pid, signal.SIGCONT)
        wait_until(lambda: sub.caught_up and sub._puller.next_subject != "", 30)
        _publish(js, "HB", 20, "b")
        wait_until(lambda: seen.count() == 40, 20)
        assert seen.seqs == list(range(1, 41))
        assert len(errors) == 1 and isinstance(errors[0], syncmsg.SyncMsgError)
        assert "is back" in caplog.text
        sub.unsubscribe()


@pytest.mark.slow
def test_ordered_consumer_across_a_server_restart(nats_server_factory: Any) -> None:
    server = nats_server_factory()
    with syncmsg.connect(server.url, timeout=5.0, reconnect_wait=0.1) as client:
        js = client.jetstream()
        js.ensure_stream(StreamSpec(name="RST", subjects=["RST.>"]))
        _publish(js, "RST", 100)
        seen = Collector()
        sub = js.subscribe_sync("RST.>", ordered_consumer=True, prefetch=16)
        seqs = [sub.next_msg(timeout=5).metadata.sequence_stream for _ in range(40)]
        server.restart()  # the memory consumer is gone, the file stream stays
        _publish(js, "RST", 100)
        while len(seqs) < 200:
            seqs.append(sub.next_msg(timeout=15).metadata.sequence_stream)
        assert seqs == list(range(1, 201))
        assert sub.resets >= 1
        with pytest.raises(syncmsg.TimeoutError):
            sub.next_msg(timeout=0.5)
        sub.unsubscribe()
        assert seen.count() == 0


def test_where_an_ordered_consumer_starts(js: syncmsg.JetStream, stream: str) -> None:
    for subject in ("a", "b", "a", "c", "b"):
        js.publish(f"{stream}.{subject}", subject)
    middle = js.get_msg(stream, 3).time
    assert middle is not None

    def seqs(**options: Any) -> list[int]:
        sub = js.subscribe_sync(f"{stream}.>", ordered_consumer=True, **options)
        got = [m.metadata.sequence_stream for m in sub.fetch(10, timeout=1)]
        sub.unsubscribe()
        return got

    assert seqs() == [1, 2, 3, 4, 5]
    assert seqs(deliver_policy="last") == [5]
    assert seqs(deliver_policy=DeliverPolicy.NEW) == []
    assert seqs(opt_start_seq=4) == [4, 5]
    assert seqs(deliver_policy="by_start_sequence", opt_start_seq=2) == [2, 3, 4, 5]
    assert seqs(opt_start_time=middle) == [3, 4, 5]
    assert seqs(deliver_policy="last_per_subject") == [3, 4, 5]


def test_what_a_key_value_watcher_needs(js: syncmsg.JetStream) -> None:
    # A KV bucket's layout: one subject per key, the latest value per key first, then
    # updates, several key filters, values left out (meta only), and the end of the
    # initial values known (num_pending reaching 0).
    bucket = unique("KV")
    js.ensure_stream(
        StreamSpec(
            name=bucket,
            subjects=[f"$KV.{bucket}.>"],
            storage="memory",
            max_msgs_per_subject=5,
            allow_direct=True,
            allow_rollup=True,
        )
    )
    try:
        for key, value in (("a", "1"), ("b", "1"), ("a", "2"), ("c", "1"), ("b", "2")):
            js.publish(f"$KV.{bucket}.{key}", value, headers={"KV-Operation": "PUT"})
        watch = js.subscribe_sync(
            [f"$KV.{bucket}.a", f"$KV.{bucket}.b"],
            ordered_consumer=True,
            deliver_policy="last_per_subject",
            headers_only=True,
        )
        assert watch.initial_pending == 2
        initial = []
        while True:
            msg = watch.next_msg(timeout=5)
            initial.append((msg.subject.rsplit(".", 1)[1], msg.metadata.sequence_stream))
            assert msg.data == b"" and msg.headers is not None
            assert msg.headers["Nats-Msg-Size"] == "1" and msg.headers["KV-Operation"] == "PUT"
            if msg.metadata.num_pending == 0:
                break  # the initial values are all here: a watcher yields None now
        assert initial == [("a", 3), ("b", 5)] and watch.caught_up
        js.publish(f"$KV.{bucket}.c", b"2")  # not watched
        js.publish(f"$KV.{bucket}.a", b"3")
        update = watch.next_msg(timeout=5)
        assert (update.subject, update.metadata.sequence_stream) == (f"$KV.{bucket}.a", 7)
        watch.unsubscribe()

        updates_only = js.subscribe_sync(
            f"$KV.{bucket}.>", ordered_consumer=True, deliver_policy="new"
        )
        assert updates_only.initial_pending == 0 and updates_only.caught_up
        js.publish(f"$KV.{bucket}.b", b"3")
        assert updates_only.next_msg(timeout=5).data == b"3"
        updates_only.unsubscribe()
    finally:
        js.delete_stream(bucket)


def test_the_backlog_is_caught_up_once_handled(js: syncmsg.JetStream, stream: str) -> None:
    _publish(js, stream, 5)
    release = threading.Event()
    handled: list[int] = []

    def slow(msg: syncmsg.Msg) -> None:
        release.wait(10)
        handled.append(msg.metadata.sequence_stream)

    sub = js.subscribe(f"{stream}.>", slow, ordered_consumer=True)
    assert not sub.wait_caught_up(0.3)  # delivered, but not yet handled
    release.set()
    assert sub.wait_caught_up(10) and handled == [1, 2, 3, 4, 5]
    sub.drain()


@pytest.mark.parametrize("kind", ["sync", "callback"])
def test_a_backlog_removed_before_it_is_delivered_still_ends(
    js: syncmsg.JetStream, stream: str, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The consumer counts two messages at its start, and both go (a TTL, a purge, a
    # delete) before they are delivered: no message with num_pending 0 ever comes, yet the
    # backlog is over. (A key-value history read timed out on this, now and then.)
    js.publish(f"{stream}.a", b"1")
    js.publish(f"{stream}.a", b"2")
    create = js._create_consumer

    def create_then_remove(*args: Any, **kwargs: Any) -> Any:
        info = create(*args, **kwargs)
        js.purge_stream(stream)
        return info

    monkeypatch.setattr(js, "_create_consumer", create_then_remove)
    seen: list[int] = []
    if kind == "sync":
        sub: Any = js.subscribe_sync(f"{stream}.>", ordered_consumer=True)
    else:
        sub = js.subscribe(f"{stream}.>", lambda m: seen.append(m.metadata.sequence_stream),
                           ordered_consumer=True)  # fmt: skip
    monkeypatch.setattr(js, "_create_consumer", create)
    try:
        assert sub.initial_pending == 2 and not sub.caught_up
        assert sub.wait_caught_up(timeout=10)
        # What comes after is an update, in order, as ever.
        js.publish(f"{stream}.a", b"3")
        if kind == "sync":
            assert sub.next_msg(timeout=5).metadata.sequence_stream == 3
        else:
            wait_until(lambda: seen == [3], 10)
        assert sub.resets == 0
    finally:
        sub.unsubscribe()

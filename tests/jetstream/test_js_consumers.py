"""Consumers against a real nats-server: ephemeral ones leave nothing behind, the
synchronous subscription, managing consumers without subscribing, consumer_info on
every kind of subscription."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator

import pytest
from _js_helpers import unique, wait_until

import syncmsg
from syncmsg.jetstream import (
    AckPolicy,
    ApiErrorCode,
    ConsumerConfig,
    DeliverPolicy,
    JetStreamSyncSubscription,
    JsMsg,
    StreamSpec,
)


@pytest.fixture
def js(client: syncmsg.Client) -> syncmsg.JetStream:
    return client.jetstream()


@pytest.fixture
def stream(js: syncmsg.JetStream) -> Iterator[str]:
    name = unique("C")
    js.ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"], storage="memory"))
    yield name
    with contextlib.suppress(syncmsg.SyncMsgError):
        js.delete_stream(name)


# ---------------------------------------------------------------------------- ephemeral


def test_ephemeral_pull_subscription_is_deleted_by_unsubscribe(
    js: syncmsg.JetStream, stream: str
) -> None:
    for i in range(3):
        js.publish(f"{stream}.a", str(i))
    psub = js.pull_subscribe(f"{stream}.>")
    assert psub.durable is None
    info = psub.consumer_info()
    assert info.durable is None and info.name == psub.name
    assert info.config.inactive_threshold == dt.timedelta(minutes=5)
    msgs = psub.fetch(10, timeout=2)
    assert [m.data for m in msgs] == [b"0", b"1", b"2"]
    for msg in msgs:
        msg.ack()
    assert js.consumer_names(stream) == [psub.name]
    psub.unsubscribe()
    assert js.consumer_names(stream) == []


def test_ephemeral_subscribe_runs_its_handler_and_leaves_nothing(
    js: syncmsg.JetStream, stream: str
) -> None:
    seen: list[bytes] = []
    done = threading.Event()

    def handle(msg: syncmsg.Msg) -> None:
        seen.append(msg.data)
        if len(seen) == 5:
            done.set()

    sub = js.subscribe(f"{stream}.>", handle, workers=2)
    assert sub.durable is None and js.consumer_names(stream) == [sub.name]
    for i in range(5):
        js.publish(f"{stream}.x", str(i))
    assert done.wait(10)
    wait_until(lambda: sub.consumer_info().num_ack_pending == 0, 10)  # acked on return
    sub.drain()
    assert js.consumer_names(stream) == []


def test_an_ephemeral_consumer_goes_after_its_inactive_threshold(
    nats_url: str, js: syncmsg.JetStream, stream: str
) -> None:
    # A process that ends without unsubscribing leaves its consumer to the server, which
    # removes it once nobody has pulled for the inactive threshold.
    with syncmsg.connect(nats_url, timeout=5.0) as other:
        sub = other.jetstream().subscribe(f"{stream}.>", print, inactive_threshold=1)
        name = sub.name
        assert js.consumer_names(stream) == [name]
    assert js.consumer_names(stream) == [name]  # closing the client deletes nothing...
    wait_until(lambda: js.consumer_names(stream) == [], 15)  # ... the server does


# ---------------------------------------------------------------------------- synchronous


def test_subscribe_sync_next_msg_iteration_and_fetch(js: syncmsg.JetStream, stream: str) -> None:
    for i in range(6):
        js.publish(f"{stream}.s", str(i))
    sub = js.subscribe_sync(f"{stream}.>", durable="reader", ack_wait=5)
    assert isinstance(sub, JetStreamSyncSubscription)
    first = sub.next_msg(timeout=5)
    assert isinstance(first, JsMsg) and first.data == b"0"
    assert first.metadata.sequence_stream == 1
    first.ack()
    # fetch hands over what is here already: the pulled messages may still be arriving.
    batch: list[JsMsg] = []
    while len(batch) < 3:
        got = sub.fetch(3 - len(batch), timeout=5)
        assert got, "no message within the timeout"
        batch += got
    assert [m.data for m in batch] == [b"1", b"2", b"3"]
    for msg in batch:
        msg.ack()
    rest = []
    for msg in sub:
        rest.append(msg.data)
        msg.ack_sync(timeout=5)
        if len(rest) == 2:
            break
    assert rest == [b"4", b"5"]
    with pytest.raises(syncmsg.TimeoutError):
        sub.next_msg(timeout=0.3)
    assert sub.fetch(2, timeout=0.3) == []
    wait_until(lambda: sub.consumer_info().ack_floor_stream_seq == 6, 10)
    sub.unsubscribe()
    assert js.consumer_info(stream, "reader").durable == "reader"  # a durable stays
    with pytest.raises(syncmsg.ConnectionClosedError):
        sub.next_msg(timeout=0.1)


def test_subscribe_sync_gives_back_what_was_not_read(js: syncmsg.JetStream, stream: str) -> None:
    for i in range(4):
        js.publish(f"{stream}.g", str(i))
    with js.subscribe_sync(f"{stream}.>", durable="giver", ack_wait=30) as sub:
        sub.next_msg(timeout=5).ack()
        wait_until(lambda: sub.pending == 3, 5)  # pulled ahead, not yet read
    # Unread messages were nak'd: another reader gets them at once, not after ack_wait.
    again = js.subscribe_sync(f"{stream}.>", durable="giver")
    assert sorted(again.next_msg(timeout=5).data for _ in range(3)) == [b"1", b"2", b"3"]
    again.drain()
    with pytest.raises(syncmsg.ConnectionClosedError):
        again.next_msg(timeout=0.2)


def test_sync_messages_left_unacked_come_back(js: syncmsg.JetStream, stream: str) -> None:
    js.publish(f"{stream}.u", b"once")
    sub = js.subscribe_sync(f"{stream}.>", ack_wait=1)  # ephemeral
    msg = sub.next_msg(timeout=5)
    again = sub.next_msg(timeout=5)  # not acked within ack_wait: redelivered
    assert again.data == msg.data and again.metadata.num_delivered == 2
    again.ack()
    sub.unsubscribe()
    assert js.consumer_names(stream) == []


# ---------------------------------------------------------------------------- management


def test_add_update_list_and_delete_consumers(js: syncmsg.JetStream, stream: str) -> None:
    config = ConsumerConfig(
        durable_name="managed",
        filter_subject=f"{stream}.orders.>",
        ack_wait=10,
        max_deliver=3,
        deliver_policy="new",
        description="made without subscribing",
    )
    info = js.add_consumer(stream, config)
    assert info.config.ack_wait == dt.timedelta(seconds=10)
    assert info.config.deliver_policy is DeliverPolicy.NEW
    assert info.config.ack_policy is AckPolicy.EXPLICIT
    assert js.add_consumer(stream, config).name == "managed"  # the same again: fine
    with pytest.raises(syncmsg.JetStreamError) as differs:
        js.add_consumer(stream, config, max_deliver=9)
    assert differs.value.err_code == ApiErrorCode.CONSUMER_ALREADY_EXISTS

    updated = js.update_consumer(stream, config, ack_wait=dt.timedelta(seconds=20), max_deliver=9)
    assert updated.config.ack_wait == dt.timedelta(seconds=20)
    assert updated.max_deliver == 9
    with pytest.raises(syncmsg.ConsumerNotFoundError):
        js.update_consumer(stream, durable_name="ghost", ack_wait=5)
    with pytest.raises(ValueError):
        js.update_consumer(stream, ack_wait=5)  # which consumer?

    js.add_consumer(stream, durable_name="second", ack_policy="none")
    named_by_server = js.add_consumer(stream, inactive_threshold=30)
    assert named_by_server.name and named_by_server.durable is None
    assert sorted(js.consumer_names(stream)) == sorted(["managed", "second", named_by_server.name])
    infos = {info.name: info for info in js.consumers(stream)}
    assert infos["second"].config.ack_policy is AckPolicy.NONE
    assert infos["managed"].config.description == "made without subscribing"

    # A consumer made with add_consumer is read like any other.
    js.publish(f"{stream}.orders.1", b"o")
    psub = js.pull_subscribe(
        f"{stream}.orders.>", durable="managed", ack_wait=20, max_deliver=9, deliver_policy="new"
    )
    assert [m.data for m in psub.fetch(1, timeout=5)] == [b"o"]
    js.delete_consumer(stream, "second")
    with pytest.raises(syncmsg.ConsumerNotFoundError):
        js.consumer_info(stream, "second")
    with pytest.raises(TypeError):
        js.add_consumer(stream, {"durable_name": "x"})  # type: ignore[arg-type]


def test_consumer_info_on_every_kind_of_subscription(js: syncmsg.JetStream, stream: str) -> None:
    js.publish(f"{stream}.i", b"x")
    subs = [
        js.subscribe(f"{stream}.>", lambda m: None, durable="cb"),
        js.subscribe(f"{stream}.>", lambda m: None),
        js.subscribe(f"{stream}.>", lambda m: None, ordered_consumer=True),
        js.subscribe_sync(f"{stream}.>", durable="sync"),
        js.subscribe_sync(f"{stream}.>", ordered_consumer=True),
        js.pull_subscribe(f"{stream}.>", durable="pull"),
        js.pull_subscribe(f"{stream}.>"),
    ]
    try:
        for sub in subs:
            info = sub.consumer_info()
            assert info.stream == stream and info.name == sub.name, sub
    finally:
        for sub in subs:
            sub.unsubscribe()
    assert sorted(js.consumer_names(stream)) == ["cb", "pull", "sync"]


def test_several_filter_subjects_and_where_to_start(js: syncmsg.JetStream, stream: str) -> None:
    for subject in ("a", "b", "c", "a", "b"):
        js.publish(f"{stream}.{subject}", subject)
    psub = js.pull_subscribe([f"{stream}.a", f"{stream}.c"])
    assert psub.consumer_info().config.filter_subjects == (f"{stream}.a", f"{stream}.c")
    assert [m.data for m in psub.fetch(10, timeout=1)] == [b"a", b"c", b"a"]
    psub.unsubscribe()

    late = js.pull_subscribe(f"{stream}.>", opt_start_seq=4)
    assert late.consumer_info().config.deliver_policy is DeliverPolicy.BY_START_SEQUENCE
    assert [m.metadata.sequence_stream for m in late.fetch(10, timeout=1)] == [4, 5]
    late.unsubscribe()
    newest = js.pull_subscribe(f"{stream}.>", deliver_policy="last_per_subject")
    assert sorted(m.data for m in newest.fetch(10, timeout=1)) == [b"a", b"b", b"c"]
    newest.unsubscribe()
    with pytest.raises(ValueError):
        js.pull_subscribe(f"{stream}.>", deliver_policy="new", opt_start_seq=3)
    with pytest.raises(ValueError):
        js.pull_subscribe(f"{stream}.>", deliver_policy="by_start_sequence")
    with pytest.raises(ValueError):
        js.pull_subscribe(f"{stream}.>", deliver_policy="sometimes")
    with pytest.raises(ValueError):
        js.subscribe(f"{stream}.>", print, ordered_consumer=True, durable="no")
    with pytest.raises(ValueError):
        js.subscribe_sync(f"{stream}.>", ordered_consumer=True, ack_wait=3)
    assert js.consumer_names(stream) == []

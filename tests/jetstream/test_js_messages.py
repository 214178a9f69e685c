"""Stored messages against a real nats-server: reads (direct or not), deletes, publish
expectations, per-message TTLs and subject delete markers, the 429 of a full ingest queue."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _js_helpers import unique, wait_until

import syncmsg
from syncmsg.jetstream import (
    MSG_ID_HEADER,
    TTL_HEADER,
    ApiErrorCode,
    RawStreamMsg,
    StreamSource,
    StreamSpec,
)


@pytest.fixture
def js(client: syncmsg.Client) -> syncmsg.JetStream:
    return client.jetstream()


@pytest.fixture
def make_stream(js: syncmsg.JetStream) -> Iterator[Callable[..., str]]:
    made: list[str] = []

    def make(**options: Any) -> str:
        name = unique("M")
        options.setdefault("subjects", [f"{name}.>"])
        options.setdefault("storage", "memory")
        js.ensure_stream(StreamSpec(name=name, **options))
        made.append(name)
        return name

    yield make
    for name in reversed(made):
        with contextlib.suppress(syncmsg.SyncMsgError):
            js.delete_stream(name)


def test_get_last_msg_and_direct_gets_read_the_same_message(
    js: syncmsg.JetStream, make_stream: Callable[..., str]
) -> None:
    stream = make_stream(allow_direct=True)
    js.publish(f"{stream}.config", {"v": 1}, headers={"X-Who": "a"})
    js.publish(f"{stream}.other", b"o")
    js.publish(f"{stream}.config", {"v": 2}, headers={"X-Who": "b"})

    last = js.get_last_msg(stream, f"{stream}.config")
    assert isinstance(last, RawStreamMsg)
    assert (last.stream, last.subject, last.seq) == (stream, f"{stream}.config", 3)
    assert last.json() == {"v": 2} and last.headers is not None and last.headers["X-Who"] == "b"
    assert last.time is not None and last.time.tzinfo is not None
    direct = js.get_last_msg(stream, f"{stream}.config", direct=True)
    assert direct == last  # the Nats-* headers of the direct reply are not the message's

    first = js.get_msg(stream, 1, direct=True)
    assert first == js.get_msg(stream, 1) and first.json() == {"v": 1}
    nxt = js.get_msg(stream, 2, subject=f"{stream}.config", next=True, direct=True)
    assert nxt.seq == 3
    assert js.get_msg(stream, 2, subject=f"{stream}.*", next=True).seq == 2

    with pytest.raises(syncmsg.MessageNotFoundError):
        js.get_last_msg(stream, f"{stream}.never")
    with pytest.raises(syncmsg.MessageNotFoundError):
        js.get_last_msg(stream, f"{stream}.never", direct=True)
    with pytest.raises(syncmsg.MessageNotFoundError) as missing:
        js.get_msg(stream, 99, direct=True)
    assert missing.value.stream == stream
    with pytest.raises(ValueError):
        js.get_msg(stream, 1, subject=f"{stream}.config")  # a subject needs next=True
    with pytest.raises(syncmsg.InvalidSubjectError):
        js.get_last_msg(stream, f"{stream}.*", direct=True)  # it goes into the subject


def test_direct_get_needs_allow_direct(
    js: syncmsg.JetStream, make_stream: Callable[..., str]
) -> None:
    stream = make_stream()  # allow_direct left to the server: off
    js.publish(f"{stream}.a", b"x")
    started = time.monotonic()
    with pytest.raises(syncmsg.NoRespondersError, match="allow_direct"):
        js.get_msg(stream, 1, direct=True)
    assert time.monotonic() - started < 2.0  # not retried: it will not change
    assert js.get_msg(stream, 1).data == b"x"


def test_a_mirror_with_mirror_direct_answers_direct_gets(
    js: syncmsg.JetStream, make_stream: Callable[..., str]
) -> None:
    origin = make_stream(allow_direct=True)
    mirror = make_stream(subjects=(), mirror=StreamSource(name=origin), mirror_direct=True)
    js.publish(f"{origin}.k", b"v")
    wait_until(lambda: js.stream_info(mirror).state.messages == 1, 10)
    assert js.stream_info(mirror).config.mirror_direct is True
    assert js.get_last_msg(origin, f"{origin}.k", direct=True).data == b"v"
    assert js.get_msg(mirror, 1).data == b"v"


def test_delete_msg(js: syncmsg.JetStream, make_stream: Callable[..., str]) -> None:
    stream = make_stream(storage="file")
    for i in range(4):
        js.publish(f"{stream}.a", str(i))
    js.delete_msg(stream, 2)
    js.delete_msg(stream, 3, erase=True)
    assert (js.get_msg(stream, 1).data, js.get_msg(stream, 4).data) == (b"0", b"3")
    with pytest.raises(syncmsg.MessageNotFoundError):
        js.get_msg(stream, 2)
    with pytest.raises(syncmsg.MessageNotFoundError) as again:
        js.delete_msg(stream, 2)
    assert again.value.err_code == ApiErrorCode.SEQUENCE_NOT_FOUND
    state = js.stream_info(stream).state
    assert (state.messages, state.num_deleted) == (2, 2)
    with pytest.raises(ValueError):
        js.delete_msg(stream, 0)


def test_purge_keep_and_seq(js: syncmsg.JetStream, make_stream: Callable[..., str]) -> None:
    stream = make_stream()
    for i in range(6):
        js.publish(f"{stream}.{'a' if i % 2 else 'b'}", str(i))
    assert js.purge_stream(stream, subject=f"{stream}.a", keep=1) == 2
    assert js.purge_stream(stream, seq=3) == 1  # below seq 3: #1 (#2 went above)
    info = js.stream_info(stream, subjects_filter=">")
    assert info.state.subjects == {f"{stream}.a": 1, f"{stream}.b": 2}
    with pytest.raises(ValueError):
        js.purge_stream(stream, seq=2, keep=1)


def test_publish_expectations(js: syncmsg.JetStream, make_stream: Callable[..., str]) -> None:
    stream = make_stream()
    key = f"{stream}.key"
    first = js.publish(key, b"1", msg_id="m1", expected_last_subject_seq=0)  # create
    with pytest.raises(syncmsg.WrongLastSequenceError) as exists:
        js.publish(key, b"again", expected_last_subject_seq=0)
    assert exists.value.err_code == ApiErrorCode.WRONG_LAST_SEQUENCE
    js.publish(f"{stream}.other", b"x")  # another subject moves the stream, not the key
    second = js.publish(key, b"2", msg_id="m2", expected_last_subject_seq=first.seq)  # update
    with pytest.raises(syncmsg.WrongLastSequenceError):
        js.publish(key, b"stale", expected_last_subject_seq=first.seq)
    js.publish(key, b"3", expected_last_msg_id="m2")
    with pytest.raises(syncmsg.WrongLastSequenceError) as wrong_id:
        js.publish(key, b"4", expected_last_msg_id="m2")
    assert wrong_id.value.err_code == ApiErrorCode.WRONG_LAST_MSG_ID
    with pytest.raises(syncmsg.WrongLastSequenceError):
        js.publish(key, b"5", expected_stream="NOT_IT")
    stored = js.get_last_msg(stream, key)
    assert stored.data == b"3" and second.seq == 3
    future = js.publish_async(key, b"6", expected_last_subject_seq=1)
    with pytest.raises(syncmsg.WrongLastSequenceError):
        future.result(5)
    assert js.publish_async(key, b"7", expected_last_subject_seq=stored.seq).result(5).seq == 5


def test_a_retried_compare_and_set_recognises_its_own_earlier_success(
    client: syncmsg.Client, js: syncmsg.JetStream, make_stream: Callable[..., str]
) -> None:
    # The server checks the subject's last sequence before duplicates: the retry of a
    # stored message whose ack was lost is refused, and must see that it got through.
    from syncmsg.jetstream._publish import Expect, Message, parse_pub_ack

    stream = make_stream()
    key = f"{stream}.k"
    js.publish(key, b"0")
    js.publish(key, b"1", msg_id="cas-1", expected_last_subject_seq=1)
    headers = {MSG_ID_HEADER: "cas-1", "Nats-Expected-Last-Subject-Sequence": "1"}
    refused = client.request(key, b"1", headers=headers, timeout=5)
    message = Message(key, b"1", None, "cas-1", Expect(last_subject_seq=1))
    with pytest.raises(syncmsg.WrongLastSequenceError):
        parse_pub_ack(refused.data, message, attempts=1, lookup=js._stored_lookup)
    ack = parse_pub_ack(refused.data, message, attempts=2, lookup=js._stored_lookup)
    assert (ack.seq, ack.duplicate) == (2, True)


def test_per_message_ttl(js: syncmsg.JetStream, make_stream: Callable[..., str]) -> None:
    stream = make_stream(allow_msg_ttl=True)
    short = js.publish(f"{stream}.short", b"gone soon", ttl=1)
    js.publish(f"{stream}.long", b"stays", ttl=dt.timedelta(hours=1))
    js.publish_async(f"{stream}.async", b"gone soon too", ttl=1.0).result(5)
    headers = js.get_msg(stream, short.seq).headers
    assert headers is not None and headers[TTL_HEADER] == "1"
    wait_until(lambda: js.stream_info(stream).state.messages == 1, 10)
    assert js.get_last_msg(stream, f"{stream}.long").data == b"stays"
    with pytest.raises(syncmsg.MessageNotFoundError):
        js.get_last_msg(stream, f"{stream}.short")
    with pytest.raises(ValueError):
        js.publish(f"{stream}.x", b"x", ttl=0.5)  # refused before the wire


def test_ttl_on_a_stream_without_allow_msg_ttl_is_refused(
    js: syncmsg.JetStream, make_stream: Callable[..., str]
) -> None:
    stream = make_stream()
    with pytest.raises(syncmsg.JetStreamError) as refused:
        js.publish(f"{stream}.a", b"x", ttl=5)
    assert refused.value.err_code == ApiErrorCode.MESSAGE_TTL_DISABLED
    assert js.stream_info(stream).state.messages == 0


def test_subject_delete_markers(js: syncmsg.JetStream, make_stream: Callable[..., str]) -> None:
    stream = make_stream(subject_delete_marker_ttl=1, allow_direct=True)
    info = js.stream_info(stream)
    assert info.config.allow_msg_ttl is True and info.config.allow_rollup is True
    assert info.config.subject_delete_marker_ttl == dt.timedelta(seconds=1)
    js.publish(f"{stream}.key", b"v", ttl=1)
    # When the last message of a subject expires, a marker takes its place for a while.
    wait_until(lambda: js.stream_info(stream).state.last_seq == 2, 10)
    marker = js.get_last_msg(stream, f"{stream}.key", direct=True)
    assert marker.seq == 2 and marker.data == b""
    assert marker.headers is not None and marker.headers["Nats-Marker-Reason"] == "MaxAge"
    wait_until(lambda: js.stream_info(stream).state.messages == 0, 10)


@pytest.mark.slow
def test_a_full_ingest_queue_429_is_retried(nats_server_factory: Any) -> None:
    # One buffered message per stream: publishing from several threads at once overflows
    # the stream's ingest queue, and the server answers 429 "too many requests".
    server = nats_server_factory(config_text="jetstream { max_buffered_msgs: 1 }")
    with syncmsg.connect(server.url, timeout=5.0) as client:
        js = client.jetstream()
        js.ensure_stream(StreamSpec(name="BUSY", subjects=["busy.>"]))
        refused = 0
        inbox = client.new_inbox()
        raw = client.subscribe_sync(f"{inbox}.*")
        for i in range(300):
            client.publish("busy.raw", b"x" * 64, reply=f"{inbox}.{i}")
        for _ in range(300):
            refused += int(b'"err_code":10167' in raw.next_msg(10).data)
        assert refused, "the server never answered 429: the test proves nothing"

        acks: list[int] = []
        lock = threading.Lock()

        def publish(thread: int) -> None:
            for i in range(40):
                ack = js.publish(f"busy.sync.{thread}", f"{thread}-{i}")
                with lock:
                    acks.append(ack.seq)

        threads = [threading.Thread(target=publish, args=(t,)) for t in range(6)]
        for thread in threads:
            thread.start()
        futures = [js.publish_async("busy.async", str(i)) for i in range(300)]
        for thread in threads:
            thread.join(60)
        js.flush(60)
        assert len(acks) == 240 and all(f.result().seq for f in futures)
        stored = js.stream_info("BUSY").state.messages
        assert stored == 300 - refused + 240 + 300  # each acked message once

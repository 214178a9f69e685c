"""Publishing: PubAck, exactly-once ids, expectations, publish_async's window, kill -9."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from _js_helpers import read_stream, unique, wait_until

import syncmsg
from syncmsg.jetstream import MSG_ID_HEADER, PubAck, StreamSpec


@pytest.fixture
def stream(client: syncmsg.Client) -> Iterator[str]:
    name = unique("P")
    js = client.jetstream()
    js.ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"], storage="memory"))
    yield name
    if not client.is_closed:
        js.delete_stream(name)


def test_publish_returns_a_puback(client: syncmsg.Client, stream: str) -> None:
    js = client.jetstream()
    first = js.publish(f"{stream}.a", {"n": 1})
    second = js.publish(f"{stream}.a", b"two", headers={"X-Trace": "t1"})
    assert first == PubAck(stream=stream, seq=1, duplicate=False)
    assert second.seq == 2
    stored = js.get_msg(stream, 2)
    assert stored.data == b"two"
    assert stored.headers is not None
    assert stored.headers["X-Trace"] == "t1"
    assert stored.headers[MSG_ID_HEADER]  # an id is made when the caller gives none
    assert stored.headers[MSG_ID_HEADER] != js.get_msg(stream, 1).headers[MSG_ID_HEADER]  # type: ignore[index]


def test_same_msg_id_is_stored_once(client: syncmsg.Client, stream: str) -> None:
    js = client.jetstream()
    first = js.publish(f"{stream}.a", b"x", msg_id="order-42")
    again = js.publish(f"{stream}.a", b"x", msg_id="order-42")
    assert not first.duplicate
    assert again.duplicate
    assert again.seq == first.seq
    as_header = js.publish(f"{stream}.a", b"x", headers={MSG_ID_HEADER: "order-42"})
    assert as_header.duplicate  # an id given as a header counts as the msg_id
    assert js.stream_info(stream).state.messages == 1


def test_expectations_fail_with_syncmsg_errors(client: syncmsg.Client, stream: str) -> None:
    js = client.jetstream()
    js.publish(f"{stream}.a", b"1")
    assert js.publish(f"{stream}.a", b"2", expected_last_seq=1, expected_stream=stream).seq == 2
    with pytest.raises(syncmsg.WrongLastSequenceError):
        js.publish(f"{stream}.a", b"3", expected_last_seq=1)
    with pytest.raises(syncmsg.WrongLastSequenceError):
        js.publish(f"{stream}.a", b"3", expected_stream="OTHER")
    assert js.stream_info(stream).state.messages == 2


def test_publish_without_a_stream_raises_no_responders(client: syncmsg.Client) -> None:
    js = client.jetstream(no_responders_wait=0.3)
    with pytest.raises(syncmsg.NoRespondersError):
        js.publish("no.stream.captures.this", b"x", timeout=1.0)
    future = js.publish_async("no.stream.captures.this", b"x", timeout=1.0)
    with pytest.raises(syncmsg.NoRespondersError):
        future.result(5)


def test_a_subject_no_stream_captures_fails_at_once(client: syncmsg.Client) -> None:
    js = client.jetstream()  # no_responders_wait: the default 10 s
    started = time.monotonic()
    with pytest.raises(syncmsg.NoRespondersError, match=r"no stream captures 'nowhere\.x'"):
        js.publish("nowhere.x", b"x", timeout=1.0)
    assert time.monotonic() - started < 5  # the API's "none" is an answer, not a wait


def test_no_answer_from_the_api_is_waited_out(nats_server_factory: Any) -> None:
    server = nats_server_factory(jetstream=False)  # nothing answers the JetStream API
    with syncmsg.connect(server.url) as plain:
        js = plain.jetstream(no_responders_wait=0.5, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(syncmsg.NoRespondersError):
            js.publish("orders.x", b"x")
        assert time.monotonic() - started >= 0.5  # no verdict: it waited for a stream


def test_bad_input_is_refused_before_sending(client: syncmsg.Client, stream: str) -> None:
    js = client.jetstream()
    with pytest.raises(syncmsg.InvalidSubjectError):
        js.publish("bad subject", b"x")
    with pytest.raises(ValueError):
        js.publish(f"{stream}.a", b"x", msg_id="")
    with pytest.raises(syncmsg.PayloadTooLargeError):
        js.publish(f"{stream}.a", b"x" * (client.max_payload + 1))


def test_publish_async_resolves_every_future_off_the_loop(
    client: syncmsg.Client, stream: str
) -> None:
    js = client.jetstream(max_pending=32)
    threads: set[str] = set()
    peak = [0]

    def seen(future: Any) -> None:
        threads.add(threading.current_thread().name)
        peak[0] = max(peak[0], js.pending_acks)

    futures = []
    for i in range(2000):
        future = js.publish_async(f"{stream}.a", str(i))
        future.add_done_callback(seen)
        futures.append(future)
        assert js.pending_acks <= 32
    js.flush(timeout=20)
    assert js.pending_acks == 0
    acks = [f.result(0) for f in futures]
    assert [a.seq for a in acks] == list(range(1, 2001))  # one publisher thread keeps order
    assert not any(a.duplicate for a in acks)
    assert peak[0] <= 32
    assert not any(name.startswith("syncmsg-loop") for name in threads)
    assert js.stream_info(stream).state.messages == 2000


def test_publish_async_keeps_no_acknowledged_payload(client: syncmsg.Client, stream: str) -> None:
    """Acknowledged messages leave the timeouts heap before their deadline: a fast writer
    with a long timeout (an object store upload) holds its window, not every message."""
    from syncmsg.jetstream import _publish_async

    js = client.jetstream(max_pending=16, timeout=60)
    for _ in range(1000):
        js.publish_async(f"{stream}.a", b"x" * 1024)
    js.flush(timeout=20)
    heap = js._async._timeouts
    wait_until(lambda: len(heap) <= _publish_async._SWEEP_SLACK + 16, timeout=10)


def test_publish_async_errors_land_on_the_future(client: syncmsg.Client, stream: str) -> None:
    js = client.jetstream()
    js.publish(f"{stream}.a", b"1")
    bad = js.publish_async(f"{stream}.a", b"2", expected_last_seq=7)
    dup = js.publish_async(f"{stream}.a", b"3", msg_id="same")
    dup2 = js.publish_async(f"{stream}.a", b"3", msg_id="same")
    js.flush(timeout=10)
    with pytest.raises(syncmsg.WrongLastSequenceError):
        bad.result(0)
    assert not dup.result(0).duplicate
    assert dup2.result(0).duplicate


def test_publish_after_close_raises(nats_url: str) -> None:
    client = syncmsg.connect(nats_url)
    js = client.jetstream()
    client.close()
    with pytest.raises(syncmsg.ConnectionClosedError):
        js.publish("x.y", b"1")
    with pytest.raises(syncmsg.ConnectionClosedError):
        js.publish_async("x.y", b"1")


def _check_exactly_once(js: Any, stream: str, acked: dict[str, PubAck]) -> None:
    stored = read_stream(js, stream)
    payloads = Counter(msg.data.decode() for _, msg in stored)
    duplicates = [p for p, n in payloads.items() if n > 1]
    assert not duplicates, f"stored more than once: {duplicates[:10]}"
    by_seq = {seq: msg.data.decode() for seq, msg in stored}
    for payload, ack in acked.items():
        assert by_seq.get(ack.seq) == payload, f"{payload} acked at {ack.seq} but not stored there"


@pytest.mark.slow
def test_kill_9_during_publishing_from_8_threads(nats_server_factory: Any) -> None:
    server = nats_server_factory(jetstream=True)
    client = syncmsg.connect(server.url, timeout=5.0, reconnect_wait=0.1)
    js = client.jetstream(timeout=1.0)
    name = unique("KILL")
    js.ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"], storage="file"))
    per_thread = 150
    acked: dict[str, PubAck] = {}
    failed: list[BaseException] = []
    lock = threading.Lock()

    def publisher(t: int) -> None:
        for i in range(per_thread):
            payload = f"t{t}-{i}"
            try:
                ack = js.publish(f"{name}.t{t}", payload)
            except syncmsg.SyncMsgError as exc:
                with lock:
                    failed.append(exc)
                continue
            with lock:
                acked[payload] = ack

    threads = [threading.Thread(target=publisher, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(acked) >= 300, 30, what="300 acks before the kill")
        stored_id = js.get_msg(name, acked["t0-0"].seq).headers[MSG_ID_HEADER]  # type: ignore[index]
        server.kill()
        wait_until(lambda: not client.is_connected, 10, what="client notices the kill")
        server.restart()
        for thread in threads:
            thread.join(90)
        assert not any(t.is_alive() for t in threads)
        assert not failed, f"publishes failed: {failed[:3]}"
        assert len(acked) == 8 * per_thread
        _check_exactly_once(js, name, acked)
        assert js.stream_info(name).state.messages == 8 * per_thread
        assert client.stats()["reconnects"] >= 1
        # The duplicate window outlives the restart: the server rebuilt it from its files.
        again = js.publish(f"{name}.t0", "t0-0", msg_id=stored_id)
        assert again.duplicate
        assert again.seq == acked["t0-0"].seq
    finally:
        client.close()


@pytest.mark.slow
def test_kill_9_during_publish_async(nats_server_factory: Any) -> None:
    server = nats_server_factory(jetstream=True)
    client = syncmsg.connect(server.url, timeout=5.0, reconnect_wait=0.1)
    js = client.jetstream(timeout=1.0, max_pending=64)
    name = unique("KILLA")
    js.ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"], storage="file"))
    futures = {}
    try:
        for i in range(600):
            futures[f"a-{i}"] = js.publish_async(f"{name}.a", f"a-{i}", timeout=3.0)
            if i == 300:
                server.kill()
                wait_until(lambda: not client.is_connected, 10, what="client notices the kill")
                server.restart()
        js.flush(timeout=90)
        acked = {p: f.result(0) for p, f in futures.items()}
        _check_exactly_once(js, name, acked)
        assert js.stream_info(name).state.messages == 600
        assert client.stats()["reconnects"] >= 1
    finally:
        client.close()


def test_retry_with_expected_last_seq_recognises_its_own_earlier_success(
    client: syncmsg.Client, stream: str
) -> None:
    # The server checks expected_last_seq before duplicates, so a retry whose first
    # attempt was stored (ack lost) is refused; the retry must see its own message there.
    from syncmsg.jetstream._publish import Expect, Message, parse_pub_ack

    js = client.jetstream()
    first = js.publish(f"{stream}.a", b"1", msg_id="once", expected_last_seq=0)
    assert first.seq == 1
    headers = {MSG_ID_HEADER: "once", "Nats-Expected-Last-Sequence": "0"}
    refused = client.request(f"{stream}.a", b"1", headers=headers, timeout=5)
    message = Message(f"{stream}.a", b"1", None, "once", Expect(last_seq=0))
    with pytest.raises(syncmsg.WrongLastSequenceError):
        parse_pub_ack(refused.data, message, attempts=1, lookup=js._stored_lookup)
    ack = parse_pub_ack(refused.data, message, attempts=2, lookup=js._stored_lookup)
    assert ack == PubAck(stream=stream, seq=1, duplicate=True)
    other = Message(f"{stream}.a", b"1", None, "someone-else", Expect(last_seq=0))
    with pytest.raises(syncmsg.WrongLastSequenceError):
        parse_pub_ack(refused.data, other, attempts=2, lookup=js._stored_lookup)


def test_close_fails_the_futures_still_waiting(nats_server_factory: Any) -> None:
    server = nats_server_factory(jetstream=True)
    client = syncmsg.connect(server.url, timeout=5.0, reconnect_wait=0.1)
    js = client.jetstream(timeout=30.0)
    name = unique("CLOSE")
    js.ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"], storage="memory"))
    server.kill()
    wait_until(lambda: not client.is_connected, 10, what="client notices the kill")
    futures = [js.publish_async(f"{name}.a", str(i)) for i in range(10)]
    client.close(timeout=2)
    for future in futures:
        with pytest.raises(syncmsg.ConnectionClosedError):
            future.result(5)
    assert js.pending_acks == 0


@pytest.mark.slow
def test_stream_leader_killed_in_a_cluster(nats_cluster_factory: Any) -> None:
    cluster = nats_cluster_factory(3)
    client = syncmsg.connect(cluster.urls, timeout=5.0, reconnect_wait=0.1)
    js = client.jetstream(timeout=2.0)
    name = unique("R3")
    js.ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"], replicas=3))
    leader = (js.stream_info(name).cluster or {}).get("leader")
    index = next(i for i, s in enumerate(cluster.servers) if s.name == leader)
    acked: dict[str, PubAck] = {}
    failed: list[BaseException] = []
    lock = threading.Lock()

    def publisher(t: int) -> None:
        for i in range(100):
            payload = f"t{t}-{i}"
            try:
                ack = js.publish(f"{name}.t{t}", payload)
            except syncmsg.SyncMsgError as exc:
                with lock:
                    failed.append(exc)
                continue
            with lock:
                acked[payload] = ack

    threads = [threading.Thread(target=publisher, args=(t,)) for t in range(4)]
    try:
        for thread in threads:
            thread.start()
        wait_until(lambda: len(acked) >= 100, 30, what="100 acks before the kill")
        cluster.kill(index)  # a leader election follows: no responders for a moment
        for thread in threads:
            thread.join(120)
        assert not failed, f"publishes failed: {failed[:3]}"
        assert len(acked) == 400
        new_leader = (js.stream_info(name).cluster or {}).get("leader")
        assert new_leader and new_leader != leader
        _check_exactly_once(js, name, acked)
    finally:
        client.close()

"""Atomic batches and counters (nats-server 2.12) against a real nats-server: a batch is
stored whole or not at all, counters add up in big integers, bad input never reaches the
wire."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from _js_helpers import read_stream, unique

import syncmsg
from syncmsg.jetstream import ApiErrorCode, BatchMessage, StreamSpec


@pytest.fixture
def js(client: syncmsg.Client) -> syncmsg.JetStream:
    return client.jetstream()


@pytest.fixture
def batches(js: syncmsg.JetStream) -> Iterator[str]:
    name = unique("BAT")
    js.ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"], allow_atomic=True))
    yield name
    with contextlib.suppress(syncmsg.SyncMsgError):
        js.delete_stream(name)


@pytest.fixture
def counters(js: syncmsg.JetStream) -> Iterator[str]:
    name = unique("CNT")
    js.ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"], allow_msg_counter=True))
    yield name
    with contextlib.suppress(syncmsg.SyncMsgError):
        js.delete_stream(name)


# ---------------------------------------------------------------------------- batches


def test_a_batch_is_stored_whole(js: syncmsg.JetStream, batches: str) -> None:
    assert js.stream_info(batches).config.allow_atomic is True
    ack = js.publish_batch(
        [
            (f"{batches}.order", {"id": 1}),
            (f"{batches}.line", "two", {"X-Line": "2"}),
            BatchMessage(f"{batches}.total", b"3", msg_id="total-1", expected_stream=batches),
        ]
    )
    assert (ack.stream, ack.seq, ack.count, ack.batch_size) == (batches, 3, 3, 3)
    assert ack.batch is not None and ack.batch_id == ack.batch
    stored = read_stream(js, batches)
    assert [msg.data for _, msg in stored] == [b'{"id":1}', b"two", b"3"]
    assert stored[1][1].headers["X-Line"] == "2"
    assert stored[2][1].headers["Nats-Batch-Commit"] == "1"
    assert {msg.headers["Nats-Batch-Id"] for _, msg in stored} == {ack.batch}
    assert "Nats-Msg-Id" not in stored[0][1].headers  # no id of syncmsg's own: see the docs

    single = js.publish_batch([(f"{batches}.order", "alone")])
    assert (single.seq, single.count) == (4, 1)


def test_an_expectation_failing_mid_batch_stores_nothing(
    js: syncmsg.JetStream, batches: str
) -> None:
    js.publish(f"{batches}.stock", "10")  # seq 1
    before = js.stream_info(batches).state
    with pytest.raises(syncmsg.WrongLastSequenceError) as caught:
        js.publish_batch(
            [
                (f"{batches}.order", "first"),
                BatchMessage(f"{batches}.stock", "9", expected_last_subject_seq=99),  # wrong
                (f"{batches}.order", "last"),
            ]
        )
    assert caught.value.err_code == ApiErrorCode.WRONG_LAST_SEQUENCE
    after = js.stream_info(batches).state
    assert (after.messages, after.last_seq) == (before.messages, before.last_seq) == (1, 1)
    # The same batch with the right expectation goes in whole.
    ack = js.publish_batch(
        [
            BatchMessage(f"{batches}.order", "first", expected_last_seq=1),
            BatchMessage(f"{batches}.stock", "9", expected_last_subject_seq=1),
            (f"{batches}.order", "last"),
        ]
    )
    assert (ack.seq, ack.count) == (4, 3)


def test_a_batch_sent_again_with_its_ids_is_refused_whole(
    js: syncmsg.JetStream, batches: str
) -> None:
    messages = [BatchMessage(f"{batches}.a", str(i), msg_id=f"m{i}") for i in range(3)]
    js.publish_batch(messages)
    with pytest.raises(syncmsg.JetStreamError) as caught:
        js.publish_batch(messages)
    assert caught.value.err_code == ApiErrorCode.ATOMIC_PUBLISH_DUPLICATE_MSG_ID
    assert js.stream_info(batches).state.messages == 3


def test_a_stream_without_allow_atomic_refuses_the_batch(js: syncmsg.JetStream) -> None:
    name = unique("NOBAT")
    js.ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"], storage="memory"))
    try:
        with pytest.raises(syncmsg.JetStreamError) as caught:
            js.publish_batch([(f"{name}.a", "1"), (f"{name}.b", "2")])
        assert caught.value.err_code == ApiErrorCode.ATOMIC_PUBLISH_DISABLED
        assert js.stream_info(name).state.messages == 0
    finally:
        js.delete_stream(name)


@pytest.mark.parametrize(
    ("messages", "error", "words"),
    [
        ([], ValueError, "at least one"),
        ("orders.1", TypeError, "list of messages"),
        ([{"subject": "x"}], TypeError, "give a BatchMessage"),
        ([("x",)], TypeError, "give a BatchMessage"),
        ([("a", "1"), BatchMessage("b", expected_last_seq=1)], ValueError, "only the first"),
        ([("a", "1"), ("b", "2", {"Nats-Expected-Last-Sequence": "1"})], ValueError, "first"),
        ([("a", "1", {"Nats-Batch-Id": "mine"})], ValueError, "Nats-Batch-Id"),
        ([("a", "1", {"Nats-Expected-Last-Msg-Id": "m"})], ValueError, "last message id"),
        ([("a b", "1")], syncmsg.InvalidSubjectError, None),
        ([("a.*", "1")], syncmsg.InvalidSubjectError, None),
        ([BatchMessage("a", "1", msg_id="")], ValueError, "msg_id"),
        ([BatchMessage("a", "1", ttl=0.5)], ValueError, "ttl"),
        ([("a", float("nan"))], syncmsg.PayloadError, None),
        ([("a", b"x" * (2 << 20))], syncmsg.PayloadTooLargeError, "max_payload"),
    ],
)
def test_bad_batches_never_reach_the_wire(
    js: syncmsg.JetStream, batches: str, messages: Any, error: type[Exception], words: str | None
) -> None:
    def local(item: Any) -> Any:  # the stream's own subjects
        if isinstance(item, tuple) and len(item) > 1:
            return (f"{batches}.{item[0]}", *item[1:])
        if isinstance(item, BatchMessage):
            return BatchMessage(**{**item.__dict__, "subject": f"{batches}.{item.subject}"})
        return item

    given = [local(m) for m in messages] if isinstance(messages, list) else messages
    with pytest.raises(error, match=words):
        js.publish_batch(given)
    assert js.stream_info(batches).state.messages == 0


def test_a_lost_commit_answer_is_looked_up(
    js: syncmsg.JetStream, batches: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = js.client.connection()
    real = conn.request

    def lose_the_commit_answer(subject: str, payload: bytes, block: Any, timeout: float) -> Any:
        answer = real(subject, payload, block, timeout)
        if block and b"Nats-Batch-Commit: 1" in block:
            raise syncmsg.TimeoutError("the commit's answer was lost")
        return answer

    monkeypatch.setattr(conn, "request", lose_the_commit_answer)
    ack = js.publish_batch([(f"{batches}.a", "1"), (f"{batches}.b", "2")])
    assert (ack.stream, ack.seq, ack.count) == (batches, 2, 2) and not ack.duplicate
    assert js.stream_info(batches).state.messages == 2

    def lose_the_commit(subject: str, payload: bytes, block: Any, timeout: float) -> Any:
        if block and b"Nats-Batch-Commit: 1" in block:
            raise syncmsg.TimeoutError("the commit was lost")
        return real(subject, payload, block, timeout)

    monkeypatch.setattr(conn, "request", lose_the_commit)
    with pytest.raises(syncmsg.TimeoutError):  # not stored: said so, never sent twice
        js.publish_batch([(f"{batches}.a", "3"), (f"{batches}.b", "4")])
    assert js.stream_info(batches).state.messages == 2


# ---------------------------------------------------------------------------- counters


def test_counters_add_up(js: syncmsg.JetStream, counters: str) -> None:
    hits = f"{counters}.hits"
    assert js.increment(hits) == 1
    assert js.increment(hits, 10) == 11
    assert js.increment(hits, -3) == 8
    assert js.increment(hits, 0) == 8
    big = 10**30
    assert js.increment(hits, big) == big + 8  # beyond 64 bits: the server's big integers
    assert js.counter_value(hits) == big + 8
    assert js.counter_value(hits, stream=counters) == big + 8
    last = js.get_last_msg(counters, hits)
    assert last.json() == {"val": str(big + 8)} and last.headers == {
        "Nats-Incr": f"+{big}",
        "Nats-Msg-Id": last.headers["Nats-Msg-Id"],  # type: ignore[index]
    }
    with pytest.raises(syncmsg.MessageNotFoundError):
        js.counter_value(f"{counters}.never")


def test_an_increment_sent_twice_counts_once(js: syncmsg.JetStream, counters: str) -> None:
    page = f"{counters}.page"
    assert js.increment(page, 5, msg_id="visit-1") == 5
    assert js.increment(page, 5, msg_id="visit-1") == 5  # a duplicate: the stored value
    assert js.increment(page, 5, msg_id="visit-2") == 10
    assert js.stream_info(counters).state.messages == 2


def test_what_a_counter_refuses(js: syncmsg.JetStream, counters: str) -> None:
    plain = unique("PLAIN")
    js.ensure_stream(StreamSpec(name=plain, subjects=[f"{plain}.>"], storage="memory"))
    try:
        with pytest.raises(syncmsg.JetStreamError) as caught:
            js.increment(f"{plain}.hits")
        assert caught.value.err_code == ApiErrorCode.COUNTER_DISABLED
        js.publish(f"{plain}.text", "not a counter")
        with pytest.raises(syncmsg.JetStreamError, match="not a counter value"):
            js.counter_value(f"{plain}.text")
    finally:
        js.delete_stream(plain)
    with pytest.raises(syncmsg.JetStreamError) as missing:
        js.publish(f"{counters}.hits", "a payload")  # a plain publish to a counter stream
    assert missing.value.err_code == ApiErrorCode.COUNTER_INCREMENT_MISSING
    for wrong in (1.5, "1", True, None):
        with pytest.raises(TypeError):
            js.increment(f"{counters}.hits", wrong)  # type: ignore[arg-type]
    with pytest.raises(syncmsg.InvalidSubjectError):
        js.counter_value(f"{counters}.*")


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"allow_msg_ttl": True}, "message TTLs"),
        ({"subject_delete_marker_ttl": 60}, "message TTLs"),
        ({"retention": "workqueue"}, "retention=limits"),
        ({"discard": "new"}, "discard=new"),
    ],
)
def test_counter_streams_that_cannot_be(options: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        StreamSpec(name="C", subjects=["c.>"], allow_msg_counter=True, **options)


def test_mirrors_take_neither_counters_nor_batches() -> None:
    from syncmsg.jetstream import StreamSource

    for flag in ("allow_msg_counter", "allow_atomic"):
        with pytest.raises(ValueError, match="mirror"):
            StreamSpec(name="M", mirror=StreamSource(name="O"), **{flag: True})

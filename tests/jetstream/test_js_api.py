"""The small parts: durations, header blocks, reply parsing, argument checks, API calls."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import inspect
from collections.abc import Iterator

import pytest
from _js_helpers import unique

import syncmsg
from syncmsg.jetstream import JsMsg, StreamSpec, dead_letter
from syncmsg.jetstream._api import is_retryable, parse_reply
from syncmsg.jetstream._models import (
    from_nanos,
    parse_header_block,
    parse_time,
    to_nanos,
    to_seconds,
)
from syncmsg.jetstream._options import ConsumerChoices, consumer_config


def test_durations() -> None:
    assert to_nanos(None) == 0
    assert to_nanos(1.5) == 1_500_000_000
    assert to_nanos(dt.timedelta(days=1, microseconds=3)) == 86_400 * 10**9 + 3000
    assert to_seconds(dt.timedelta(milliseconds=250)) == 0.25
    assert from_nanos(0) is None
    assert from_nanos(2_000_000_000) == dt.timedelta(seconds=2)
    for bad in (-1, float("nan"), True, "1s"):
        with pytest.raises(ValueError):
            to_nanos(bad)  # type: ignore[arg-type]


def test_header_blocks_and_times() -> None:
    raw = b"NATS/1.0\r\nA: 1\r\nB:  two \r\nbroken line\r\n\r\n"
    assert parse_header_block(raw) == {"A": "1", "B": "two"}
    stamp = parse_time("2024-05-01T10:20:30.123456789Z")
    assert stamp == dt.datetime(2024, 5, 1, 10, 20, 30, 123456, tzinfo=dt.timezone.utc)
    # Go drops a fraction's trailing zeros; Python 3.10 reads only 3 or 6 digits.
    for text, micros in ((".77572Z", 775720), (".5Z", 500000), (".1234Z", 123400)):
        stamp = parse_time(f"2026-12-01T18:12:04{text}")
        assert stamp == dt.datetime(2026, 12, 1, 18, 12, 4, micros, tzinfo=dt.timezone.utc)
    assert parse_time("0001-01-01T00:00:00Z") is None
    assert parse_time("not a time") is None
    assert parse_time(None) is None
    assert parse_time("2024-05-01T10:20:30") == dt.datetime(
        2024, 5, 1, 10, 20, 30, tzinfo=dt.timezone.utc
    )


def test_reply_parsing_and_retry_decisions() -> None:
    assert parse_reply(syncmsg.Msg("r", b'{"ok": 1}')) == {"ok": 1}
    with pytest.raises(syncmsg.JetStreamError):
        parse_reply(syncmsg.Msg("r", b"not json"))
    with pytest.raises(syncmsg.JetStreamError):
        parse_reply(syncmsg.Msg("r", b"[1]"))
    with pytest.raises(syncmsg.StreamNotFoundError):
        parse_reply(syncmsg.Msg("r", b'{"error": {"code": 404, "err_code": 10059}}'))
    with pytest.raises(syncmsg.ConsumerNotFoundError):
        parse_reply(syncmsg.Msg("r", b'{"error": {"code": 404, "description": "consumer gone"}}'))
    assert is_retryable(syncmsg.TimeoutError("t"))
    assert is_retryable(syncmsg.NoRespondersError("n"))
    assert is_retryable(syncmsg.NatsConnectionError("lost"))
    assert is_retryable(syncmsg.JetStreamError("busy", code=503))
    assert not is_retryable(syncmsg.ConnectionClosedError("closed"))
    assert not is_retryable(syncmsg.WrongLastSequenceError("no", code=400))


def test_consumer_config_checks() -> None:
    config = consumer_config(
        "d",
        "a.>",
        ack_wait=dt.timedelta(seconds=5),
        max_deliver=4,
        max_ack_pending=10,
        backoff=[1, 2],
        deliver_policy="new",
        description="x",
        extra={"max_waiting": 16},
    )
    assert config["ack_wait"] == 5 * 10**9
    assert config["backoff"] == [10**9, 2 * 10**9]
    assert config["deliver_policy"] == "new"
    assert config["max_waiting"] == 16
    common = {
        "ack_wait": 1,
        "max_deliver": 3,
        "max_ack_pending": 1,
        "backoff": None,
        "deliver_policy": "all",
    }
    for bad in (
        {"max_ack_pending": 0},
        {"max_deliver": 0},
        {"max_deliver": -2},
        {"ack_wait": 0},
        {"backoff": [1, 0]},
        {"backoff": [1, 2, 3]},
        {"deliver_policy": "sometimes"},
    ):
        with pytest.raises(ValueError):
            consumer_config("d", None, **{**common, **bad})  # type: ignore[arg-type]


def test_each_subscribe_call_names_every_consumer_choice() -> None:
    """The calls gather their ConsumerChoices from their locals() by name: a keyword
    renamed in one signature must not fall back to its default without a word."""
    choices = {field.name for field in dataclasses.fields(ConsumerChoices)}
    for method, not_its_own in (
        (syncmsg.JetStream.subscribe, set()),
        (syncmsg.JetStream.subscribe_sync, set()),
        (syncmsg.JetStream.pull_subscribe, {"queue", "prefetch"}),
    ):
        assert choices - set(inspect.signature(method).parameters) == not_its_own, method
    keywords = {"self": object(), "subject": "a", "durable": "d", "headers_only": True}
    assert ConsumerChoices.of(keywords) == ConsumerChoices(durable="d", headers_only=True)
    wrong = "ack_wait, durable, workers cannot be used with ordered_consumer=True"
    with pytest.raises(ValueError, match=wrong):
        ConsumerChoices(durable="d", ack_wait=1, prefetch=5).check_ordered(
            workers=2, manual_ack=False
        )
    ConsumerChoices(stream="S", headers_only=True, prefetch=5).check_ordered()


@pytest.fixture
def js(client: syncmsg.Client) -> syncmsg.JetStream:
    return client.jetstream()


@pytest.fixture
def stream(js: syncmsg.JetStream) -> Iterator[str]:
    name = unique("A")
    js.ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"], storage="memory"))
    yield name
    with contextlib.suppress(syncmsg.SyncMsgError):
        js.delete_stream(name)


def test_stream_management_calls(js: syncmsg.JetStream, stream: str) -> None:
    for i in range(3):
        js.publish(f"{stream}.a" if i else f"{stream}.b", str(i))
    assert js.purge_stream(stream, subject=f"{stream}.b") == 1
    assert js.purge_stream(stream) == 2
    assert stream in js.stream_names()
    spec = js.stream_info(stream).config
    updated = js.update_stream(spec.model_copy(update={"max_msgs": 7}))
    assert updated.action == "updated" and updated.config.max_msgs == 7
    other = unique("B")
    created = js.add_stream(StreamSpec(name=other, subjects=[f"{other}.>"], storage="memory"))
    assert created.action == "created"
    with pytest.raises(syncmsg.JetStreamError):
        js.add_stream(StreamSpec(name=other, subjects=[f"{other}.x"], storage="memory"))
    js.delete_stream(other)
    with pytest.raises(TypeError):
        js.ensure_stream({"name": "X"})  # type: ignore[arg-type]


def test_consumer_management_calls(js: syncmsg.JetStream, stream: str) -> None:
    psub = js.pull_subscribe(f"{stream}.>", durable="mgmt", ack_wait=dt.timedelta(seconds=9))
    info = psub.consumer_info()
    assert info.stream == stream and info.durable == "mgmt"
    assert info.ack_wait == dt.timedelta(seconds=9)
    assert info.config["ack_policy"] == "explicit"
    psub.drain()
    js.delete_consumer(stream, "mgmt")
    with pytest.raises(syncmsg.ConsumerNotFoundError):
        js.consumer_info(stream, "mgmt")


def test_subscribe_argument_checks(js: syncmsg.JetStream, stream: str) -> None:
    with pytest.raises(TypeError):
        js.subscribe(f"{stream}.>", "not callable", durable="d")  # type: ignore[arg-type]
    with pytest.raises(syncmsg.InvalidSubjectError):
        js.subscribe(f"{stream}.>", print, durable="bad.name")
    with pytest.raises(ValueError):
        js.subscribe(f"{stream}.>", print, durable="d", workers=-1)
    with pytest.raises(ValueError):
        js.subscribe(f"{stream}.>", print, durable="d", max_deliver=2, backoff=[1, 2])
    with pytest.raises(syncmsg.StreamNotFoundError):
        js.subscribe("no.stream.for.this", print, durable="d")
    with pytest.raises(syncmsg.InvalidSubjectError):
        js.subscribe(f"{stream}.>", print, durable="d", dead_letter="bad subject")


def test_contexts_and_guards(client: syncmsg.Client) -> None:
    assert client.jetstream() is client.jetstream()
    assert client.jetstream(domain="hub")._api.prefix == "$JS.hub.API"
    assert client.jetstream(prefix="$JS.other.API")._api.prefix == "$JS.other.API"
    with pytest.raises(syncmsg.ConfigurationError):
        client.jetstream(domain="a", prefix="b")
    with pytest.raises(ValueError):
        client.jetstream(max_pending=0)
    with pytest.raises(ValueError):
        dead_letter(syncmsg.Msg("a", b""), "x")
    with pytest.raises(ValueError):
        JsMsg("a", b"", None, "$JS.ACK.S.C.1.1.1.1.0", client).dead_letter("x")
    js = client.jetstream()

    async def on_the_loop() -> None:
        js.stream_info("ANY")

    with pytest.raises(syncmsg.LoopThreadError):
        client.connection().call(on_the_loop(), 5, "test")

    async def publish_on_the_loop() -> None:
        js.publish("any.subject", b"x")

    with pytest.raises(syncmsg.LoopThreadError):
        client.connection().call(publish_on_the_loop(), 5, "test")
    assert asyncio  # the coroutines above run on the client's own loop

"""Consumer features of nats-server 2.11 to 2.14 against a real nats-server 2.15: pause and
resume, reset, the API level that tells which a server has (and a server reporting a lower
one), and ``queue=`` as the durable its members share."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _js_helpers import unique, wait_until

import syncmsg
from syncmsg.jetstream import ApiErrorCode, ConsumerConfig, StreamSpec
from syncmsg.jetstream._consumer_admin import pause_deadline
from syncmsg.jetstream._features import (
    ATOMIC_PUBLISH,
    CONSUMER_PAUSE,
    CONSUMER_RESET,
    MESSAGE_COUNTERS,
    PRIORITY_GROUPS,
    ApiLevel,
    require_api_level,
)


@pytest.fixture
def js(client: syncmsg.Client) -> syncmsg.JetStream:
    return client.jetstream()


@pytest.fixture
def stream(js: syncmsg.JetStream) -> Iterator[str]:
    name = unique("ADM")
    js.ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"], storage="memory"))
    yield name
    with contextlib.suppress(syncmsg.SyncMsgError):
        js.delete_stream(name)


# ---------------------------------------------------------------------------- API level


def test_the_server_reports_its_api_level(js: syncmsg.JetStream) -> None:
    level = js.api_level()
    assert level == js.account_info().api.level >= 5  # nats-server 2.15
    for feature in (CONSUMER_PAUSE, PRIORITY_GROUPS, ATOMIC_PUBLISH, MESSAGE_COUNTERS):
        require_api_level(feature, level)
    require_api_level(CONSUMER_RESET, level)


@pytest.mark.parametrize(
    ("feature", "below"),
    [(CONSUMER_RESET, 3), (CONSUMER_RESET, 0), (ATOMIC_PUBLISH, 1), (CONSUMER_PAUSE, 0)],
)
def test_a_lower_level_is_refused_clearly(feature: Any, below: int) -> None:
    with pytest.raises(syncmsg.NotSupportedError) as caught:
        require_api_level(feature, below)
    error = caught.value
    assert isinstance(error, syncmsg.JetStreamError)
    assert (error.feature, error.required_level, error.server_level) == (
        feature.name,
        feature.level,
        below,
    )
    assert f"nats-server {feature.server}" in str(error) and f"level {below}" in str(error)
    require_api_level(feature, feature.level)  # the level that brought it is enough


def test_consumer_reset_came_with_nats_server_2_14_at_level_4() -> None:
    # nats-server 2.12.5 reports level 3 and has no $JS.API.CONSUMER.RESET; 2.14.0 is 4.
    assert (CONSUMER_RESET.level, CONSUMER_RESET.server) == (4, "2.14")
    with pytest.raises(syncmsg.NotSupportedError):
        require_api_level(CONSUMER_RESET, 3)


def test_the_level_is_read_once_per_connection() -> None:
    reads: list[float | None] = []
    reconnects = [0]

    def read(timeout: float | None) -> int:
        reads.append(timeout)
        return 2

    levels = ApiLevel(read, lambda: reconnects[0])
    assert levels.level() == 2 and levels.level(1.0) == 2
    assert len(reads) == 1
    levels.require(ATOMIC_PUBLISH)
    with pytest.raises(syncmsg.NotSupportedError):
        levels.require(CONSUMER_RESET)
    reconnects[0] += 1  # another server, maybe: read it again
    assert levels.level() == 2 and len(reads) == 2


OldServer = Callable[[int], tuple[syncmsg.JetStream, list[str]]]


@pytest.fixture
def old_server(nats_server_factory: Callable[..., Any]) -> Iterator[OldServer]:
    """``old_server(level)``: a JetStream API that reports ``level`` (3: nats-server 2.12.5
    to 2.12.x; 0: before 2.11), made of a plain nats-server and a responder on
    ``$JS.API.>``. It returns a JetStream context on it and the subjects it was asked."""
    server = nats_server_factory(jetstream=False)
    with contextlib.ExitStack() as stack:

        def make(level: int) -> tuple[syncmsg.JetStream, list[str]]:
            asked: list[str] = []
            lock = threading.Lock()

            def answer(msg: syncmsg.Msg) -> None:
                with lock:
                    asked.append(msg.subject)
                if msg.subject == "$JS.API.INFO":
                    info = {"type": "io.nats.jetstream.api.v1.account_info_response"}
                    if level:
                        info["api"] = {"level": level, "total": 0, "errors": 0}  # type: ignore[assignment]
                    msg.respond(json.dumps(info))
                else:
                    msg.respond(json.dumps({"error": {"code": 400, "description": "no"}}))

            responder = stack.enter_context(syncmsg.connect(server.url, timeout=5))
            responder.subscribe("$JS.API.>", answer)
            responder.flush()
            client = stack.enter_context(syncmsg.connect(server.url, timeout=5))
            return client.jetstream(), asked

        yield make


def test_reset_on_an_older_server_is_refused_before_anything_is_sent(
    old_server: OldServer,
) -> None:
    js, asked = old_server(3)
    assert js.api_level() == 3
    with pytest.raises(syncmsg.NotSupportedError, match=r"consumer reset needs nats-server 2\.14"):
        js.reset_consumer("ORDERS", "billing")
    with pytest.raises(syncmsg.NotSupportedError) as caught:
        js.reset_consumer("ORDERS", "billing", 10)
    assert (caught.value.required_level, caught.value.server_level) == (4, 3)
    assert asked == ["$JS.API.INFO"]  # read once per connection; no RESET was ever sent
    # Level 3 has pauses: that request goes out (and this fake refuses it).
    with pytest.raises(syncmsg.JetStreamError) as refused:
        js.pause_consumer("ORDERS", "billing", 60)
    assert not isinstance(refused.value, syncmsg.NotSupportedError)
    assert asked[-1] == "$JS.API.CONSUMER.PAUSE.ORDERS.billing"


def test_a_server_before_2_11_gets_none_of_the_new_requests(old_server: OldServer) -> None:
    js, asked = old_server(0)  # nats-server 2.10 reports no API level
    attempts: list[Callable[[], object]] = [
        lambda: js.pause_consumer("ORDERS", "billing", 60),
        lambda: js.resume_consumer("ORDERS", "billing"),
        lambda: js.unpin_consumer("ORDERS", "billing", "jobs"),
        lambda: js.add_consumer(
            "ORDERS",
            durable_name="pinned",
            priority_policy="pinned_client",
            priority_groups=["jobs"],
        ),
        lambda: js.publish_batch([("orders.1", "a"), ("orders.2", "b")]),
        lambda: js.increment("hits.page"),
    ]
    for attempt in attempts:
        with pytest.raises(syncmsg.NotSupportedError):
            attempt()
    assert asked == ["$JS.API.INFO"]


def test_the_servers_own_refusal_of_a_level_is_not_supported() -> None:
    from syncmsg._errors import map_api_error

    mapped = map_api_error({"code": 412, "err_code": 10185, "description": "api level"})
    assert isinstance(mapped, syncmsg.NotSupportedError)
    assert mapped.err_code == ApiErrorCode.REQUIRED_API_LEVEL


# ---------------------------------------------------------------------------- pause


def test_pause_and_resume(js: syncmsg.JetStream, stream: str) -> None:
    js.add_consumer(stream, durable_name="paused", ack_wait=30)
    psub = js.pull_subscribe(f"{stream}.>", durable="paused")
    js.publish(f"{stream}.a", "one")
    result = js.pause_consumer(stream, "paused", dt.timedelta(minutes=10))
    assert result.paused and result.pause_remaining is not None
    assert result.pause_until is not None and result.pause_until.tzinfo is not None
    info = js.consumer_info(stream, "paused")
    assert info.paused and info.pause_until == result.pause_until
    assert info.pause_remaining is not None and info.pause_remaining > dt.timedelta(minutes=9)
    # A paused consumer answers pull requests with nothing, until they expire.
    assert psub.fetch(1, timeout=0.5) == []
    # A subscriber creating or updating the consumer keeps it paused.
    again = js.pull_subscribe(f"{stream}.>", durable="paused")
    assert js.consumer_info(stream, "paused").paused
    resumed = js.resume_consumer(stream, "paused")
    assert not resumed.paused and resumed.pause_until is None
    assert not js.consumer_info(stream, "paused").paused
    (msg,) = psub.fetch(1, timeout=5)
    assert msg.data == b"one"
    msg.ack()
    again.unsubscribe()
    psub.unsubscribe()


def test_a_consumer_made_paused_resumes_by_itself(js: syncmsg.JetStream, stream: str) -> None:
    until = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)
    made = js.add_consumer(stream, ConsumerConfig(durable_name="later", pause_until=until))
    assert made.paused and made.config.pause_until is not None
    js.publish(f"{stream}.a", "x")
    psub = js.pull_subscribe(f"{stream}.>", durable="later")
    wait_until(lambda: not js.consumer_info(stream, "later").paused, timeout=10)
    assert [m.data for m in psub.fetch(1, timeout=5)] == [b"x"]
    psub.unsubscribe()


def test_pause_refuses_what_cannot_work(js: syncmsg.JetStream, stream: str) -> None:
    with pytest.raises(ValueError, match="not in the future"):
        js.pause_consumer(stream, "x", dt.datetime(2020, 1, 1))
    with pytest.raises(ValueError, match="more than zero"):
        js.pause_consumer(stream, "x", 0)
    with pytest.raises(syncmsg.InvalidSubjectError):
        js.pause_consumer(stream, "a.b", 10)
    with pytest.raises(syncmsg.ConsumerNotFoundError):
        js.pause_consumer(stream, unique("none"), 10)
    with pytest.raises(syncmsg.ConsumerNotFoundError):
        js.resume_consumer(stream, unique("none"))


def test_pause_deadline() -> None:
    now = dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc)
    assert pause_deadline(90, now) == now + dt.timedelta(seconds=90)
    assert pause_deadline(dt.timedelta(hours=1), now) == now + dt.timedelta(hours=1)
    naive = dt.datetime(2026, 1, 1, 13)  # naive: UTC, as everywhere in syncmsg
    assert pause_deadline(naive, now) == naive.replace(tzinfo=dt.timezone.utc)
    other = dt.datetime(2026, 1, 1, 15, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert pause_deadline(other, now) == dt.datetime(2026, 1, 1, 13, tzinfo=dt.timezone.utc)


# ---------------------------------------------------------------------------- reset


def test_reset_to_the_ack_floor_redelivers_what_was_not_acked(
    js: syncmsg.JetStream, stream: str
) -> None:
    for i in range(5):
        js.publish(f"{stream}.a", str(i))
    psub = js.pull_subscribe(f"{stream}.>", durable="resettable", ack_wait=60)
    first = psub.fetch(5, timeout=5)
    assert [m.data for m in first] == [b"0", b"1", b"2", b"3", b"4"]
    for msg in first[:2]:
        msg.ack_sync(timeout=5)
    # Three are in hand and not acked: without a reset they come back after a minute.
    reset = js.reset_consumer(stream, "resettable")
    assert reset.reset_seq == 3 and reset.name == "resettable"
    assert reset.num_ack_pending == 0 and reset.num_pending == 3
    assert [m.data for m in psub.fetch(5, timeout=5)] == [b"2", b"3", b"4"]

    back = js.reset_consumer(stream, "resettable", 1)  # deliver_policy all: anywhere
    assert back.reset_seq == 1 and back.num_pending == 5
    assert [m.data for m in psub.fetch(1, timeout=5)] == [b"0"]
    psub.unsubscribe()


def test_a_reset_the_deliver_policy_forbids(js: syncmsg.JetStream, stream: str) -> None:
    js.publish(f"{stream}.a", "old")
    js.add_consumer(stream, durable_name="fresh", deliver_policy="new")
    with pytest.raises(syncmsg.JetStreamError) as caught:
        js.reset_consumer(stream, "fresh", 1)
    assert caught.value.err_code == ApiErrorCode.CONSUMER_INVALID_RESET
    assert js.reset_consumer(stream, "fresh").reset_seq == 2  # its ack floor is fine
    with pytest.raises(syncmsg.ConsumerNotFoundError):
        js.reset_consumer(stream, unique("none"))
    with pytest.raises(ValueError):
        js.reset_consumer(stream, "fresh", 0)


# ---------------------------------------------------------------------------- queue


def test_queue_members_share_the_durable_named_after_the_queue(
    js: syncmsg.JetStream, client_factory: Callable[..., syncmsg.Client], stream: str
) -> None:
    other = client_factory(timeout=5.0).jetstream()
    seen: dict[str, list[int]] = {"a": [], "b": []}
    lock = threading.Lock()

    def member(name: str) -> Callable[[syncmsg.Msg], None]:
        def handle(msg: syncmsg.Msg) -> None:
            with lock:
                seen[name].append(msg.metadata.sequence_stream)

        return handle

    first = js.subscribe(f"{stream}.>", member("a"), queue="workers", prefetch=2)
    second = other.subscribe(f"{stream}.>", member("b"), queue="workers", prefetch=2)
    assert first.durable == second.durable == "workers" and first.queue == "workers"
    assert js.consumer_names(stream) == ["workers"]
    for i in range(40):
        js.publish(f"{stream}.job", str(i))
    wait_until(lambda: len(seen["a"]) + len(seen["b"]) >= 40, timeout=15)
    assert sorted(seen["a"] + seen["b"]) == list(range(1, 41))  # each message once
    first.drain(timeout=5)
    second.drain(timeout=5)
    assert js.consumer_names(stream) == ["workers"]  # durable: it stays

    with js.subscribe_sync(f"{stream}.>", queue="readers", durable="readers") as reader:
        assert reader.durable == "readers"
        assert reader.next_msg(timeout=5).data == b"0"


def test_queue_refuses_what_would_not_be_shared(js: syncmsg.JetStream, stream: str) -> None:
    with pytest.raises(ValueError, match="would name two consumers"):
        js.subscribe(f"{stream}.>", print, queue="workers", durable="billing")
    with pytest.raises(syncmsg.InvalidSubjectError):
        js.subscribe(f"{stream}.>", print, queue="billing.workers")
    with pytest.raises(ValueError, match="ordered"):
        js.subscribe(f"{stream}.>", print, queue="workers", ordered_consumer=True)
    with pytest.raises(ValueError, match="ordered"):
        js.subscribe_sync(f"{stream}.>", queue="workers", ordered_consumer=True)
    assert js.consumer_names(stream) == []

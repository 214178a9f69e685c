"""Priority groups (nats-server 2.11) against a real nats-server: a pinned client gets every
message of its group, unpin and a dead pinned worker hand the pin on, overflow members pull
only over a backlog; the settings that cannot work are refused before the server sees them."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _js_helpers import unique, wait_until

import syncmsg
from syncmsg.jetstream import ApiErrorCode, ConsumerConfig, PriorityPolicy, StreamSpec
from syncmsg.jetstream._options import priority_settings
from syncmsg.jetstream._pull import PullGroup

_CHILD = Path(__file__).with_name("js_pinned_child.py")


@pytest.fixture
def js(client: syncmsg.Client) -> syncmsg.JetStream:
    return client.jetstream()


@pytest.fixture
def other(client_factory: Callable[..., syncmsg.Client]) -> syncmsg.JetStream:
    return client_factory(timeout=5.0).jetstream()


@pytest.fixture
def stream(js: syncmsg.JetStream) -> Iterator[str]:
    name = unique("PRI")
    js.ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"], storage="memory"))
    yield name
    with contextlib.suppress(syncmsg.SyncMsgError):
        js.delete_stream(name)


def test_one_client_is_pinned_and_unpin_hands_the_group_on(
    js: syncmsg.JetStream, other: syncmsg.JetStream, stream: str
) -> None:
    options = {"durable": "pinned", "priority_policy": "pinned_client", "group": "jobs"}
    first = js.pull_subscribe(f"{stream}.>", pinned_ttl=30, **options)  # type: ignore[arg-type]
    second = other.pull_subscribe(f"{stream}.>", pinned_ttl=30, **options)  # type: ignore[arg-type]
    info = js.consumer_info(stream, "pinned")
    assert info.config.priority_policy is PriorityPolicy.PINNED_CLIENT
    assert info.config.priority_groups == ("jobs",)
    assert info.config.pinned_ttl is not None and info.config.pinned_ttl.total_seconds() == 30
    assert info.raw["config"]["priority_timeout"] == 30 * 10**9
    for i in range(6):
        js.publish(f"{stream}.job", str(i))

    (msg,) = first.fetch(1, timeout=2)
    msg.ack()
    assert first.pin_id is not None and msg.headers and msg.headers["Nats-Pin-Id"] == first.pin_id
    assert second.fetch(1, timeout=0.5) == [] and second.pin_id is None  # waits while pinned
    assert [m.data for m in first.fetch(2, timeout=2)] == [b"1", b"2"]
    assert js.consumer_info(stream, "pinned").pinned_client("jobs") == first.pin_id

    js.unpin_consumer(stream, "pinned", "jobs")
    assert js.consumer_info(stream, "pinned").pinned_client("jobs") is None
    # The old pin is refused (and forgotten); the next client to pull is pinned.
    old = first.pin_id
    assert first.fetch(1, timeout=1) == [] and first.pin_id is None
    taken = second.fetch(1, timeout=2)
    assert len(taken) == 1 and second.pin_id not in (None, old)
    assert js.consumer_info(stream, "pinned").pinned_client("jobs") == second.pin_id

    with pytest.raises(syncmsg.JetStreamError) as caught:
        js.unpin_consumer(stream, "pinned", "other")
    assert caught.value.err_code == ApiErrorCode.INVALID_PRIORITY_GROUP
    with pytest.raises(ValueError, match="priority group name"):
        js.unpin_consumer(stream, "pinned", "no.dots")
    first.unsubscribe()
    second.unsubscribe()


def test_a_pinned_worker_that_dies_is_replaced(
    js: syncmsg.JetStream, stream: str, tmp_path: Path
) -> None:
    log = tmp_path / "child.log"
    child = subprocess.Popen(
        [sys.executable, str(_CHILD), js.client.config.servers[0], stream, "workers", "jobs",
         str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"

        def child_got() -> list[int]:
            if not log.exists():
                return []
            return [int(line.split()[1]) for line in log.read_text().splitlines()]

        js.publish(f"{stream}.job", "0")
        wait_until(lambda: child_got() == [1], timeout=10, what="the child pinned")
        pin = js.consumer_info(stream, "workers").pinned_client("jobs")
        assert pin is not None

        got: list[int] = []
        lock = threading.Lock()

        def handle(msg: syncmsg.Msg) -> None:
            with lock:
                got.append(msg.metadata.sequence_stream)

        mine = js.subscribe(
            f"{stream}.>",
            handle,
            durable="workers",
            priority_policy="pinned_client",
            group="jobs",
            pinned_ttl=2,
            ack_wait=3,
        )
        for i in range(1, 10):
            js.publish(f"{stream}.job", str(i))
        wait_until(lambda: len(child_got()) == 10, timeout=10, what="the pinned child")
        assert got == [] and mine.pin_id is None  # the other member waits

        child.kill()  # the pinned worker dies (no unsubscribe, no close)
        child.wait(10)
        for i in range(10, 20):
            js.publish(f"{stream}.job", str(i))
        # Within pinned_ttl (2 s) without a pull from the dead one, the server pins us.
        wait_until(lambda: len(got) >= 10, timeout=20, what="the new pinned worker")
        assert set(got) >= set(range(11, 21)) and not set(got) & set(child_got())
        assert mine.pin_id is not None and mine.pin_id != pin
        assert js.consumer_info(stream, "workers").pinned_client("jobs") == mine.pin_id
        assert mine.stats()["pinned"] is True and mine.group == "jobs"
        mine.drain(timeout=5)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)


def test_overflow_members_pull_only_over_a_backlog(
    js: syncmsg.JetStream, other: syncmsg.JetStream, stream: str
) -> None:
    options = {"durable": "overflow", "priority_policy": "overflow", "group": "spill"}
    main = js.pull_subscribe(f"{stream}.>", **options)  # type: ignore[arg-type]
    spare = other.pull_subscribe(f"{stream}.>", min_pending=5, **options)  # type: ignore[arg-type]
    assert js.consumer_info(stream, "overflow").config.priority_policy is PriorityPolicy.OVERFLOW
    for i in range(3):
        js.publish(f"{stream}.job", str(i))
    assert spare.fetch(1, timeout=0.5) == []  # a backlog of 3 is not 5
    assert spare.fetch(1, timeout=2, min_pending=3)[0].data == b"0"  # per fetch: 3 is enough
    for i in range(3, 8):
        js.publish(f"{stream}.job", str(i))
    assert [m.data for m in spare.fetch(1, timeout=2)] == [b"1"]  # 7 waiting now
    with_ack_pending = spare.fetch(1, timeout=2, min_pending=0, min_ack_pending=2)
    assert [m.data for m in with_ack_pending] == [b"2"]  # two delivered and not acked
    assert [m.data for m in main.fetch(10, timeout=2)][:1] == [b"3"]  # the main one: always
    with pytest.raises(ValueError, match="non-negative"):
        spare.fetch(1, min_pending=-1)
    plain = js.pull_subscribe(f"{stream}.>")  # a consumer without groups
    with pytest.raises(ValueError, match="need a priority group"):
        plain.fetch(1, min_pending=3)
    with pytest.raises(syncmsg.JetStreamError, match="Not a Overflow"):
        plain.fetch(1, timeout=1, group="spill", min_pending=3)  # the server says no
    plain.unsubscribe()
    main.unsubscribe()
    spare.unsubscribe()


def test_a_subscription_pulls_as_its_group(js: syncmsg.JetStream, stream: str) -> None:
    seen: list[bytes] = []
    sub = js.subscribe(
        f"{stream}.>",
        lambda msg: seen.append(msg.data),
        durable="grouped",
        priority_policy="overflow",
        priority_groups=["a", "b"],
        group="b",
    )
    assert sub.group == "b" and sub.pin_id is None
    assert js.consumer_info(stream, "grouped").config.priority_groups == ("a", "b")
    js.publish(f"{stream}.x", "hello")
    wait_until(lambda: seen == [b"hello"], timeout=10)
    sub.unsubscribe()
    with js.subscribe_sync(
        f"{stream}.>", durable="sync-pinned", priority_policy="pinned_client", group="g"
    ) as reader:
        assert reader.next_msg(timeout=5).data == b"hello"
        assert reader.pin_id is not None


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"group": "g"}, "need a priority_policy"),
        ({"min_pending": 3}, "need a priority_policy"),
        ({"priority_policy": "overflow"}, "needs a group"),
        ({"priority_policy": "bogus", "group": "g"}, "priority_policy 'bogus'"),
        ({"priority_policy": "prioritized", "group": "g"}, "subscriptions pull with"),
        ({"priority_policy": "overflow", "group": "a.b"}, "priority group name"),
        ({"priority_policy": "overflow", "priority_groups": ["a", "b"]}, "which of the"),
        ({"priority_policy": "overflow", "priority_groups": ["a"], "group": "b"}, "not one of"),
        ({"priority_policy": "overflow", "priority_groups": ["a", "a"]}, "duplicates"),
        ({"priority_policy": "overflow", "group": "g", "pinned_ttl": 5}, "is for priority_policy"),
        ({"priority_policy": "pinned_client", "group": "g", "min_pending": 1}, "is for"),
        ({"priority_policy": "pinned_client", "group": "g", "pinned_ttl": 0.5}, "one second"),
        ({"priority_policy": "overflow", "group": "g", "min_ack_pending": -1}, "non-negative"),
    ],
)
def test_priority_settings_that_cannot_work(settings: dict[str, object], words: str) -> None:
    given = {
        "group": None,
        "priority_policy": None,
        "priority_groups": None,
        "pinned_ttl": None,
        "min_pending": None,
        "min_ack_pending": None,
        **settings,
    }
    with pytest.raises(ValueError, match=words):
        priority_settings(**given)  # type: ignore[arg-type]


def test_priority_settings_and_the_pull_requests_they_make() -> None:
    fields, pull = priority_settings(
        group=None,
        priority_policy="pinned_client",
        priority_groups="jobs",
        pinned_ttl=10,
        min_pending=None,
        min_ack_pending=None,
    )
    assert fields["priority_groups"] == ("jobs",) and pull == PullGroup("jobs", pinned=True)
    config = ConsumerConfig(durable_name="x", **fields)
    assert config.to_api()["priority_timeout"] == 10 * 10**9
    assert pull.options("PIN") == b',"group":"jobs","id":"PIN"'
    over = PullGroup("spill", min_pending=5, min_ack_pending=2)
    assert over.options(None) == b',"group":"spill","min_pending":5,"min_ack_pending":2'
    assert priority_settings(
        group=None,
        priority_policy=None,
        priority_groups=None,
        pinned_ttl=None,
        min_pending=None,
        min_ack_pending=None,
    ) == ({}, None)


def test_consumer_config_reads_priority_groups_and_pauses() -> None:
    info = syncmsg.jetstream.ConsumerInfo.from_api(
        {
            "stream_name": "S",
            "name": "c",
            "config": {"durable_name": "c", "priority_policy": "pinned_client",
                       "priority_groups": ["jobs"], "priority_timeout": 120 * 10**9,
                       "pause_until": "2030-01-01T00:00:00Z"},
            "paused": True,
            "pause_remaining": 5 * 10**9,
            "priority_groups": [{"group": "jobs", "pinned_client_id": "P1",
                                 "pinned_ts": "2026-01-01T00:00:00Z"}],
        }
    )  # fmt: skip
    assert info.config.pinned_ttl is not None and info.config.pinned_ttl.total_seconds() == 120
    assert info.paused and info.pause_until is not None and info.pause_until.year == 2030
    assert info.pinned_client("jobs") == "P1" and info.pinned_client("other") is None
    assert ConsumerConfig(priority_timeout=3).pinned_ttl == ConsumerConfig(pinned_ttl=3).pinned_ttl
    with pytest.raises(ValueError):
        ConsumerConfig(priority_groups=["a b"])
    future = ConsumerConfig.from_api({"priority_policy": "some_future_policy"})
    assert (
        future.priority_policy is not None and future.priority_policy.value == "some_future_policy"
    )

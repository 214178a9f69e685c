"""Limits, counters, everyday API found missing by peer scenarios, and reply forgery."""

from __future__ import annotations

import itertools
import re
import threading

import pytest

import syncmsg
from syncmsg.jetstream import StreamSpec

pytestmark = pytest.mark.timeout(60)


# ----------------------------------------------------------------------------- 6. limits
def test_pending_msgs_limit_is_the_whole_limit_for_callbacks(client, other_client, wait_until):
    gate = threading.Event()
    sub = client.subscribe("limit.cb", lambda m: gate.wait(10), pending_msgs_limit=5)
    for i in range(12):
        other_client.publish("limit.cb", str(i))
    other_client.flush()
    wait_until(lambda: sub.delivered + sub.dropped == 12)
    # Five held in all, the one in the callback included: the sixth is the first dropped.
    assert (sub.delivered, sub.dropped) == (5, 7)
    gate.set()
    wait_until(lambda: sub.handled == 5)


def test_pending_msgs_limit_is_the_whole_limit_for_next_msg(client, other_client, wait_until):
    sub = client.subscribe_sync("limit.sync", pending_msgs_limit=5)
    for i in range(12):
        other_client.publish("limit.sync", str(i))
    other_client.flush()
    wait_until(lambda: sub.delivered + sub.dropped == 12)
    assert (sub.delivered, sub.dropped) == (5, 7)
    assert [sub.next_msg(timeout=1).data for _ in range(5)] == [b"0", b"1", b"2", b"3", b"4"]


def test_slow_consumer_errors_reach_the_error_callback(nats_url, other_client, wait_until):
    errors: list[BaseException] = []
    with syncmsg.connect(nats_url, error_callback=lambda e, m: errors.append(e)) as client:
        client.subscribe_sync("limit.report", pending_msgs_limit=2)
        for _ in range(10):
            other_client.publish("limit.report", b"x")
        other_client.flush()
        wait_until(lambda: errors)
        assert isinstance(errors[0], syncmsg.SlowConsumerError)
        assert errors[0].subject == "limit.report"


# ----------------------------------------------------------------------------- 7. counters
def test_bytes_are_counted_the_same_way_in_and_out(client, wait_until):
    sub = client.subscribe_sync("count.me")
    for _ in range(10):
        client.publish("count.me", b"x" * 100, headers={"Some-Header": "value"})
    client.flush()
    for _ in range(10):
        sub.next_msg(timeout=5)
    stats = client.stats()
    assert stats["out_bytes"] == 1000  # payload bytes, as nats-py and nats.go count them
    assert stats["in_bytes"] == 1000
    assert stats["out_msgs"] >= 10


# ----------------------------------------------------------------------------- 10. API
def test_server_facts(client, nats_server):
    info = client.server_info
    assert info["server_id"] and info["version"]
    assert client.max_payload == info["max_payload"]
    assert client.connected_url == f"nats://127.0.0.1:{nats_server.port}"
    assert client.servers == [f"nats://127.0.0.1:{nats_server.port}"]
    assert client.discovered_servers == []


def test_credentials_never_show_in_urls(nats_secure_factory):
    from syncmsg.testing import AccountsConfig

    accounts = AccountsConfig()
    user = accounts.account("APP").user("app", "s3cret-pw")
    server = nats_secure_factory(auth=accounts, jetstream=False)
    url = f"nats://app:s3cret-pw@127.0.0.1:{server.port}"
    with syncmsg.connect(url) as client:
        assert user.name == "app"
        for text in (client.connected_url, *client.servers, repr(client)):
            assert "s3cret-pw" not in str(text)


def test_a_cluster_reports_discovered_servers(nats_cluster_factory, wait_until):
    cluster = nats_cluster_factory(3)
    with syncmsg.connect(cluster.url_list[0]) as client:
        wait_until(lambda: len(client.discovered_servers) == 2, timeout=15)
        assert len(client.servers) == 3


def test_unsubscribe_after_n_messages(client, other_client, wait_until):
    got: list[bytes] = []
    sub = client.subscribe("auto.unsub", lambda m: got.append(m.data))
    sub.unsubscribe(limit=3)
    for i in range(10):
        other_client.publish("auto.unsub", str(i))
    other_client.flush()
    wait_until(lambda: len(got) == 3)
    wait_until(lambda: not sub.is_active)
    assert got == [b"0", b"1", b"2"]
    assert sub not in list(client.subscriptions)


def test_max_msgs_at_subscribe(client, other_client, wait_until):
    sub = client.subscribe_sync("auto.max", max_msgs=2)
    for i in range(5):
        other_client.publish("auto.max", str(i))
    other_client.flush()
    assert [sub.next_msg(timeout=5).data for _ in range(2)] == [b"0", b"1"]
    with pytest.raises(syncmsg.ConnectionClosedError):
        sub.next_msg(timeout=1)


def test_limits_are_checked(client):
    with pytest.raises(ValueError, match="max_msgs"):
        client.subscribe_sync("auto.bad", max_msgs=0)
    sub = client.subscribe_sync("auto.bad")
    with pytest.raises(ValueError, match="limit"):
        sub.unsubscribe(limit=-1)


# ----------------------------------------------------------------------------- 9. errors
def test_a_remote_error_keeps_the_exception_type(client):
    def handler(msg: syncmsg.Msg) -> bytes:
        return {}["n"]  # type: ignore[no-any-return]

    client.serve("remote.keyerror", handler)
    with pytest.raises(syncmsg.RemoteError) as info:
        client.request("remote.keyerror", timeout=5)
    assert info.value.description == "KeyError: 'n'"
    assert info.value.code == "500"


# ----------------------------------------------------------------------------- 15. forgery
_TOKEN = re.compile(r"^[0-9a-f]{16}$")


def test_reply_subjects_cannot_be_guessed(client, other_client):
    seen: list[str] = []

    def record(msg: syncmsg.Msg) -> None:
        seen.append(msg.reply)
        msg.respond(b"real")

    other_client.subscribe("guess.me", record)
    for _ in range(20):
        assert client.request("guess.me", timeout=5).data == b"real"
    prefixes = {reply.rpartition(".")[0] for reply in seen}
    tokens = [reply.rpartition(".")[2] for reply in seen]
    assert len(prefixes) == 1  # one wildcard subscription serves every request
    assert all(_TOKEN.match(token) for token in tokens)
    assert len(set(tokens)) == 20
    # Not a counter in disguise. (Not "no token is all digits": a random 16-hex token is
    # all digits once in 1,800, so that check failed about one run in 90.)
    values = [int(token, 16) for token in tokens]
    assert len({later - earlier for earlier, later in itertools.pairwise(values)}) > 1


def test_a_forged_reply_to_a_predicted_subject_is_not_taken(client, other_client):
    """A responder that has seen one reply subject answers the next one first: with a
    sequential numbering it would win; with random tokens its forgery goes nowhere."""
    seen: list[str] = []
    gate = threading.Event()

    def record_then_answer(msg: syncmsg.Msg) -> None:
        seen.append(msg.reply)
        prefix, _, token = msg.reply.rpartition(".")
        for guess in (str(int(token, 16) + 1) if token.isalnum() else "", "1", "2", "3"):
            other_client.publish(f"{prefix}.{guess}", b"forged")
        gate.wait(0.2)
        msg.respond(b"real")

    other_client.subscribe("forge.me", record_then_answer, workers=2)
    answers = [client.request("forge.me", timeout=5).data for _ in range(5)]
    assert answers == [b"real"] * 5


def test_jetstream_acks_use_unguessable_replies(client, other_client, wait_until):
    stream = "FORGEJS"
    js = client.jetstream()
    js.ensure_stream(StreamSpec(name=stream, subjects=["forgejs.>"]))
    try:
        replies: list[str] = []
        other_client.subscribe("forgejs.>", lambda m: replies.append(m.reply))
        js.publish("forgejs.a", b"1")
        js.publish_async("forgejs.b", b"2").result(5)
        wait_until(lambda: len(replies) == 2)
        assert all(_TOKEN.match(reply.rpartition(".")[2]) for reply in replies)
    finally:
        js.delete_stream(stream)

"""The outbox on a real PostgreSQL server: concurrent relays claim rows with
``SELECT ... FOR UPDATE SKIP LOCKED``, never send a row twice, and keep each key's order."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections, transaction
from django.test import Client as DjangoClient
from django.test import override_settings

import syncmsg
from syncmsg.django import outbox
from syncmsg.django.outbox import OutboxMessage, Relay, backlog
from syncmsg.testing import wait_until

PG = "pg"


@pytest.fixture
def pg_outbox(django_nats: Any, pg_database: str) -> Iterator[Any]:
    from django.conf import settings

    syncmsg_settings = {
        **settings.SYNCMSG,
        "streams": [{"name": "ORDERS", "subjects": ["orders.>"]}],
        "event_streams": False,
        "outbox": {
            "database": PG,
            "batch_size": 100,
            "poll_interval": 0.05,
            "backoff_initial": 0.05,
            "backoff_max": 0.2,
            "health_max_backlog": 10,
        },
    }
    with override_settings(SYNCMSG=syncmsg_settings):
        yield django_nats


def _stored(server: Any) -> list[syncmsg.Msg]:
    with syncmsg.connect(server.url, timeout=5.0) as client:
        js = client.jetstream()
        state = js.stream_info("ORDERS").state
        return [js.get_msg("ORDERS", seq) for seq in range(state.first_seq, state.last_seq + 1)]


def _write(count: int, keys: int) -> None:
    with transaction.atomic(using=PG):
        for i in range(count):
            key = None if i % 10 == 9 else f"k{i % keys}"
            outbox.publish("orders.created", {"i": i, "key": key}, key=key)


def test_auto_mode_is_concurrent_on_postgresql(pg_outbox: Any) -> None:
    relay = Relay()
    assert relay.mode == "concurrent"
    _write(5, keys=2)
    assert relay.publish_pending(timeout=30) == 5
    assert relay.stats()["mode"] == "concurrent" and "lease" not in relay.stats()
    assert OutboxMessage.objects.using(PG).filter(published__isnull=True).count() == 0


def test_two_relays_share_the_rows_never_twice_and_keep_each_keys_order(pg_outbox: Any) -> None:
    total = 3000
    _write(total, keys=40)
    relays = [Relay(name="a"), Relay(name="b")]
    for relay in relays:
        relay.start()
    try:
        wait_until(lambda: backlog().pending == 0, 120, what="every row published")
    finally:
        for relay in relays:
            assert relay.stop(15)
    published = [relay.stats()["published"] for relay in relays]
    assert sum(published) == total and all(published), published  # both took rows
    assert sum(relay.stats()["duplicates"] for relay in relays) == 0  # no row sent twice

    stored = _stored(pg_outbox)
    assert len(stored) == total
    ids = [m.headers["Nats-Msg-Id"] for m in stored]
    assert len(set(ids)) == total
    assert set(ids) == set(OutboxMessage.objects.using(PG).values_list("msg_id", flat=True))
    by_key: dict[str, list[int]] = {}
    for msg in stored:
        body = msg.json()
        if body["key"] is not None:
            by_key.setdefault(body["key"], []).append(body["i"])
    assert set(by_key) == {f"k{i % 40}" for i in range(total) if i % 10 != 9}
    for key, numbers in by_key.items():
        assert numbers == sorted(numbers), key  # written order, whichever relay sent them


def test_a_row_locked_elsewhere_holds_back_its_key(pg_outbox: Any) -> None:
    with transaction.atomic(using=PG):
        first = outbox.publish("orders.a", {"n": 1}, key="k1")
        outbox.publish("orders.b", {"n": 2}, key="k1")
        outbox.publish("orders.c", {"n": 3}, key="k2")
        outbox.publish("orders.d", {"n": 4})
    locked = threading.Event()
    release = threading.Event()

    def other_relay() -> None:  # holds the first row as a relay in mid-round would
        try:
            with transaction.atomic(using=PG):
                OutboxMessage.objects.using(PG).select_for_update().get(pk=first.pk)
                locked.set()
                release.wait(30)
        finally:
            connections[PG].close()

    thread = threading.Thread(target=other_relay)
    thread.start()
    try:
        assert locked.wait(10)
        relay = Relay()
        assert relay.run_once() == 2  # k2 and the row without a key; not k1's second
        assert [m.json()["n"] for m in _stored(pg_outbox)] == [3, 4]
    finally:
        release.set()
        thread.join(10)
    assert relay.publish_pending(timeout=30) == 2
    assert [m.json()["n"] for m in _stored(pg_outbox)] == [3, 4, 1, 2]


def test_health_counts_the_postgresql_backlog(pg_outbox: Any) -> None:
    _write(12, keys=3)
    response = DjangoClient().get("/health/nats/")
    assert response.status_code == 503
    assert response.json()["outbox"]["pending"] == 12
    assert "health_max_backlog" in response.json()["outbox"]["error"]
    Relay().publish_pending(timeout=30)
    assert DjangoClient().get("/health/nats/").status_code == 200

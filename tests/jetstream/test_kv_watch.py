"""Watching key-value buckets against a real nats-server: callbacks on worker threads in
revision order, the iterator form with its one None, the options, and a watcher that goes
on without gaps or repeats across a reconnect and a server restart."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from _js_helpers import unique, wait_until
from _proxy import Proxy

import syncmsg
from syncmsg.jetstream import Watcher
from syncmsg.jetstream.kv import Entry, KeyValue, KeyWatcher, Operation


@pytest.fixture
def js(client: syncmsg.Client) -> syncmsg.JetStream:
    return client.jetstream()


@pytest.fixture
def kv(js: syncmsg.JetStream) -> Iterator[KeyValue]:
    name = unique("W")
    bucket = js.create_key_value(bucket=name, history=10, storage="memory")
    yield bucket
    with contextlib.suppress(syncmsg.SyncMsgError):
        js.delete_key_value(name)


class Seen:
    """Entries a callback got, with the threads it ran on."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, entry: Entry) -> None:
        with self.lock:
            self.entries.append(entry)
            self.threads.add(threading.current_thread().name)

    def count(self) -> int:
        with self.lock:
            return len(self.entries)

    def keys(self) -> list[tuple[str, int]]:
        with self.lock:
            return [(e.key, e.revision) for e in self.entries]


def test_a_callback_gets_latest_values_then_changes_in_order(kv: KeyValue) -> None:
    kv.put("a", "1")
    kv.put("b", "1")
    kv.put("a", "2")
    seen = Seen()
    with kv.watch(">", seen) as watcher:
        assert isinstance(watcher, KeyWatcher) and isinstance(watcher, Watcher)
        assert watcher.wait_caught_up(10) and watcher.caught_up
        assert watcher.initial_pending == 2
        assert seen.keys() == [("b", 2), ("a", 3)]  # the latest of each key
        for n in range(20):
            kv.put(f"k{n % 3}", str(n))
        kv.delete("a")
        wait_until(lambda: seen.count() == 23, 10)
        revisions = [e.revision for e in seen.entries]
        assert revisions == sorted(revisions) and len(set(revisions)) == 23
        assert seen.entries[-1].operation is Operation.DEL
        assert len(seen.threads) == 1
        (thread,) = seen.threads
        assert thread.startswith("syncmsg-js-") and "loop" not in thread
        with pytest.raises(TypeError, match="callback"):
            watcher.updates()
    assert watcher.stopped
    assert "stopped" in repr(watcher)


def test_the_iterator_yields_none_once_after_the_initial_values(kv: KeyValue) -> None:
    kv.put("x.1", "a")
    kv.put("x.2", "b")
    watcher = kv.watch("x.>")
    first, second, marker = watcher.updates(), watcher.updates(), watcher.updates()
    assert (first.key, second.key, marker) == ("x.1", "x.2", None)
    assert first.delta == 1 and second.delta == 0
    with pytest.raises(syncmsg.TimeoutError):
        watcher.updates(timeout=0.2)
    kv.put("x.1", "c")
    kv.put("y", "not watched")
    update = watcher.updates(timeout=5)
    assert (update.key, update.value, update.delta) == ("x.1", b"c", 0)
    threading.Timer(0.3, watcher.stop).start()
    assert list(watcher) == []  # iteration ends when the watcher stops
    with pytest.raises(syncmsg.ConnectionClosedError):
        watcher.updates(timeout=1)
    watcher.stop()  # idempotent


def test_an_empty_bucket_gives_the_none_at_once(kv: KeyValue) -> None:
    with kv.watchall() as watcher:
        assert watcher.initial_pending == 0 and watcher.caught_up
        assert watcher.updates(timeout=1) is None
        kv.put("k", "v")
        items = []
        for item in watcher:
            items.append(item)
            break
        assert items[0].key == "k"


def test_watch_options(kv: KeyValue) -> None:
    kv.put("a", "1")
    kv.put("a", "2")
    kv.put("b", "1")
    kv.delete("b")
    kv.put("c", "1")

    def initial(**options: Any) -> list[tuple[str, bytes, str]]:
        with kv.watch(">", **options) as watcher:
            got = []
            while (entry := watcher.updates(timeout=5)) is not None:
                got.append((entry.key, entry.value, str(entry.operation)))
            return got

    assert initial() == [("a", b"2", "PUT"), ("b", b"", "DEL"), ("c", b"1", "PUT")]
    assert initial(ignore_deletes=True) == [("a", b"2", "PUT"), ("c", b"1", "PUT")]
    assert initial(include_history=True) == [
        ("a", b"1", "PUT"),
        ("a", b"2", "PUT"),
        ("b", b"1", "PUT"),
        ("b", b"", "DEL"),
        ("c", b"1", "PUT"),
    ]
    assert initial(meta_only=True) == [("a", b"", "PUT"), ("b", b"", "DEL"), ("c", b"", "PUT")]
    assert initial(updates_only=True) == []
    with kv.watch(["a", "c"]) as several:
        assert [several.updates().key, several.updates().key, several.updates()] == ["a", "c", None]
    with pytest.raises(ValueError):
        kv.watch(updates_only=True, include_history=True)
    with pytest.raises(TypeError):
        kv.watch(">", "not callable")  # type: ignore[arg-type]


def test_updates_only_starts_with_the_none(kv: KeyValue) -> None:
    kv.put("old", "1")
    with kv.watch(updates_only=True) as watcher:
        assert watcher.updates(timeout=1) is None
        kv.put("new", "2")
        entry = watcher.updates(timeout=5)
        assert entry.key == "new" and entry.delta == 0


def test_a_failing_callback_is_reported_and_the_watch_goes_on(kv: KeyValue) -> None:
    errors: list[BaseException] = []
    seen = Seen()

    def callback(entry: Entry) -> None:
        if entry.key == "bad":
            raise RuntimeError("boom")
        seen(entry)

    with kv.watch(">", callback, error_callback=lambda exc, msg: errors.append(exc)):
        kv.put("bad", "1")
        kv.put("good", "2")
        wait_until(lambda: seen.count() == 1 and errors, 10)
    assert isinstance(errors[0], RuntimeError) and seen.entries[0].key == "good"


def test_a_callback_may_stop_its_own_watcher(kv: KeyValue) -> None:
    stopped = threading.Event()
    holder: list[KeyWatcher] = []

    def callback(entry: Entry) -> None:
        holder[0].stop()
        stopped.set()

    holder.append(kv.watch(">", callback))
    kv.put("k", "v")
    assert stopped.wait(10)
    wait_until(lambda: holder[0].stopped, 10)


def test_server_markers_reach_watchers(js: syncmsg.JetStream) -> None:
    name = unique("M")
    kv = js.create_key_value(bucket=name, storage="memory", limit_marker_ttl=5)
    try:
        seen = Seen()
        with kv.watch(">", seen) as watcher:
            assert watcher.wait_caught_up(5)
            kv.create("temp", "v", ttl=1)
            wait_until(lambda: seen.count() == 2, 15, what="the expiry marker")
        assert [e.operation for e in seen.entries] == [Operation.PUT, Operation.PURGE]
        assert seen.entries[1].key == "temp"
    finally:
        js.delete_key_value(name)


def _collect(watcher: KeyWatcher, count: int, timeout: float) -> list[int]:
    revisions = []
    while len(revisions) < count:
        entry = watcher.updates(timeout=timeout)
        if entry is not None:
            revisions.append(entry.revision)
    return revisions


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_watchers_across_a_server_restart(nats_server_factory: Any) -> None:
    server = nats_server_factory()
    with syncmsg.connect(server.url, timeout=5.0, reconnect_wait=0.1) as client:
        js = client.jetstream()
        kv = js.create_key_value(bucket="RESTART", history=64)  # file storage: survives
        seen = Seen()
        callback_watcher = kv.watch(">", seen, include_history=True)
        iterated = kv.watch(">", include_history=True)
        updates = kv.watch(updates_only=True)
        assert updates.updates(timeout=5) is None
        for n in range(50):
            kv.put(f"k{n % 7}", str(n))
        assert _collect(iterated, 20, 10) == list(range(1, 21))
        server.restart()  # the watchers' memory consumers are gone; the bucket stays
        for n in range(50, 100):
            kv.put(f"k{n % 7}", str(n))
        assert _collect(iterated, 80, 15) == list(range(21, 101))
        assert _collect(updates, 100, 15) == list(range(1, 101))
        wait_until(lambda: seen.count() == 100, 20)
        assert [e.revision for e in seen.entries] == list(range(1, 101))
        assert iterated.resets >= 1 and callback_watcher.resets >= 1
        with pytest.raises(syncmsg.TimeoutError):
            iterated.updates(timeout=0.5)  # nothing repeated
        for watcher in (callback_watcher, iterated, updates):
            watcher.stop()
        assert js.consumer_names("KV_RESTART") == []


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_watchers_across_a_reconnect(nats_server_factory: Any) -> None:
    # The server stays up (and keeps the consumers); the watching client loses its
    # connection while another client writes, then comes back.
    server = nats_server_factory()
    with (
        Proxy(server.port) as proxy,
        syncmsg.connect(proxy.url, timeout=5.0, reconnect_wait=0.1) as watching,
        syncmsg.connect(server.url, timeout=5.0) as writing,
    ):
        kv = watching.jetstream().create_key_value(bucket="RECONNECT", storage="memory", history=64)
        writer = writing.jetstream().key_value("RECONNECT")
        seen = Seen()
        callback_watcher = kv.watch(">", seen)
        updates = kv.watch(updates_only=True)  # has seen nothing when the link goes
        assert updates.updates(timeout=5) is None
        for n in range(30):
            writer.put(f"k{n % 5}", str(n))
        wait_until(lambda: seen.count() == 30, 10)
        reconnects = watching.reconnects
        proxy.cut(refuse=True)
        wait_until(lambda: not watching.is_connected, 10)
        for n in range(30, 60):
            writer.put(f"k{n % 5}", str(n))
        proxy.accept_again()
        wait_until(lambda: watching.reconnects > reconnects, 15)
        for n in range(60, 90):
            writer.put(f"k{n % 5}", str(n))
        wait_until(lambda: seen.count() == 90, 20)
        assert [e.revision for e in seen.entries] == list(range(1, 91))
        assert _collect(updates, 90, 15) == list(range(1, 91))
        assert callback_watcher.resets >= 1 and updates.resets >= 1
        callback_watcher.stop()
        updates.stop()


def test_watch_timeouts_are_checked(kv: KeyValue) -> None:
    with kv.watchall() as watcher:
        with pytest.raises(ValueError):
            watcher.updates(timeout=0)
        with pytest.raises(ValueError):
            watcher.updates(timeout=-1)


def test_watchers_survive_the_client_closing(nats_url: str) -> None:
    client = syncmsg.connect(nats_url)
    js = client.jetstream()
    name = unique("C")
    kv = js.create_key_value(bucket=name, storage="memory")
    watcher = kv.watch(">", lambda entry: None)
    iterated = kv.watchall()
    client.close()
    assert watcher.stopped and iterated.stopped
    assert list(iterated) == []
    with syncmsg.connect(nats_url) as other:
        other.jetstream().delete_key_value(name)


def test_created_is_the_server_time(kv: KeyValue) -> None:
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    kv.put("t", "v")
    with kv.watch("t") as watcher:
        entry = watcher.updates()
    assert entry.created is not None and entry.created > before
    stored = kv.get("t").created
    assert stored is not None
    assert abs(entry.created - stored) <= dt.timedelta(microseconds=1)  # ns, rounded apart


def test_initial_values_that_vanish_before_delivery_still_end_the_backlog(
    js: syncmsg.JetStream, kv: KeyValue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consumer counted a value that expired (or was purged) before it was delivered:
    the server's idle heartbeat ends the initial values instead of a wait for ever."""
    kv.put("gone", "soon")
    kv.put("stays", "v")
    create = js._create_consumer

    def create_then_expire(*args: Any, **kwargs: Any) -> Any:
        info = create(*args, **kwargs)  # it counts the value ...
        js.purge_stream(f"KV_{kv.bucket}", subject=f"$KV.{kv.bucket}.gone")  # ... now gone
        return info

    monkeypatch.setattr(js, "_create_consumer", create_then_expire)
    with kv.watch("gone") as watcher:
        assert watcher.initial_pending == 1
        assert watcher.updates(timeout=10) is None  # after a heartbeat (2 s), not never
    with pytest.raises(syncmsg.KeyNotFoundError):
        kv.history("gone", timeout=10)
    monkeypatch.undo()
    seen: list[Entry] = []
    monkeypatch.setattr(js, "_create_consumer", create_then_expire)
    kv.put("gone", "again")
    with kv.watch("gone", seen.append) as callback_watcher:
        assert callback_watcher.wait_caught_up(timeout=10)
    assert seen == []

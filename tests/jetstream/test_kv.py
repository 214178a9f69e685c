"""Key-value buckets against a real nats-server: the bucket's layout, reads and writes,
compare-and-set, deletes and purges, history, keys, TTLs and limit markers, errors."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _js_helpers import unique, wait_until
from pydantic import BaseModel

import syncmsg
from syncmsg.jetstream import ApiErrorCode, StreamSource
from syncmsg.jetstream.kv import Entry, KeyValue, KeyValueConfig, KeyValueStatus, Operation


@pytest.fixture
def js(client: syncmsg.Client) -> syncmsg.JetStream:
    return client.jetstream()


@pytest.fixture
def make_bucket(js: syncmsg.JetStream) -> Iterator[Callable[..., KeyValue]]:
    made: list[str] = []

    def make(**options: Any) -> KeyValue:
        name = options.pop("bucket", None) or unique("B")
        options.setdefault("storage", "memory")
        kv = js.create_key_value(bucket=name, **options)
        made.append(name)
        return kv

    yield make
    for name in reversed(made):
        with contextlib.suppress(syncmsg.SyncMsgError):
            js.delete_key_value(name)


@pytest.fixture
def kv(make_bucket: Callable[..., KeyValue]) -> KeyValue:
    return make_bucket(history=5)


def test_a_bucket_is_the_standard_stream(js: syncmsg.JetStream, make_bucket: Any) -> None:
    kv = make_bucket(
        history=10,
        ttl=dt.timedelta(hours=1),
        max_value_size=1024,
        max_bytes=1 << 20,
        description="settings",
        storage="file",
    )
    config = js.stream_info(f"KV_{kv.bucket}").raw["config"]
    assert config["subjects"] == [f"$KV.{kv.bucket}.>"]
    assert config["max_msgs_per_subject"] == 10
    assert config["max_age"] == 3600 * 10**9
    assert config["max_msg_size"] == 1024 and config["max_bytes"] == 1 << 20
    assert config["discard"] == "new" and config["allow_rollup_hdrs"] is True
    assert config["deny_delete"] is True and config["allow_direct"] is True
    assert config["duplicate_window"] == 120 * 10**9
    assert config["storage"] == "file" and config["description"] == "settings"
    assert not config.get("allow_msg_ttl")
    short = make_bucket(ttl=30)
    assert js.stream_info(f"KV_{short.bucket}").raw["config"]["duplicate_window"] == 30 * 10**9


def test_put_get_and_the_entry(kv: KeyValue) -> None:
    revision = kv.put("config.db.url", "postgres://db/app")
    entry = kv.get("config.db.url")
    assert isinstance(entry, Entry)
    assert (entry.bucket, entry.key, entry.revision) == (kv.bucket, "config.db.url", revision)
    assert entry.value == b"postgres://db/app" and entry.text() == "postgres://db/app"
    assert entry.operation == "PUT" and entry.operation is Operation.PUT
    assert entry.delta is None and isinstance(entry.created, dt.datetime)
    assert entry.created.tzinfo is not None


class Flags(BaseModel):
    dark_mode: bool
    beta: list[str] = []


def test_values_take_what_publish_takes(kv: KeyValue) -> None:
    kv.put("json", {"a": [1, 2]})
    kv.put("list", [1, "x"])
    kv.put("bytes", b"\x00\xff")
    kv.put("model", Flags(dark_mode=True, beta=["alice"]))
    kv.put("empty", b"")
    assert kv.get("json").json() == {"a": [1, 2]}
    assert kv.get("list").json() == [1, "x"]
    assert kv.get("bytes").value == b"\x00\xff"
    assert kv.get("model").parse(Flags) == Flags(dark_mode=True, beta=["alice"])
    assert kv.get("empty").value == b""
    with pytest.raises(syncmsg.PayloadError):
        kv.get("bytes").json()
    with pytest.raises(syncmsg.PayloadError):
        kv.put("bad", {"nan": float("nan")})


def test_get_at_a_revision(kv: KeyValue) -> None:
    first = kv.put("k", "1")
    kv.put("other", "x")
    second = kv.put("k", "2")
    assert kv.get("k", revision=first).value == b"1"
    assert kv.get("k", revision=second).value == b"2"
    with pytest.raises(syncmsg.KeyNotFoundError, match="revision"):
        kv.get("k", revision=first + 1)  # that revision is another key's
    with pytest.raises(syncmsg.KeyNotFoundError):
        kv.get("k", revision=999)
    with pytest.raises(ValueError):
        kv.get("k", revision=0)


def test_missing_and_deleted_keys(kv: KeyValue) -> None:
    with pytest.raises(syncmsg.KeyNotFoundError) as missing:
        kv.get("nope")
    assert isinstance(missing.value, KeyError) and isinstance(missing.value, syncmsg.SyncMsgError)
    assert missing.value.bucket == kv.bucket and missing.value.key == "nope"
    assert str(missing.value) == f"key not found (bucket {kv.bucket!r}, key 'nope')"
    with pytest.raises(KeyError):  # reads naturally
        kv.get("nope")
    kv.put("gone", "v")
    marker = kv.delete("gone")
    with pytest.raises(syncmsg.KeyDeletedError) as deleted:
        kv.get("gone")
    assert isinstance(deleted.value, syncmsg.KeyNotFoundError)
    assert deleted.value.operation == "DEL" and deleted.value.revision == marker
    assert deleted.value.entry.operation is Operation.DEL
    kv.purge("gone")
    with pytest.raises(syncmsg.KeyDeletedError) as purged:
        kv.get("gone")
    assert purged.value.operation == "PURGE"


def test_create_only_if_absent(kv: KeyValue) -> None:
    first = kv.create("lock", "a")
    with pytest.raises(syncmsg.KeyExistsError) as exists:
        kv.create("lock", "b")
    assert isinstance(exists.value, syncmsg.KeyWrongLastSequenceError)
    assert isinstance(exists.value, syncmsg.WrongLastSequenceError)
    assert f"revision {first}" in str(exists.value)
    kv.delete("lock")
    again = kv.create("lock", "c")  # over a delete marker
    assert kv.get("lock").value == b"c" and again > first
    kv.purge("lock")
    assert kv.create("lock", "d") > again  # over a purge marker


def test_update_is_a_compare_and_set(kv: KeyValue) -> None:
    revision = kv.put("counter", "1")
    revision = kv.update("counter", "2", last=revision)
    with pytest.raises(syncmsg.KeyWrongLastSequenceError) as lost:
        kv.update("counter", "3", last=revision - 1)
    assert lost.value.err_code == ApiErrorCode.WRONG_LAST_SEQUENCE
    assert lost.value.key == "counter" and lost.value.bucket == kv.bucket
    assert kv.update("counter", "3", revision) > revision  # last may be positional
    with pytest.raises(syncmsg.KeyWrongLastSequenceError):
        kv.update("fresh", "x", last=5)
    assert kv.update("fresh", "x", last=0)  # 0: only if the key has no entry


def test_racing_writers_one_wins_each_round(kv: KeyValue) -> None:
    kv.put("n", "0")
    wins: list[int] = []
    lock = threading.Lock()

    def increment() -> None:
        for _ in range(10):
            while True:
                entry = kv.get("n")
                try:
                    kv.update("n", str(int(entry.text()) + 1), last=entry.revision)
                except syncmsg.KeyWrongLastSequenceError:
                    continue
                with lock:
                    wins.append(1)
                break

    threads = [threading.Thread(target=increment) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert kv.get("n").text() == "40" and len(wins) == 40


def test_delete_with_last(kv: KeyValue) -> None:
    revision = kv.put("k", "v")
    with pytest.raises(syncmsg.KeyWrongLastSequenceError):
        kv.delete("k", last=revision + 10)
    kv.get("k")
    assert kv.delete("k", last=revision) > revision
    with pytest.raises(ValueError):
        kv.delete("k", last=0)


def test_history_keeps_what_the_bucket_allows(make_bucket: Any) -> None:
    kv = make_bucket(history=3)
    for value in ("1", "2", "3", "4"):
        kv.put("k", value)
    kv.delete("k")
    history = kv.history("k")
    assert [(e.value, e.operation) for e in history] == [
        (b"3", Operation.PUT),
        (b"4", Operation.PUT),
        (b"", Operation.DEL),
    ]
    assert [e.delta for e in history] == [2, 1, 0]
    assert history == sorted(history, key=lambda e: e.revision)
    kv.purge("k")
    assert [e.operation for e in kv.history("k")] == [Operation.PURGE]
    with pytest.raises(syncmsg.KeyNotFoundError):
        kv.history("never")


def test_keys_leave_out_deleted_ones(kv: KeyValue) -> None:
    assert kv.keys() == []
    for key in ("a.1", "a.2", "b.1", "c"):
        kv.put(key, "v")
    kv.put("a.1", "again")
    kv.delete("b.1")
    assert kv.keys() == ["a.1", "a.2", "c"]
    assert kv.keys("a.*") == ["a.1", "a.2"]
    assert kv.keys(["a.>", "c"]) == ["a.1", "a.2", "c"]
    assert kv.keys("zzz.>") == []


def test_purge_deletes(kv: KeyValue, js: syncmsg.JetStream) -> None:
    for key in ("old", "new", "kept"):
        kv.put(key, "v1")
        kv.put(key, "v2")
    kv.delete("old")
    kv.delete("new")
    assert kv.purge_deletes() == 2  # markers younger than 30 minutes stay, history goes
    assert [e.operation for e in kv.history("new")] == [Operation.DEL]
    assert kv.purge_deletes(older_than=0) == 2  # every marker goes
    with pytest.raises(syncmsg.KeyNotFoundError):
        kv.history("old")
    assert kv.keys() == ["kept"] and len(kv.history("kept")) == 2
    assert kv.status().values == 2


def test_status_and_listing_buckets(js: syncmsg.JetStream, make_bucket: Any) -> None:
    kv = make_bucket(history=7, ttl=60, description="d", compression=True)
    kv.put("a", "1")
    status = kv.status()
    assert isinstance(status, KeyValueStatus)
    assert (status.bucket, status.values, status.history) == (kv.bucket, 1, 7)
    assert status.ttl == dt.timedelta(minutes=1) and status.bytes > 0
    assert status.backing_store == "JetStream" and status.is_compressed
    assert status.description == "d" and status.storage == "memory" and status.replicas == 1
    assert status.limit_marker_ttl is None
    assert status.config.history == 7 and status.config.ttl == dt.timedelta(minutes=1)
    assert repr(status) == f"<KeyValueStatus {kv.bucket!r} values=1 history=7>"
    other = make_bucket()
    js.ensure_stream(syncmsg.StreamSpec(name=unique("NOTKV"), subjects=[unique("x") + ".>"]))
    names = [s.bucket for s in js.key_value_buckets()]
    assert kv.bucket in names and other.bucket in names
    assert names == sorted(names) and all(not n.startswith("NOTKV") for n in names)


def test_binding_and_deleting_buckets(js: syncmsg.JetStream, make_bucket: Any) -> None:
    kv = make_bucket()
    kv.put("a", "1")
    again = js.key_value(kv.bucket)
    assert again.get("a").value == b"1" and repr(again) == f"<syncmsg.KeyValue {kv.bucket!r}>"
    same = js.create_key_value(bucket=kv.bucket, storage="memory")  # identical: fine
    assert same.get("a").value == b"1"
    with pytest.raises(syncmsg.JetStreamError, match="another configuration") as differs:
        js.create_key_value(bucket=kv.bucket, history=9, storage="memory")
    assert differs.value.err_code == ApiErrorCode.STREAM_NAME_IN_USE
    js.delete_key_value(kv.bucket)
    with pytest.raises(syncmsg.BucketNotFoundError) as missing:
        js.key_value(kv.bucket)
    assert isinstance(missing.value, syncmsg.StreamNotFoundError)
    assert kv.bucket in str(missing.value)
    with pytest.raises(syncmsg.BucketNotFoundError):
        js.delete_key_value(kv.bucket)
    with pytest.raises(syncmsg.BucketNotFoundError):
        kv.status()
    with pytest.raises(syncmsg.BucketNotFoundError):
        kv.get("a")
    name = unique("S")
    js.ensure_stream(syncmsg.StreamSpec(name=f"KV_{name}", subjects=[f"{name}.>"]))
    with pytest.raises(syncmsg.JetStreamError, match="not a key-value bucket"):
        js.key_value(name)
    js.delete_stream(f"KV_{name}")


@pytest.mark.parametrize(
    "key", ["", ".a", "a.", "a..b", "a b", "a*", ">", "ä", "a\r\nb", None, 5, "a:b"]
)
def test_invalid_keys_never_reach_the_wire(kv: KeyValue, key: Any) -> None:
    for call in (
        lambda: kv.get(key),
        lambda: kv.put(key, "v"),
        lambda: kv.create(key, "v"),
        lambda: kv.update(key, "v", last=1),
        lambda: kv.delete(key),
        lambda: kv.purge(key),
        lambda: kv.history(key),
    ):
        with pytest.raises(syncmsg.InvalidKeyError) as refused:
            call()
        assert isinstance(refused.value, ValueError)
        assert isinstance(refused.value, syncmsg.InvalidSubjectError)
    assert kv.status().values == 0


@pytest.mark.parametrize("pattern", ["", "a.", ".a", "a..b", "a*", "a.>.b", "a>", "ä"])
def test_invalid_watch_patterns(kv: KeyValue, pattern: str) -> None:
    with pytest.raises(syncmsg.InvalidKeyError):
        kv.watch(pattern)


def test_valid_keys(kv: KeyValue) -> None:
    for key in ("a", "A-z_0=9", "users/42", "a.b.c", "_kv_internal", "x" * 200):
        kv.put(key, key)
        assert kv.get(key).text() == key


@pytest.mark.parametrize("bucket", ["", "a.b", "a b", "a*", "ä", "a/b", 5])
def test_invalid_bucket_names(js: syncmsg.JetStream, bucket: Any) -> None:
    with pytest.raises(syncmsg.InvalidBucketNameError):
        js.create_key_value(bucket=bucket)
    with pytest.raises(syncmsg.InvalidBucketNameError):
        js.key_value(bucket)
    with pytest.raises(syncmsg.InvalidBucketNameError):
        js.delete_key_value(bucket)


def test_bad_configurations(js: syncmsg.JetStream) -> None:
    with pytest.raises(ValueError):
        js.create_key_value(bucket="b", history=65)
    with pytest.raises(ValueError):
        js.create_key_value(bucket="b", history=0)
    with pytest.raises(ValueError):
        js.create_key_value(bucket="b", storage="tape")
    with pytest.raises(ValueError):
        js.create_key_value(bucket="b", limit_marker_ttl=0.5)
    with pytest.raises(TypeError):
        js.create_key_value()
    with pytest.raises(TypeError):
        js.create_key_value(config={"bucket": "b"})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        KeyValueConfig(bucket="b", unknown=1)  # type: ignore[call-arg]


def test_a_config_object(js: syncmsg.JetStream) -> None:
    name = unique("CFG")
    kv = js.create_key_value(config=KeyValueConfig(bucket=name, history=2, storage="memory"))
    try:
        assert kv.status().history == 2
    finally:
        js.delete_key_value(name)


def test_per_key_ttls_and_limit_markers(make_bucket: Any) -> None:
    kv = make_bucket(limit_marker_ttl=dt.timedelta(seconds=5))
    assert kv.status().limit_marker_ttl == dt.timedelta(seconds=5)
    kv.create("session", "s1", ttl=1)
    kv.put("stays", "v")
    assert kv.get("session").value == b"s1"

    def expired() -> bool:
        try:
            kv.get("session")
        except syncmsg.KeyDeletedError as exc:
            return exc.operation == "PURGE"  # the server's MaxAge marker reads as a purge
        return False

    wait_until(expired, timeout=15, what="the key's TTL to pass")
    assert [e.operation for e in kv.history("session")] == [Operation.PURGE]
    assert kv.keys() == ["stays"]
    kv.put("short", "v")
    kv.purge("short", ttl=1)  # the purge marker itself goes after a second
    wait_until(lambda: _no_history(kv, "short"), timeout=15, what="the marker to go")
    with pytest.raises(ValueError):
        kv.create("x", "v", ttl=0.5)


def _no_history(kv: KeyValue, key: str) -> bool:
    try:
        kv.history(key)
    except syncmsg.KeyNotFoundError:
        return True
    return False


def test_a_ttl_on_a_bucket_without_markers_is_explained(kv: KeyValue) -> None:
    with pytest.raises(syncmsg.JetStreamError, match="limit_marker_ttl") as refused:
        kv.create("k", "v", ttl=5)
    assert refused.value.err_code == ApiErrorCode.MESSAGE_TTL_DISABLED


def test_bucket_ttl_expires_keys(make_bucket: Any) -> None:
    kv = make_bucket(ttl=1)
    kv.put("k", "v")
    wait_until(lambda: kv.status().values == 0, timeout=15, what="max_age")
    with pytest.raises(syncmsg.KeyNotFoundError):
        kv.get("k")


def test_a_mirror_reads_the_origin(js: syncmsg.JetStream, make_bucket: Any) -> None:
    origin = make_bucket(history=3)
    origin.put("a", "1")
    mirror = make_bucket(mirror=origin.bucket)
    config = js.stream_info(f"KV_{mirror.bucket}").raw["config"]
    assert config["mirror"]["name"] == f"KV_{origin.bucket}" and config["mirror_direct"]
    assert "subjects" not in config or not config["subjects"]
    wait_until(lambda: mirror.status().values == 1, timeout=10, what="the mirror")
    assert mirror.get("a").value == b"1"
    mirror.put("b", "2")  # writes go to the origin
    assert origin.get("b").value == b"2"
    wait_until(lambda: mirror.keys() == ["a", "b"], timeout=10, what="the mirror")


def test_sources_rename_keys_into_the_bucket(js: syncmsg.JetStream, make_bucket: Any) -> None:
    one = make_bucket()
    two = make_bucket()
    one.put("x", "from one")
    two.put("y", "from two")
    merged = make_bucket(sources=[one.bucket, StreamSource(name=f"KV_{two.bucket}")])
    wait_until(lambda: merged.keys() == ["x", "y"], timeout=10, what="the sources")
    assert merged.get("x").value == b"from one"
    config = js.stream_info(f"KV_{merged.bucket}").raw["config"]
    assert {s["name"] for s in config["sources"]} == {f"KV_{one.bucket}", f"KV_{two.bucket}"}
    assert config["subjects"] == [f"$KV.{merged.bucket}.>"]


def test_republish(make_bucket: Any, client: syncmsg.Client) -> None:
    seen: list[syncmsg.Msg] = []
    prefix = unique("repub")
    client.subscribe(f"{prefix}.>", seen.append)
    client.flush()
    kv = make_bucket(republish=syncmsg.jetstream.Republish(src=">", dest=f"{prefix}.>"))
    kv.put("a", "1")
    wait_until(lambda: len(seen) == 1, timeout=10)
    assert seen[0].subject == f"{prefix}.$KV.{kv.bucket}.a" and seen[0].data == b"1"


def test_a_put_to_a_deleted_bucket_fails(js: syncmsg.JetStream, make_bucket: Any) -> None:
    kv = make_bucket()
    quick = js.client.jetstream(no_responders_wait=0.2, timeout=1.0)
    same = quick.key_value(kv.bucket)
    js.delete_key_value(kv.bucket)
    with pytest.raises(syncmsg.NoRespondersError, match="does not exist"):
        same.put("a", "1")

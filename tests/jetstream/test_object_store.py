"""Object stores against a real nats-server: the layout, put and get from bytes, str, paths
and files, the digest checked (a missing, extra or corrupt chunk raises and never returns
wrong bytes), infos, listing, deleting, metas, links, watching, sealing, errors."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _js_helpers import unique, wait_until

import syncmsg
from syncmsg.jetstream import ApiErrorCode
from syncmsg.jetstream.object_store import (
    DEFAULT_CHUNK_SIZE,
    ObjectInfo,
    ObjectMeta,
    ObjectResult,
    ObjectStore,
    ObjectStoreConfig,
    ObjectStoreStatus,
    ObjectWatcher,
)


@pytest.fixture
def js(client: syncmsg.Client) -> syncmsg.JetStream:
    return client.jetstream()


@pytest.fixture
def make_store(js: syncmsg.JetStream) -> Iterator[Callable[..., ObjectStore]]:
    made: list[str] = []

    def make(**options: Any) -> ObjectStore:
        name = options.pop("bucket", None) or unique("O")
        options.setdefault("storage", "memory")
        store = js.create_object_store(bucket=name, **options)
        made.append(name)
        return store

    yield make
    for name in reversed(made):
        with contextlib.suppress(syncmsg.SyncMsgError):
            js.delete_object_store(name)


@pytest.fixture
def obs(make_store: Callable[..., ObjectStore]) -> ObjectStore:
    return make_store()


def test_a_store_is_the_standard_stream(js: syncmsg.JetStream, make_store: Any) -> None:
    store = make_store(description="files", ttl=3600, max_bytes=1 << 24, storage="file")
    config = js.stream_info(f"OBJ_{store.bucket}").raw["config"]
    assert config["subjects"] == [f"$O.{store.bucket}.C.>", f"$O.{store.bucket}.M.>"]
    assert config["discard"] == "new" and config["allow_rollup_hdrs"] is True
    assert config["allow_direct"] is True and config["max_age"] == 3600 * 10**9
    assert config["max_bytes"] == 1 << 24 and config["description"] == "files"


def test_the_meta_message_is_the_standard_json(js: syncmsg.JetStream, obs: ObjectStore) -> None:
    data = os.urandom(300_000)
    info = obs.put("docs/report.pdf", data, description="May", headers={"Content-Type": "x"})
    encoded = base64.urlsafe_b64encode(b"docs/report.pdf").decode()
    meta = js.get_last_msg(f"OBJ_{obs.bucket}", f"$O.{obs.bucket}.M.{encoded}")
    assert meta.headers is not None and meta.headers["Nats-Rollup"] == "sub"
    stored = json.loads(meta.data)
    digest = "SHA-256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode()
    assert stored == {
        "name": "docs/report.pdf",
        "description": "May",
        "headers": {"Content-Type": ["x"]},
        "options": {"max_chunk_size": DEFAULT_CHUNK_SIZE},
        "bucket": obs.bucket,
        "nuid": info.nuid,
        "size": 300_000,
        "mtime": "0001-01-01T00:00:00Z",
        "chunks": 3,
        "digest": digest,
    }
    assert info.digest == digest and len(info.nuid) == 22 and info.nuid.isalnum()
    chunks = js.stream_info(f"OBJ_{obs.bucket}", subjects_filter=f"$O.{obs.bucket}.C.>")
    assert chunks.state.subjects == {f"$O.{obs.bucket}.C.{info.nuid}": 3}


@pytest.mark.parametrize("size", [0, 1, 1000, DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_SIZE + 1, 700_001])
def test_put_and_get_bytes(obs: ObjectStore, size: int) -> None:
    data = os.urandom(size)
    info = obs.put("blob", data)
    assert isinstance(info, ObjectInfo)
    assert info.size == size and info.chunks == -(-size // DEFAULT_CHUNK_SIZE)
    assert info.mtime is not None and info.bucket == obs.bucket and not info.deleted
    result = obs.get("blob")
    assert isinstance(result, ObjectResult)
    assert result.data == data and result.info.size == size
    assert result.info.mtime is not None


def test_what_put_takes(obs: ObjectStore, tmp_path: Path) -> None:
    assert obs.get(obs.put("text", "héllo").name).text() == "héllo"
    assert obs.get(obs.put("json", '{"a": 1}').name).json() == {"a": 1}
    assert obs.get(obs.put("ba", bytearray(b"xy")).name).data == b"xy"
    assert obs.get(obs.put("mv", memoryview(b"abcdef")[1:3]).name).data == b"bc"
    path = tmp_path / "file.bin"
    data = os.urandom(250_000)
    path.write_bytes(data)
    assert obs.put("path", path).size == 250_000
    assert obs.get("path").data == data
    with open(path, "rb") as file:
        file.seek(50_000)
        assert obs.put("file", file, chunk_size=10_000).chunks == 20
    assert obs.get("file").data == data[50_000:]
    with open(path, encoding="latin-1") as text, pytest.raises(TypeError, match="binary"):
        obs.put("text-file", text)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        obs.put("number", 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        obs.put("", b"x")
    with pytest.raises(ValueError):
        obs.put("x", b"x", chunk_size=0)
    with pytest.raises(ValueError, match="max_payload"):
        obs.put("x", b"x", chunk_size=2 * 1024 * 1024)
    assert [i.name for i in obs.list()] == ["text", "json", "ba", "mv", "path", "file"]


def test_get_into_files_and_paths(obs: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(400_000)
    obs.put("big", data, chunk_size=32 * 1024)
    buffer = io.BytesIO(b"head:")
    buffer.seek(5)
    result = obs.get("big", into=buffer)
    assert result.data == b"" and result.info.size == 400_000
    assert buffer.getvalue() == b"head:" + data
    target = tmp_path / "out.bin"
    obs.get("big", into=target)
    assert target.read_bytes() == data
    obs.get("big", into=str(tmp_path / "out2.bin"))
    assert (tmp_path / "out2.bin").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin", "out2.bin"]  # no temp left
    umask = os.umask(0o022)  # the test's own umask, so the expected mode is known
    try:
        obs.get("big", into=tmp_path / "fresh.bin")
        (tmp_path / "kept.bin").write_bytes(b"")
        (tmp_path / "kept.bin").chmod(0o640)
        obs.get("big", into=tmp_path / "kept.bin")
    finally:
        os.umask(umask)
    assert (tmp_path / "fresh.bin").stat().st_mode & 0o777 == 0o644  # as any file written
    assert (tmp_path / "kept.bin").stat().st_mode & 0o777 == 0o640  # an existing file's mode
    with pytest.raises(TypeError):
        obs.get("big", into=5)  # type: ignore[arg-type]


def test_progress_is_told_each_chunk(obs: ObjectStore) -> None:
    done: list[int] = []
    obs.put("p", b"x" * 100_000, chunk_size=30_000, progress=done.append)
    assert done == [30_000, 30_000, 30_000, 10_000]
    read: list[int] = []
    obs.get("p", progress=read.append)
    assert read == done


def _chunk_seqs(js: syncmsg.JetStream, obs: ObjectStore, info: ObjectInfo) -> list[int]:
    stream = f"OBJ_{obs.bucket}"
    seqs = []
    seq = 1
    with contextlib.suppress(syncmsg.MessageNotFoundError):
        while True:
            msg = js.get_msg(stream, seq, subject=f"$O.{obs.bucket}.C.{info.nuid}", next=True)
            seqs.append(msg.seq)
            seq = msg.seq + 1
    return seqs


def test_a_missing_chunk_raises_and_returns_nothing(
    js: syncmsg.JetStream, obs: ObjectStore, tmp_path: Path
) -> None:
    info = obs.put("obj", os.urandom(100_000), chunk_size=10_000)
    seqs = _chunk_seqs(js, obs, info)
    assert len(seqs) == 10
    js.delete_msg(f"OBJ_{obs.bucket}", seqs[4])
    with pytest.raises(syncmsg.ObjectDigestError, match="missing or corrupt") as missing:
        obs.get("obj")
    assert isinstance(missing.value, syncmsg.ObjectStoreError)
    assert missing.value.bucket == obs.bucket and missing.value.key == "obj"
    target = tmp_path / "never.bin"
    with pytest.raises(syncmsg.ObjectDigestError):
        obs.get("obj", into=target)
    assert not target.exists() and list(tmp_path.iterdir()) == []
    buffer = io.BytesIO(b"kept")
    buffer.seek(4)
    with pytest.raises(syncmsg.ObjectDigestError):
        obs.get("obj", into=buffer)
    assert buffer.getvalue() == b"kept"  # cut back to where it was


def test_a_corrupt_chunk_raises(js: syncmsg.JetStream, obs: ObjectStore) -> None:
    data = os.urandom(50_000)
    info = obs.put("obj", data, chunk_size=10_000)
    subject = f"$O.{obs.bucket}.C.{info.nuid}"
    js.purge_stream(f"OBJ_{obs.bucket}", subject=subject)
    corrupt = bytearray(data)
    corrupt[12_345] ^= 0xFF
    for start in range(0, 50_000, 10_000):  # the same sizes, one byte changed
        js.publish(subject, bytes(corrupt[start : start + 10_000]))
    with pytest.raises(syncmsg.ObjectDigestError, match="SHA-256"):
        obs.get("obj")


def test_an_extra_chunk_raises(js: syncmsg.JetStream, obs: ObjectStore) -> None:
    info = obs.put("obj", os.urandom(20_000), chunk_size=10_000)
    js.publish(f"$O.{obs.bucket}.C.{info.nuid}", b"extra")
    with pytest.raises(syncmsg.ObjectDigestError):
        obs.get("obj")


def test_all_chunks_gone_raises(js: syncmsg.JetStream, obs: ObjectStore) -> None:
    info = obs.put("obj", b"x" * 1000)
    js.purge_stream(f"OBJ_{obs.bucket}", subject=f"$O.{obs.bucket}.C.{info.nuid}")
    with pytest.raises(syncmsg.ObjectDigestError):
        obs.get("obj")


def test_a_bad_meta_is_reported(js: syncmsg.JetStream, obs: ObjectStore) -> None:
    encoded = base64.urlsafe_b64encode(b"bad").decode()
    js.publish(f"$O.{obs.bucket}.M.{encoded}", b"not json")
    with pytest.raises(syncmsg.BadObjectMetaError):
        obs.info("bad")
    js.publish(f"$O.{obs.bucket}.M.{encoded}", b'{"name": "bad"}')
    with pytest.raises(syncmsg.BadObjectMetaError):
        obs.info("bad")
    good = obs.put("good", b"1")
    info = good.model_copy(update={"name": "bad", "digest": "MD5=xyz"})
    js.publish(f"$O.{obs.bucket}.M.{encoded}", info.to_json())
    with pytest.raises(syncmsg.BadObjectMetaError, match="digest"):
        obs.get("bad")
    assert [i.name for i in obs.list()] == ["good", "bad"]  # unreadable metas are skipped


def test_replacing_an_object_removes_the_old_chunks(
    js: syncmsg.JetStream, obs: ObjectStore
) -> None:
    first = obs.put("obj", os.urandom(300_000))
    second = obs.put("obj", b"small")
    assert first.nuid != second.nuid
    assert obs.get("obj").data == b"small"
    state = js.stream_info(f"OBJ_{obs.bucket}", subjects_filter=">").state
    assert state.subjects is not None
    assert f"$O.{obs.bucket}.C.{first.nuid}" not in state.subjects
    assert state.messages == 2  # one chunk, one meta


def test_a_failed_put_leaves_the_old_version(obs: ObjectStore) -> None:
    obs.put("obj", b"old version")

    class Broken(io.RawIOBase):
        reads = 0

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            self.reads += 1
            if self.reads > 3:
                raise OSError("disk gone")
            return b"x" * size

    with pytest.raises(OSError, match="disk gone"):
        obs.put("obj", Broken(), chunk_size=1000)  # type: ignore[arg-type]
    assert obs.get("obj").data == b"old version"
    assert obs.status().stream_info.state.messages == 2  # the new chunks were purged


def test_info_and_missing_objects(obs: ObjectStore) -> None:
    with pytest.raises(syncmsg.ObjectNotFoundError) as missing:
        obs.info("nope")
    assert str(missing.value) == f"object not found (bucket {obs.bucket!r}, object 'nope')"
    with pytest.raises(syncmsg.ObjectNotFoundError):
        obs.get("nope")
    with pytest.raises(syncmsg.ObjectNotFoundError):
        obs.delete("nope")
    with pytest.raises(ValueError):
        obs.info("")


def test_delete(js: syncmsg.JetStream, obs: ObjectStore) -> None:
    info = obs.put("obj", os.urandom(200_000))
    gone = obs.delete("obj")
    assert gone.deleted and gone.size == 0 and gone.chunks == 0 and gone.digest is None
    with pytest.raises(syncmsg.ObjectNotFoundError, match="deleted"):
        obs.info("obj")
    assert obs.info("obj", show_deleted=True).deleted
    assert obs.delete("obj").deleted  # again: nothing to do
    assert obs.list() == [] and [i.name for i in obs.list(show_deleted=True)] == ["obj"]
    assert _chunk_seqs(js, obs, info) == []
    obs.put("obj", b"back")
    assert obs.get("obj").data == b"back"


def test_update_meta(obs: ObjectStore) -> None:
    obs.put("a", b"1", description="one", headers={"X": "1"}, metadata={"k": "v"})
    updated = obs.update_meta("a", description="uno")
    assert updated.description == "uno" and updated.headers == {"X": ["1"]}
    assert obs.info("a").description == "uno" and obs.info("a").metadata == {"k": "v"}
    obs.update_meta("a", headers={"Y": ["1", "2"]}, metadata={})
    info = obs.info("a")
    assert info.headers == {"Y": ["1", "2"]} and info.metadata is None
    obs.update_meta("a", ObjectMeta(name="a", description=None))  # replaces all four
    info = obs.info("a")
    assert info.description is None and info.headers is None
    obs.put("b", b"2")
    with pytest.raises(syncmsg.ObjectAlreadyExistsError):
        obs.update_meta("a", new_name="b")
    renamed = obs.update_meta("a", new_name="c")
    assert renamed.name == "c" and obs.get("c").data == b"1"
    with pytest.raises(syncmsg.ObjectNotFoundError):
        obs.info("a", show_deleted=True)  # the old meta is gone
    obs.delete("b")
    obs.update_meta("c", new_name="b")  # onto a deleted object: fine
    assert obs.get("b").data == b"1"
    with pytest.raises(syncmsg.ObjectNotFoundError):
        obs.update_meta("c", description="x")


def test_links(js: syncmsg.JetStream, make_store: Any) -> None:
    one = make_store()
    two = make_store()
    target = one.put("report", os.urandom(150_000))
    link = two.add_link("latest", target)
    assert link.is_link and link.link is not None
    assert (link.link.bucket, link.link.name) == (one.bucket, "report")
    assert two.get("latest").data == one.get("report").data
    same = one.add_link("alias", one.info("report"))
    assert one.get("alias").info.name == "report"
    assert same.size == 0 and same.chunks == 0
    whole = two.add_bucket_link("everything", one)
    assert whole.link is not None and whole.link.name is None
    with pytest.raises(syncmsg.ObjectStoreError, match="whole store"):
        two.get("everything")
    two.add_bucket_link("by-name", one.bucket)
    with pytest.raises(syncmsg.ObjectStoreError, match="link to a link"):
        two.add_link("chain", two.info("latest"))
    two.put("real", b"x")
    with pytest.raises(syncmsg.ObjectAlreadyExistsError):
        two.add_link("real", target)
    two.add_link("latest", one.put("other", b"o"))  # a link may replace a link
    assert two.get("latest").data == b"o"
    one.delete("report")
    with pytest.raises(syncmsg.ObjectStoreError, match="deleted"):
        two.add_link("dead", one.info("report", show_deleted=True))
    with pytest.raises(TypeError):
        two.add_link("x", "report")  # type: ignore[arg-type]


def test_watch_with_a_callback(obs: ObjectStore) -> None:
    obs.put("before", b"1")
    seen: list[ObjectInfo] = []
    threads: set[str] = set()

    def callback(info: ObjectInfo) -> None:
        seen.append(info)
        threads.add(threading.current_thread().name)

    with obs.watch(callback) as watcher:
        assert isinstance(watcher, ObjectWatcher)
        assert watcher.wait_caught_up(10) and [i.name for i in seen] == ["before"]
        obs.put("after", b"2")
        obs.delete("before")
        wait_until(lambda: len(seen) == 3, 10)
    assert [(i.name, i.deleted) for i in seen] == [
        ("before", False),
        ("after", False),
        ("before", True),
    ]
    assert all(i.mtime is not None for i in seen)
    assert len(threads) == 1 and next(iter(threads)).startswith("syncmsg-js-")


def test_watch_iterating(obs: ObjectStore) -> None:
    obs.put("a", b"1")
    obs.put("b", b"2")
    obs.delete("b")
    with obs.watch(ignore_deletes=True) as watcher:
        assert [watcher.updates().name, watcher.updates()] == ["a", None]
    with obs.watch(include_history=True) as watcher:
        names = []
        while (info := watcher.updates()) is not None:
            names.append((info.name, info.deleted))
        assert names == [("a", False), ("b", True)]  # metas roll up: the latest is kept
    with obs.watch(updates_only=True) as watcher:
        assert watcher.updates(timeout=1) is None
        obs.put("c", b"3")
        assert watcher.updates(timeout=5).name == "c"
    with pytest.raises(ValueError):
        obs.watch(updates_only=True, include_history=True)


def test_seal(obs: ObjectStore) -> None:
    obs.put("a", b"1")
    status = obs.seal()
    assert isinstance(status, ObjectStoreStatus) and status.sealed
    with pytest.raises(syncmsg.JetStreamError) as refused:
        obs.put("b", b"2")
    assert refused.value.err_code == ApiErrorCode.STREAM_SEALED
    with pytest.raises(syncmsg.JetStreamError):
        obs.delete("a")
    assert obs.get("a").data == b"1"  # reads still work


def test_status_and_listing_stores(js: syncmsg.JetStream, make_store: Any) -> None:
    store = make_store(description="d", ttl=60, metadata={"owner": "me"})
    store.put("a", b"12345")
    status = store.status()
    assert (status.bucket, status.description, status.sealed) == (store.bucket, "d", False)
    assert status.size > 5 and status.ttl is not None and status.ttl.total_seconds() == 60
    assert status.storage == "memory" and status.replicas == 1 and not status.is_compressed
    assert status.metadata["owner"] == "me" and status.backing_store == "JetStream"
    assert repr(status).startswith(f"<ObjectStoreStatus {store.bucket!r}")
    other = make_store()
    names = [s.bucket for s in js.object_store_buckets()]
    assert store.bucket in names and other.bucket in names and names == sorted(names)


def test_binding_and_deleting_stores(js: syncmsg.JetStream, make_store: Any) -> None:
    store = make_store()
    store.put("a", b"1")
    assert js.object_store(store.bucket).get("a").data == b"1"
    assert js.create_object_store(bucket=store.bucket, storage="memory").bucket == store.bucket
    with pytest.raises(syncmsg.JetStreamError, match="another configuration"):
        js.create_object_store(bucket=store.bucket, storage="memory", ttl=5)
    js.delete_object_store(store.bucket)
    with pytest.raises(syncmsg.BucketNotFoundError):
        js.object_store(store.bucket)
    with pytest.raises(syncmsg.BucketNotFoundError):
        js.delete_object_store(store.bucket)
    with pytest.raises(syncmsg.BucketNotFoundError):
        store.info("a")
    with pytest.raises(syncmsg.BucketNotFoundError):
        store.status()
    for bad in ("", "a.b", "a b", "ä"):
        with pytest.raises(syncmsg.InvalidBucketNameError):
            js.create_object_store(bucket=bad)
        with pytest.raises(syncmsg.InvalidBucketNameError):
            js.object_store(bad)
    with pytest.raises(TypeError):
        js.create_object_store()
    with pytest.raises(TypeError):
        js.create_object_store(config={"bucket": "b"})  # type: ignore[arg-type]
    name = unique("C")
    js.create_object_store(config=ObjectStoreConfig(bucket=name, storage="memory"))
    js.delete_object_store(name)


def test_names_of_any_kind(obs: ObjectStore) -> None:
    for name in ("a b", "ü/ñ.txt", "../etc/passwd", "x" * 500, "*", ">", "a.b.c"):
        obs.put(name, name)
        assert obs.get(name).text() == name
    assert len(obs.list()) == 7


def test_concurrent_puts_and_gets(obs: ObjectStore) -> None:
    blobs = {f"blob{n}": os.urandom(150_000 + n) for n in range(6)}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            obs.put(name, blobs[name], chunk_size=16_384)
            assert obs.get(name).data == blobs[name]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(name,)) for name in blobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(i.name for i in obs.list()) == sorted(blobs)

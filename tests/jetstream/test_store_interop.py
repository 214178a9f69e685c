"""Wire compatibility with nats-py's own key-value and object stores, in the same run, both
ways: what nats-py's async API writes, syncmsg reads, and the reverse. KV values, history,
deletes, purges, TTLs (a bucket's, and per key with limit markers) and watches; objects of
several chunks, their infos, digests, deletes and links."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import nats
import nats.js.errors as nats_errors
import pytest
from _js_helpers import unique, wait_until

import syncmsg
from syncmsg.jetstream.kv import Operation

pytestmark = pytest.mark.timeout(90)

T = TypeVar("T")


@pytest.fixture
def js(client: syncmsg.Client) -> syncmsg.JetStream:
    return client.jetstream()


@pytest.fixture
def nats_py(nats_url: str) -> Callable[[Callable[[Any], Awaitable[T]]], T]:
    """``nats_py(fn)``: run ``await fn(jetstream_context)`` with a fresh nats-py client."""

    def run(fn: Callable[[Any], Awaitable[T]]) -> T:
        async def main() -> T:
            nc = await nats.connect(nats_url)
            try:
                return await fn(nc.jetstream())
            finally:
                await nc.close()

        return asyncio.run(main())

    return run


@pytest.fixture
def bucket(js: syncmsg.JetStream) -> Iterator[str]:
    name = unique("X")
    yield name
    for delete in (js.delete_key_value, js.delete_object_store):
        with contextlib.suppress(syncmsg.SyncMsgError):
            delete(name)


def test_syncmsg_reads_a_bucket_nats_py_wrote(
    js: syncmsg.JetStream, nats_py: Any, bucket: str
) -> None:
    async def write(njs: Any) -> list[int]:
        kv = await njs.create_key_value(bucket=bucket, history=5, ttl=3600)
        revisions = [await kv.put("config.a", b"1"), await kv.put("config.b", b"1")]
        revisions.append(await kv.update("config.a", b"2", last=revisions[0]))
        await kv.delete("config.b")
        await kv.put("gone", b"x")
        await kv.purge("gone")
        revisions.append(await kv.create("fresh", b'{"n": 1}'))
        return revisions

    first_a, _, second_a, fresh = nats_py(write)
    kv = js.key_value(bucket)
    entry = kv.get("config.a")
    assert (entry.value, entry.revision) == (b"2", second_a)
    assert kv.get("config.a", revision=first_a).value == b"1"
    assert kv.get("fresh").json() == {"n": 1} and kv.get("fresh").revision == fresh
    with pytest.raises(syncmsg.KeyDeletedError) as deleted:
        kv.get("config.b")
    assert deleted.value.operation == "DEL"
    with pytest.raises(syncmsg.KeyDeletedError) as purged:
        kv.get("gone")
    assert purged.value.operation == "PURGE"
    assert [(e.value, e.operation) for e in kv.history("config.b")] == [
        (b"1", Operation.PUT),
        (b"", Operation.DEL),
    ]
    assert [e.operation for e in kv.history("gone")] == [Operation.PURGE]
    assert kv.keys() == ["config.a", "fresh"]
    status = kv.status()
    assert status.history == 5 and status.ttl is not None and status.ttl.total_seconds() == 3600
    with kv.watch("config.>") as watcher:
        assert [watcher.updates().key, watcher.updates().key, watcher.updates()] == [
            "config.a",
            "config.b",
            None,
        ]
    assert kv.update("config.a", "3", last=second_a) > second_a  # and writes on


def test_nats_py_reads_a_bucket_syncmsg_wrote(
    js: syncmsg.JetStream, nats_py: Any, bucket: str
) -> None:
    kv = js.create_key_value(bucket=bucket, history=10)
    first = kv.put("a", "1")
    second = kv.update("a", {"v": 2}, last=first)
    kv.create("b", b"\x00\x01")
    kv.delete("b")
    kv.put("c", "keep")
    kv.purge("c")
    kv.put("d", "x")

    async def read(njs: Any) -> dict[str, Any]:
        nkv = await njs.key_value(bucket)
        found: dict[str, Any] = {}
        entry = await nkv.get("a")
        found["a"] = (entry.value, entry.revision)
        found["a@1"] = (await nkv.get("a", revision=first)).value
        for key in ("b", "c", "missing"):
            try:
                await nkv.get(key)
                found[key] = "found"
            except nats_errors.KeyNotFoundError:
                found[key] = "not found"
        found["history_b"] = [(e.value, e.operation) for e in await nkv.history("b")]
        found["keys"] = sorted(await nkv.keys())
        watcher = await nkv.watchall()
        seen = []
        async for update in watcher:
            if update is None:
                break
            seen.append((update.key, update.operation))
        await watcher.stop()
        found["watch"] = seen
        status = await nkv.status()
        found["history"] = status.history
        try:
            await nkv.update("a", b"late", last=first)
            found["cas"] = "won"
        except nats_errors.KeyWrongLastSequenceError:
            found["cas"] = "lost"
        found["put"] = await nkv.put("e", b"from nats-py")
        return found

    found = nats_py(read)
    assert found["a"] == (b'{"v":2}', second) and found["a@1"] == b"1"
    assert (found["b"], found["c"], found["missing"]) == ("not found", "not found", "not found")
    assert found["history_b"] == [(b"\x00\x01", None), (b"", "DEL")]
    assert found["keys"] == ["a", "d"]
    assert found["watch"] == [("a", None), ("b", "DEL"), ("c", "PURGE"), ("d", None)]
    assert found["history"] == 10 and found["cas"] == "lost"
    assert kv.get("e").value == b"from nats-py" and kv.get("e").revision == found["put"]


def test_per_key_ttls_both_ways(js: syncmsg.JetStream, nats_py: Any, bucket: str) -> None:
    kv = js.create_key_value(bucket=bucket, limit_marker_ttl=5, history=2)
    kv.create("ours", "expires", ttl=1)

    async def theirs(njs: Any) -> list[tuple[str, str | None]]:
        nkv = await njs.key_value(bucket)
        await nkv.create("theirs", b"expires too", msg_ttl=1)
        watcher = await nkv.watchall()
        seen = []
        async for update in watcher:
            if update is None:
                continue
            seen.append((update.key, update.operation))
            if sum(op == "PURGE" for _, op in seen) == 2:
                break
        await watcher.stop()
        return seen

    seen = nats_py(theirs)  # nats-py sees both keys expire (the server's MaxAge markers)
    assert sorted(k for k, op in seen if op == "PURGE") == ["ours", "theirs"]
    for key in ("ours", "theirs"):
        with pytest.raises(syncmsg.KeyDeletedError) as expired:
            kv.get(key)
        assert expired.value.operation == "PURGE"
    assert kv.keys() == []


def test_a_bucket_ttl_both_ways(js: syncmsg.JetStream, nats_py: Any, bucket: str) -> None:
    async def create(njs: Any) -> None:
        await njs.create_key_value(bucket=bucket, ttl=1)

    nats_py(create)
    kv = js.key_value(bucket)
    assert kv.status().ttl is not None and kv.status().ttl.total_seconds() == 1
    kv.put("k", "v")
    wait_until(lambda: kv.status().values == 0, timeout=15, what="the bucket's ttl")


def test_syncmsg_reads_an_object_nats_py_wrote(
    js: syncmsg.JetStream, nats_py: Any, bucket: str
) -> None:
    data = os.urandom(700_000)  # six chunks of 128 KiB

    async def write(njs: Any) -> Any:
        obs = await njs.create_object_store(bucket)
        info = await obs.put("reports/may.bin", data)
        await obs.put("small", b"tiny")
        await obs.put("empty", b"")
        return info

    written = nats_py(write)
    obs = js.object_store(bucket)
    result = obs.get("reports/may.bin")
    assert result.data == data
    info = result.info
    assert (info.size, info.chunks, info.nuid, info.digest) == (
        700_000,
        6,
        written.nuid,
        written.digest,
    )
    assert info.chunk_size == 128 * 1024 and info.mtime is not None
    assert obs.get("small").data == b"tiny" and obs.get("empty").data == b""
    assert sorted(i.name for i in obs.list()) == ["empty", "reports/may.bin", "small"]
    obs.delete("small")

    async def after(njs: Any) -> tuple[bool, int]:
        nobs = await njs.object_store(bucket)
        try:
            await nobs.get("small")
            found = True
        except nats_errors.ObjectNotFoundError:
            found = False
        return found, (await nobs.get_info("small", show_deleted=True)).size

    assert nats_py(after) == (False, 0)


def test_nats_py_reads_an_object_syncmsg_wrote(
    js: syncmsg.JetStream, nats_py: Any, bucket: str
) -> None:
    data = os.urandom(1_000_000)
    obs = js.create_object_store(bucket=bucket)
    info = obs.put("video.bin", data, chunk_size=64 * 1024, description="clip", headers={"A": "b"})
    assert info.chunks == 16
    obs.put("note", "hello")
    obs.add_link("alias", obs.info("video.bin"))
    obs.put("old", b"x")
    obs.delete("old")

    async def read(njs: Any) -> dict[str, Any]:
        nobs = await njs.object_store(bucket)
        result = await nobs.get("video.bin")  # nats-py checks the digest itself
        link = await nobs.get("alias")
        infos = await nobs.list(ignore_deletes=True)
        ninfo = await nobs.get_info("video.bin")
        put = await nobs.put("from-nats-py", b"z" * 300_000)
        return {
            "data": result.data,
            "link": link.data,
            "names": sorted(i.name for i in infos),
            "info": (ninfo.size, ninfo.chunks, ninfo.digest, ninfo.description, ninfo.headers),
            "note": (await nobs.get("note")).data,
            "put": put.nuid,
        }

    found = nats_py(read)
    assert found["data"] == data and found["link"] == data
    assert found["names"] == ["alias", "note", "video.bin"]
    assert found["info"] == (1_000_000, 16, info.digest, "clip", {"A": ["b"]})
    assert found["note"] == b"hello"
    assert obs.get("from-nats-py").data == b"z" * 300_000
    assert obs.info("from-nats-py").nuid == found["put"]

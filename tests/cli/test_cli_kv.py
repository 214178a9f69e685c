"""``syncmsg kv ...`` and ``syncmsg object ...`` in-process, against a real server: what
they print (text and JSON), exit codes, and what they write read back through the library."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import syncmsg
from syncmsg.cli import EXIT_NOT_FOUND, EXIT_OK, EXIT_TIMEOUT, EXIT_USAGE, main

pytestmark = pytest.mark.timeout(90)


def _lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture
def js(nats_url: str) -> Iterator[syncmsg.JetStream]:
    with syncmsg.connect(nats_url, timeout=5.0) as client:
        yield client.jetstream()


@pytest.fixture
def bucket(js: syncmsg.JetStream) -> Iterator[str]:
    name = f"cli_{uuid.uuid4().hex[:8]}"
    yield name
    for delete in (js.delete_key_value, js.delete_object_store):
        with contextlib.suppress(syncmsg.BucketNotFoundError):
            delete(name)


def cli(url: str, *args: str) -> int:
    return main([*args, "-s", url])


# ============================================================================ kv


def test_kv_add_ls_put_get(nats_url: str, bucket: str, js: Any, capsys: Any) -> None:
    assert cli(nats_url, "kv", "add", bucket, "--history", "5", "--ttl", "1h") == EXIT_OK
    assert f"bucket {bucket}: history 5, TTL 1h" in capsys.readouterr().out
    assert js.key_value(bucket).status().history == 5
    # creating it again with the same settings succeeds
    assert cli(nats_url, "kv", "add", bucket, "--history", "5", "--ttl", "1h", "--json") == 0
    (row,) = _lines(capsys.readouterr().out)
    assert row["bucket"] == bucket and row["history"] == 5 and row["ttl"] == 3600

    assert cli(nats_url, "kv", "put", bucket, "db.url", "postgres://db/app") == EXIT_OK
    assert f"{bucket} > db.url: revision 1" in capsys.readouterr().out
    assert cli(nats_url, "kv", "put", bucket, "db.url", "postgres://db2/app", "--json") == 0
    assert _lines(capsys.readouterr().out) == [{"bucket": bucket, "key": "db.url", "revision": 2}]

    assert cli(nats_url, "kv", "get", bucket, "db.url") == EXIT_OK
    captured = capsys.readouterr()
    assert captured.out == "postgres://db2/app\n"  # the value alone, for $(...)
    assert "revision 2" in captured.err
    assert cli(nats_url, "kv", "get", bucket, "db.url", "--revision", "1", "--json") == 0
    (entry,) = _lines(capsys.readouterr().out)
    assert entry["revision"] == 1 and entry["data"] == "postgres://db/app"
    assert entry["operation"] == "PUT" and entry["created"]

    assert cli(nats_url, "kv", "ls") == EXIT_OK
    out = capsys.readouterr().out
    assert "BUCKET" in out and "HISTORY" in out
    (line,) = [line for line in out.splitlines() if bucket in line]
    assert " 2 " in line and "1h" in line  # two values, the TTL in units
    assert cli(nats_url, "kv", "ls", "--json") == 0
    (mine,) = [row for row in _lines(capsys.readouterr().out) if row["bucket"] == bucket]
    assert mine["values"] == 2 and mine["bytes"] > 0
    assert cli(nats_url, "kv", "ls", bucket) == 0
    assert "db.url" in capsys.readouterr().out


def test_kv_put_reads_stdin_and_binary_values_print_as_base64(
    nats_url: str, bucket: str, js: Any, capsys: Any, monkeypatch: Any
) -> None:
    kv = js.create_key_value(bucket, storage="memory")
    kv.put("blob", b"\xff\x00\x01")
    assert cli(nats_url, "kv", "get", bucket, "blob", "--json") == 0
    (entry,) = _lines(capsys.readouterr().out)
    assert entry["data_base64"] == "/wAB"

    import io

    class Stdin:
        buffer = io.BytesIO(b'{"a": 1}')

    monkeypatch.setattr("sys.stdin", Stdin)
    assert cli(nats_url, "kv", "put", bucket, "app.json", "-") == 0
    assert kv.get("app.json").json() == {"a": 1}


def test_kv_compare_and_set_and_create(nats_url: str, bucket: str, js: Any, capsys: Any) -> None:
    kv = js.create_key_value(bucket, storage="memory", history=3)
    assert cli(nats_url, "kv", "put", bucket, "leader", "a", "--create") == 0
    capsys.readouterr()
    assert cli(nats_url, "kv", "put", bucket, "leader", "b", "--create") == 1
    assert "key exists" in capsys.readouterr().err
    assert cli(nats_url, "kv", "put", bucket, "leader", "b", "--last", "7") == 1
    assert "wrong last" in capsys.readouterr().err
    assert cli(nats_url, "kv", "put", bucket, "leader", "b", "--last", "1") == 0
    assert kv.get("leader").value == b"b"
    assert (
        cli(nats_url, "kv", "put", bucket, "leader", "c", "--last", "1", "--create") == EXIT_USAGE
    )


def test_kv_del_purge_history(nats_url: str, bucket: str, js: Any, capsys: Any) -> None:
    kv = js.create_key_value(bucket, storage="memory", history=5)
    kv.put("k", "one")
    kv.put("k", "two")
    assert cli(nats_url, "kv", "del", bucket, "k") == EXIT_OK
    assert "deleted (revision 3)" in capsys.readouterr().out

    assert cli(nats_url, "kv", "history", bucket, "k") == EXIT_OK
    out = capsys.readouterr().out
    assert "REVISION" in out and "OPERATION" in out
    rows = [line.split() for line in out.splitlines()[2:] if line.strip()]
    assert [row[:2] for row in rows] == [["1", "PUT"], ["2", "PUT"], ["3", "DEL"]]
    assert cli(nats_url, "kv", "history", bucket, "k", "--json") == 0
    assert [e["operation"] for e in _lines(capsys.readouterr().out)] == ["PUT", "PUT", "DEL"]

    assert cli(nats_url, "kv", "get", bucket, "k") == EXIT_NOT_FOUND
    assert "key deleted" in capsys.readouterr().err
    assert cli(nats_url, "kv", "get", bucket, "never") == EXIT_NOT_FOUND

    # purging removes the history: it asks first, and a script needs --force
    assert cli(nats_url, "kv", "del", bucket, "k", "--purge") == EXIT_USAGE
    assert "--force" in capsys.readouterr().err
    assert cli(nats_url, "kv", "del", bucket, "k", "--purge", "--force", "--json") == 0
    (row,) = _lines(capsys.readouterr().out)
    assert row["operation"] == "PURGE"
    assert [e.operation for e in kv.history("k")] == ["PURGE"]


def test_kv_unknown_bucket_exits_5(nats_url: str, capsys: Any) -> None:
    assert cli(nats_url, "kv", "get", "nobucket_here", "k") == EXIT_NOT_FOUND
    err = capsys.readouterr().err
    assert err.count("syncmsg: error:") == 1 and "Traceback" not in err


def test_kv_watch_prints_initial_entries_then_changes(
    nats_url: str, bucket: str, js: Any, capsys: Any
) -> None:
    kv = js.create_key_value(bucket, storage="memory")
    kv.put("db.url", "one")
    kv.put("other", "x")
    writer = threading.Thread(target=lambda: (kv.put("db.url", "two"), kv.delete("db.url")))

    # The writer starts once the watch has printed its initial entries.
    from syncmsg.cli import _output

    real_status = _output.Output.status

    def status(self: Any, text: str) -> None:
        real_status(self, text)
        if text.startswith("initial entries"):
            writer.start()

    _output.Output.status = status  # type: ignore[method-assign]
    try:
        assert cli(nats_url, "kv", "watch", bucket, "db.>", "--count", "3", "--wait", "30s") == 0
    finally:
        _output.Output.status = real_status  # type: ignore[method-assign]
        if writer.is_alive():
            writer.join(10)
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        "[1] PUT db.url: one",
        "[3] PUT db.url: two",
        "[4] DEL db.url",
    ]
    assert "initial entries: 1; now watching" in captured.err


def test_kv_watch_json_history_and_bounds(nats_url: str, bucket: str, js: Any, capsys: Any) -> None:
    kv = js.create_key_value(bucket, storage="memory", history=5)
    kv.put("a", "1")
    kv.put("a", "2")
    assert cli(nats_url, "kv", "watch", bucket, "--history", "--count", "2", "--json") == 0
    assert [e["data"] for e in _lines(capsys.readouterr().out)] == ["1", "2"]
    # --wait ends a watch with nothing new: status 0 without --count, 4 with one unmet
    assert cli(nats_url, "kv", "watch", bucket, "--updates-only", "--wait", "300ms") == EXIT_OK
    assert capsys.readouterr().out == ""
    code = cli(nats_url, "kv", "watch", bucket, "--count", "5", "--wait", "300ms")
    assert code == EXIT_TIMEOUT
    assert "received 1 of 5 entries" in capsys.readouterr().err


# ============================================================================ object


def test_object_add_put_ls_info_get_rm(
    nats_url: str, bucket: str, js: Any, tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    assert cli(nats_url, "object", "add", bucket, "--description", "reports") == EXIT_OK
    assert f"object store {bucket}: no TTL, file storage" in capsys.readouterr().out

    source = tmp_path / "report.bin"
    data = os.urandom(300 * 1024 + 7)
    source.write_bytes(data)
    assert cli(nats_url, "object", "put", bucket, str(source), "-H", "Type: pdf") == EXIT_OK
    out = capsys.readouterr().out
    assert f"{bucket} > report.bin: 300 KiB in 3 chunks, SHA-256=" in out
    info = js.object_store(bucket).info("report.bin")
    assert info.size == len(data) and info.headers == {"Type": ["pdf"]}

    assert (
        cli(nats_url, "object", "put", bucket, str(source), "--name", "b/copy.bin", "--json") == 0
    )
    (row,) = _lines(capsys.readouterr().out)
    assert row["name"] == "b/copy.bin" and row["size"] == len(data) and row["chunks"] == 3

    assert cli(nats_url, "object", "ls") == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if bucket in line]
    assert "reports" in line and "no" in line  # not sealed
    assert cli(nats_url, "object", "ls", bucket) == 0
    out = capsys.readouterr().out
    assert "report.bin" in out and "b/copy.bin" in out and "300 KiB" in out
    assert cli(nats_url, "object", "ls", bucket, "--json") == 0
    assert sorted(r["name"] for r in _lines(capsys.readouterr().out)) == [
        "b/copy.bin",
        "report.bin",
    ]

    assert cli(nats_url, "object", "info", bucket, "report.bin") == 0
    out = capsys.readouterr().out
    assert f"object {bucket} > report.bin" in out and "header Type" in out and "pdf" in out
    assert cli(nats_url, "object", "info", bucket, "report.bin", "--json") == 0
    (row,) = _lines(capsys.readouterr().out)
    assert row["digest"] == info.digest and row["headers"] == {"Type": ["pdf"]}

    monkeypatch.chdir(tmp_path)
    target = tmp_path / "out"
    target.mkdir()
    assert cli(nats_url, "object", "get", bucket, "b/copy.bin", "-o", str(target / "c")) == 0
    assert "checked" in capsys.readouterr().out
    assert (target / "c").read_bytes() == data
    # the default is the object's base name, here; an existing file needs --force
    monkeypatch.chdir(target)
    assert cli(nats_url, "object", "get", bucket, "b/copy.bin", "--json") == 0
    (row,) = _lines(capsys.readouterr().out)
    assert row["file"] == "copy.bin" and (target / "copy.bin").read_bytes() == data
    assert cli(nats_url, "object", "get", bucket, "b/copy.bin") == EXIT_USAGE
    assert "--force" in capsys.readouterr().err
    assert cli(nats_url, "object", "get", bucket, "b/copy.bin", "--force") == 0
    capsys.readouterr()

    assert cli(nats_url, "object", "rm", bucket, "report.bin") == EXIT_USAGE
    capsys.readouterr()
    assert cli(nats_url, "object", "rm", bucket, "report.bin", "--force") == 0
    assert f"deleted {bucket} > report.bin" in capsys.readouterr().out
    assert cli(nats_url, "object", "info", bucket, "report.bin") == EXIT_NOT_FOUND
    assert cli(nats_url, "object", "get", bucket, "nothing") == EXIT_NOT_FOUND
    assert cli(nats_url, "object", "ls", "no_such_store") == EXIT_NOT_FOUND


def test_object_put_needs_a_file_or_a_name(
    nats_url: str, bucket: str, js: Any, capsys: Any
) -> None:
    js.create_object_store(bucket, storage="memory")
    assert cli(nats_url, "object", "put", bucket, "/no/such/file") == EXIT_USAGE
    assert cli(nats_url, "object", "put", bucket, "-") == EXIT_USAGE
    assert "--name" in capsys.readouterr().err


def test_object_put_and_get_show_progress_lines(
    tmp_path: Path, bucket: str, js: Any, nats_url: str
) -> None:
    """Through a real process, as a script sees it: --progress on a non-terminal prints
    progress lines on stderr, the result on stdout; the file round-trips through stdout."""
    from _cli_helpers import run

    js.create_object_store(bucket, storage="memory")
    source = tmp_path / "big.bin"
    data = os.urandom(3 * 1024 * 1024)
    source.write_bytes(data)
    put = run(nats_url, "object", "put", bucket, str(source), "--progress")
    assert put.returncode == 0, put.stderr
    assert "putting big.bin: 3 MiB/3 MiB in" in put.stderr
    got = run(nats_url, "object", "get", bucket, "big.bin", "-o", str(tmp_path / "b"), "--progress")
    assert got.returncode == 0, got.stderr
    assert "getting big.bin: 3 MiB/3 MiB in" in got.stderr
    assert hashlib.sha256((tmp_path / "b").read_bytes()).digest() == hashlib.sha256(data).digest()
    js.object_store(bucket).put("note.txt", "hello\n")
    to_stdout = run(nats_url, "object", "get", bucket, "note.txt", "-o", "-")
    assert to_stdout.returncode == 0 and to_stdout.stdout == "hello\n"

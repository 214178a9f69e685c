"""syncmsg bench pub|sub|req|js against a real server (small counts: correctness, not speed)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import syncmsg
from syncmsg.cli import main


def _json(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.mark.parametrize("test", ["pub", "sub", "req", "js"])
def test_bench_json_rows(test: str, nats_url: str, capsys: Any) -> None:
    assert (
        main(
            [
                "bench",
                test,
                "--msgs",
                "2k",
                "--size",
                "64B",
                "--clients",
                "2",
                "-s",
                nats_url,
                "--json",
            ]
        )
        == 0
    )
    rows = _json(capsys.readouterr().out)
    clients = [row for row in rows if row["client"] in ("1", "2")]
    assert {row["size"] for row in rows} == {64}
    assert all(row["msgs_per_sec"] > 0 and row["bytes_per_sec"] > 0 for row in rows)
    if test == "js":
        assert [row["test"] for row in rows] == ["js pub", "js pub", "js pub", "js consume"]
        assert rows[-1]["msgs"] == 2000 and rows[2]["client"] == "total"
        return
    total = rows[-1]
    assert total["client"] == "total" and [row["test"] for row in rows] == [test] * 3
    if test == "sub":
        assert [row["msgs"] for row in clients] == [2000, 2000]  # each subscriber gets all
        assert total["msgs"] == 4000
    else:
        assert sorted(row["msgs"] for row in clients) == [1000, 1000] and total["msgs"] == 2000
    if test == "req":
        latency = total["latency_ms"]
        assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]


def test_bench_table(nats_url: str, capsys: Any) -> None:
    assert main(["bench", "req", "--msgs", "200", "-s", nats_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "TEST", "CLIENT", "MSGS", "SIZE", "TIME", "MSGS/S", "THROUGHPUT", "P50", "P90", "P99", "MAX",
    ]  # fmt: skip
    row = lines[2].split()
    assert row[:5] == ["req", "1", "200", "128", "B"] and row[7] == "msgs/s"
    assert main(["bench", "pub", "--msgs", "1000", "--size", "1KiB", "-s", nats_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "P50" not in lines[0] and lines[2].split()[:5] == ["pub", "1", "1,000", "1", "KiB"]
    assert lines[2].endswith("/s")


def test_bench_req_against_a_running_service(
    nats_url: str, capsys: Any, client: syncmsg.Client
) -> None:
    client.serve("bench.cli.echo", lambda msg: msg.data)
    client.flush()
    argv = ["bench", "req", "bench.cli.echo", "--no-responder", "--msgs", "100", "-s", nats_url]
    assert main([*argv, "--json"]) == 0
    assert _json(capsys.readouterr().out)[0]["msgs"] == 100
    assert main(["bench", "req", "--no-responder", "-s", nats_url]) == 2
    assert "needs the SUBJECT" in capsys.readouterr().err


def test_bench_needs_a_server(refused_url: str, capsys: Any) -> None:
    assert main(["bench", "pub", "--msgs", "10", "-s", refused_url, "--timeout", "500ms"]) == 3
    assert capsys.readouterr().err.startswith("syncmsg: error: ")

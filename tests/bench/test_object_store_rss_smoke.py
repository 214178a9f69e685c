"""bench/object_store_rss.py still runs: a small file, checked for well-formed output only
(no performance or memory assertion: docs/performance.md quotes the 200 MiB run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "object_store_rss.py"


@pytest.mark.timeout(180)
def test_object_store_bench_prints_a_line_per_client_and_direction() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--size", "2MiB", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert [(r["client"], r["direction"]) for r in rows] == [
        ("syncmsg", "put"),
        ("nats-py", "put"),
        ("syncmsg", "get"),
        ("nats-py", "get"),
    ]
    for row in rows:
        assert row["size_mib"] == 2.0 and row["mb_per_s"] > 0
        assert row["rss_growth_mib"] >= 0 and row["throughput_ratio_to_nats_py"] > 0

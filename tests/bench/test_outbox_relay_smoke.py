"""bench/outbox_relay.py still runs: a tiny measurement, checked for well-formed output only
(no performance assertion: numbers on shared machines mean nothing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "outbox_relay.py"


@pytest.mark.timeout(180)
def test_outbox_relay_bench_prints_json_lines(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--rows",
            "300",
            "--repeat",
            "1",
            "--scenarios",
            "distinct,one",
        ],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert [(line["metric"], line["keys"]) for line in lines] == [
        ("outbox_relay", "distinct"),
        ("outbox_relay", "one"),
        ("js_publish_async", None),
    ]
    assert all(line["value"] > 0 and line["database"] == "sqlite3" for line in lines)

"""bench/services.py still runs: one tiny round of each service, well-formed output only.

No performance assertion (see docs/services.md#throughput for the measured ratios).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "bench" / "services.py"


@pytest.mark.timeout(180)
def test_the_services_benchmark_prints_one_line_per_service() -> None:
    load = "syncmsg"
    proc = subprocess.run(
        [sys.executable, str(SERVICES), "--repeat", "1", "--requests", "400", "--load", load],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert [line["service"] for line in lines] == [
        "syncmsg-service",
        "syncmsg-serve",
        "micro",
        "micro-8",
    ]
    for line in lines:
        assert line["load"] == load and line["unit"] == "req/s"
        assert line["value"] > 0 and line["ratio_to_micro"] > 0

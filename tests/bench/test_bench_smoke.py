"""The benchmark still runs: one tiny measurement, checked for well-formed output only.

No performance assertion here or anywhere in the suite: numbers on shared CI machines mean
nothing. See docs/performance.md for the real run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "bench" / "run.py"


@pytest.mark.timeout(180)
def test_quick_core_publish_prints_json_lines(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(RUN),
            "--quick",
            "--only",
            "core-publish",
            "--clients",
            "raw,syncmsg",
            "--no-write",
        ],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert lines, proc.stderr[-2000:]
    for line in lines:
        assert {"metric", "client", "value", "unit", "ratio_to_raw"} <= line.keys()
        assert isinstance(line["value"], (int, float))
    seen = {(line["metric"], line["client"]) for line in lines}
    assert ("core_publish_1t", "raw") in seen
    assert ("core_publish_1t", "syncmsg") in seen
    assert not (tmp_path / "docs").exists()  # --no-write wrote nothing


@pytest.mark.timeout(180)
def test_a_rewrite_keeps_the_sections_of_the_other_benchmarks(tmp_path: Path) -> None:
    out = tmp_path / "performance.md"
    out.write_text(
        "# old\n\n## Results\n\nstale figures\n\n## Where the time goes\n\nstale findings\n\n"
        "## Object store: elsewhere\n\nkept figures\n"
    )
    quick = ["--quick", "--only", "core-publish", "--clients", "raw,syncmsg"]
    proc = subprocess.run(
        [sys.executable, str(RUN), *quick, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    page = out.read_text()
    assert "stale figures" not in page  # the report's own sections are rewritten
    assert page.count("## Results") == 1
    assert page.count("## Where the time goes") == 1 and "stale findings" not in page
    assert page.rstrip().endswith("## Object store: elsewhere\n\nkept figures")

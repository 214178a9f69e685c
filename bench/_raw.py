"""The reference: nats-py's asyncio API used directly, in one asyncio loop.

Every function takes the job's parameters and returns a list of measurements (dicts with
``metric``, ``value``, ``unit`` and extras). The same functions exist, with the same
meaning, in ``_syncmsg.py`` and ``_naive.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import subprocess
import sys
import time
import uuid
from typing import Any

import _jsutil
import nats
from _common import BENCH_DIR, peak_rss_bytes, percentile, rss_bytes
from nats.errors import OutboundBufferLimitError

MiB = 1024 * 1024


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


# ------------------------------------------------------------------ core publish
async def _publish(url: str, n: int, size: int, tasks: int) -> float:
    nc = await nats.connect(url)
    payload = b"x" * size
    subject = "bench.pub"
    publish = nc.publish
    for _ in range(min(n, 2000)):
        await publish(subject, payload)
    await nc.flush(30)
    per = n // tasks

    async def one() -> None:
        for _ in range(per):
            await publish(subject, payload)

    start, cpu0 = time.perf_counter(), time.process_time()
    if tasks == 1:
        await one()
    else:
        await asyncio.gather(*(one() for _ in range(tasks)))
    await nc.flush(60)
    elapsed = time.perf_counter() - start
    cpu_us = (time.process_time() - cpu0) / (per * tasks) * 1e6
    await nc.close()
    return per * tasks / elapsed, cpu_us


def publish(p: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for point in p["points"]:
        rate, cpu_us = _run(_publish(p["url"], point["n"], point["size"], point["threads"]))
        out.append(
            {
                "metric": point["metric"],
                "value": rate,
                "unit": "msg/s",
                "mb_s": rate * point["size"] / 1e6,
                "cpu_us_per_msg": cpu_us,
                "n": point["n"],
                "concurrency": f"{point['threads']} asyncio tasks",
            }
        )
    return out


# ------------------------------------------------------------------ request / reply
async def _request(url: str, subject: str, n: int, size: int) -> list[float]:
    nc = await nats.connect(url)
    payload = b"r" * size
    for _ in range(200):
        await nc.request(subject, payload, timeout=5)
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        await nc.request(subject, payload, timeout=5)
        samples.append((clock() - t0) / 1000)
    await nc.close()
    return samples


def request(p: dict[str, Any]) -> list[dict[str, Any]]:
    samples = _run(_request(p["url"], p["subject"], p["n"], p["size"]))
    return latency_rows(p["metric"], samples)


def latency_rows(metric: str, samples: list[float]) -> list[dict[str, Any]]:
    return [
        {
            "metric": f"{metric}_p50",
            "value": percentile(samples, 50),
            "unit": "us",
            "n": len(samples),
        },
        {
            "metric": f"{metric}_p99",
            "value": percentile(samples, 99),
            "unit": "us",
            "n": len(samples),
        },
    ]


# ------------------------------------------------------------------ concurrent requests
async def _request_burst(nc: Any, subject: str, n: int, size: int, tasks: int) -> dict[str, Any]:
    payload = b"r" * size
    for _ in range(200):
        await nc.request(subject, payload, timeout=5)
    per = n // tasks
    samples: list[float] = []
    clock = time.perf_counter_ns

    async def one() -> None:
        for _ in range(per):
            t0 = clock()
            await nc.request(subject, payload, timeout=10)
            samples.append((clock() - t0) / 1000)

    start, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one() for _ in range(tasks)))
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    return {"rate": per * tasks / elapsed, "cpu_us": cpu / (per * tasks) * 1e6, "samples": samples}


def request_rate_row(
    metric: str, n: int, result: dict[str, Any], concurrency: str
) -> dict[str, Any]:
    """A throughput row of concurrent requests, with the latency each request saw."""
    samples = result["samples"]
    return {
        "metric": metric,
        "value": result["rate"],
        "unit": "msg/s",
        "n": n,
        "cpu_us_per_msg": result["cpu_us"],
        "p50_us": percentile(samples, 50),
        "p99_us": percentile(samples, 99),
        "concurrency": concurrency,
    }


async def _request_threads(
    url: str, subject: str, size: int, points: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    nc = await nats.connect(url)
    rows = []
    for point in points:
        result = await _request_burst(nc, subject, point["n"], size, point["threads"])
        rows.append(
            request_rate_row(
                point["metric"], point["n"], result, f"{point['threads']} asyncio tasks"
            )
        )
    await nc.close()
    return rows


def request_threads(p: dict[str, Any]) -> list[dict[str, Any]]:
    """Requests from N concurrent tasks (the other clients: threads) to one responder."""
    subject = p.get("subject") or start_responder(p, "raw")
    try:
        return list(_run(_request_threads(p["url"], subject, p["size"], p["points"])))
    finally:
        stop_responder(p)


_responders: list[subprocess.Popen[str]] = []


def start_responder(p: dict[str, Any], kind: str) -> str:
    """Start ``bench/_responder.py`` of the client ``kind``; return its subject."""
    subject = f"bench.e2e.{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(BENCH_DIR / "_responder.py"),
            kind,
            p["url"],
            subject,
            str(p.get("workers", 1)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError("responder did not start")
    _responders.append(proc)
    return subject


def stop_responder(p: dict[str, Any]) -> None:
    while _responders:
        proc = _responders.pop()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


# ------------------------------------------------------------------ serving requests
def load_requests(url: str, subject: str, n: int, concurrency: int, size: int) -> dict[str, Any]:
    """Drive the responder in this process with raw nats-py requests from another process;
    returns the requester's rate and latencies and this process's CPU per request."""
    peer = subprocess.Popen(
        [
            sys.executable,
            str(BENCH_DIR / "_peer.py"),
            "requester",
            url,
            subject,
            str(n),
            str(concurrency),
            str(size),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert peer.stdout is not None
    cpu0 = 0.0
    result: dict[str, Any] = {}
    for line in peer.stdout:
        if line.strip() == "start":
            cpu0 = time.process_time()
        elif line.startswith("{"):
            result = json.loads(line)
            result["cpu_us"] = (time.process_time() - cpu0) / n * 1e6
    peer.wait(60)
    if not result:
        raise RuntimeError(f"requester exited {peer.returncode} without a result")
    return result


def serve_row(metric: str, n: int, result: dict[str, Any], concurrency: str) -> dict[str, Any]:
    return {
        "metric": metric,
        "value": result["rate"],
        "unit": "msg/s",
        "n": n,
        "cpu_us_per_msg": result["cpu_us"],
        "p50_us": result["p50"],
        "p99_us": result["p99"],
        "concurrency": concurrency,
    }


def serve(p: dict[str, Any]) -> list[dict[str, Any]]:
    """This process answers (an echo callback on nats-py's loop thread, in a loop thread
    of its own so that the load generator can be read from here)."""
    import threading

    subject = f"bench.serve.{uuid.uuid4().hex[:8]}"
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def setup() -> Any:
        nc = await nats.connect(p["url"])

        async def answer(msg: Any) -> None:
            await nc.publish(msg.reply, msg.data)

        await nc.subscribe(subject, cb=answer)
        await nc.flush()
        return nc

    nc = asyncio.run_coroutine_threadsafe(setup(), loop).result(30)
    result = load_requests(p["url"], subject, p["n"], p["concurrency"], p["size"])
    asyncio.run_coroutine_threadsafe(nc.close(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    return [serve_row(p["metric"], p["n"], result, "nats-py callback on its loop")]


# ------------------------------------------------------------------ core subscribe
async def _subscribe(url: str, n: int, size: int, limits: dict[str, int]) -> dict[str, Any]:
    nc = await nats.connect(url)
    subject = f"bench.sub.{uuid.uuid4().hex[:8]}"
    state = {"count": 0, "first": 0.0, "last": 0.0, "disorder": 0}
    done = asyncio.Event()
    clock = time.perf_counter

    async def handler(msg: Any) -> None:
        count = state["count"]
        if count == 0:
            state["first"] = clock()
            state["cpu_first"] = time.process_time()
        if int.from_bytes(msg.data[:4], "big") != count:
            state["disorder"] += 1
        state["count"] = count + 1
        state["last"] = clock()
        if count + 1 == n:
            state["cpu_last"] = time.process_time()
            done.set()

    await nc.subscribe(subject, cb=handler, **limits)
    await nc.flush()
    peer = await asyncio.create_subprocess_exec(
        sys.executable,
        str(BENCH_DIR / "_peer.py"),
        "publisher",
        url,
        subject,
        str(n),
        str(size),
        stdout=asyncio.subprocess.DEVNULL,
    )
    with contextlib.suppress(asyncio.TimeoutError):  # reported as fewer messages received
        await asyncio.wait_for(done.wait(), 120)
    await peer.wait()
    await nc.close()
    return state


def subscribe(p: dict[str, Any]) -> list[dict[str, Any]]:
    state = _run(_subscribe(p["url"], p["n"], p["size"], p["limits"]))
    return [subscribe_row(p["metric"], p["n"], state)]


def subscribe_row(metric: str, n: int, state: dict[str, Any]) -> dict[str, Any]:
    count = state["count"]
    elapsed = state["last"] - state["first"]
    rate = (count - 1) / elapsed if count > 1 and elapsed > 0 else 0.0
    row = {
        "metric": metric,
        "value": rate,
        "unit": "msg/s",
        "n": n,
        "received": count,
        "out_of_order": state["disorder"],
    }
    if count > 1 and "cpu_first" in state and "cpu_last" in state:
        row["cpu_us_per_msg"] = (state["cpu_last"] - state["cpu_first"]) / (count - 1) * 1e6
    return row


# ------------------------------------------------------------------ reconnect buffer
async def _buffer(n: int, size: int, tasks: int) -> dict[str, Any]:
    from _common import Server

    server = Server(jetstream=False).start()
    nc = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.5)
    payload = b"b" * size
    await nc.publish("bench.buf", payload)
    await nc.flush()
    server.kill()
    deadline = time.monotonic() + 10
    while nc.is_connected and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    gc.collect()
    rss0 = rss_bytes()
    counts = {"accepted": 0, "errors": 0}
    first_error: list[int] = []

    async def one(count: int) -> None:
        for _ in range(count):
            try:
                await nc.publish("bench.buf", payload)
                counts["accepted"] += 1
            except OutboundBufferLimitError:
                counts["errors"] += 1
                if not first_error:
                    first_error.append(counts["accepted"])

    start = time.perf_counter()
    await asyncio.gather(*(one(n // tasks) for _ in range(tasks)))
    elapsed = time.perf_counter() - start
    rss1 = rss_bytes()
    peak = peak_rss_bytes()
    with contextlib.suppress(Exception):  # nats-py 2.16: "Connection lost" when disconnected
        await nc.close()
    server.close()
    return {
        "accepted": counts["accepted"],
        "accepted_bytes": counts["accepted"] * size,
        "errors": counts["errors"],
        "first_error_at": first_error[0] if first_error else None,
        "error_type": "nats.errors.OutboundBufferLimitError",
        "rss_growth": (rss1 - rss0) / MiB,
        "peak_growth": max(peak - rss0, 0) / MiB,
        "buffer_limit_bytes": nc._max_pending_size,
        "ns_per_publish": elapsed / n * 1e9,
        "concurrency": f"{tasks} asyncio tasks",
    }


def buffer(p: dict[str, Any]) -> list[dict[str, Any]]:
    r = _run(_buffer(p["n"], p["size"], p.get("threads", 1)))
    return [buffer_row(p["metric"], p["n"], r)]


def buffer_row(metric: str, n: int, r: dict[str, Any]) -> dict[str, Any]:
    row = {"metric": metric, "value": r.pop("rss_growth"), "unit": "MiB", "n": n}
    row.update(r)
    return row


# ------------------------------------------------------------------ JetStream
async def _js_publish(url: str, n: int, size: int) -> list[float]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    subject = await _jsutil.make_stream(js)
    payload = b"j" * size
    for _ in range(100):
        await js.publish(subject, payload)
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        await js.publish(subject, payload)
        samples.append((clock() - t0) / 1000)
    await _jsutil.drop_stream(js, subject)
    await nc.close()
    return samples


def js_publish(p: dict[str, Any]) -> list[dict[str, Any]]:
    return latency_rows(p["metric"], _run(_js_publish(p["url"], p["n"], p["size"])))


async def _js_publish_async(url: str, n: int, size: int, window: int) -> float:
    nc = await nats.connect(url)
    js = nc.jetstream()
    subject = await _jsutil.make_stream(js)
    payload = b"j" * size
    await asyncio.gather(*(js.publish(subject, payload) for _ in range(window)))
    start, cpu0 = time.perf_counter(), time.process_time()
    for first in range(0, n, window):
        await asyncio.gather(*(js.publish(subject, payload) for _ in range(min(window, n - first))))
    elapsed = time.perf_counter() - start
    cpu_us = (time.process_time() - cpu0) / n * 1e6
    await _jsutil.drop_stream(js, subject)
    await nc.close()
    return n / elapsed, cpu_us


def js_publish_async(p: dict[str, Any]) -> list[dict[str, Any]]:
    rate, cpu_us = _run(_js_publish_async(p["url"], p["n"], p["size"], p["window"]))
    return [
        {
            "metric": p["metric"],
            "value": rate,
            "unit": "msg/s",
            "n": p["n"],
            "window": p["window"],
            "cpu_us_per_msg": cpu_us,
        }
    ]


async def _js_consume(url: str, n: int, size: int, batch: int) -> dict[str, Any]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    subject, durable = await _jsutil.filled_stream(nc, js, n, size)
    psub = await js.pull_subscribe(subject, durable=durable)
    state = {"count": 0, "first": 0.0, "last": 0.0, "disorder": 0}
    clock = time.perf_counter
    deadline = time.monotonic() + 120
    while state["count"] < n and time.monotonic() < deadline:
        try:
            msgs = await psub.fetch(batch, timeout=5)
        except nats.errors.TimeoutError:
            continue
        for msg in msgs:
            count = state["count"]
            if count == 0:
                state["first"] = clock()
                state["cpu_first"] = time.process_time()
            if int.from_bytes(msg.data[:4], "big") != count:
                state["disorder"] += 1
            await msg.ack()
            state["count"] = count + 1
            state["last"] = clock()
    state["cpu_last"] = time.process_time()
    await nc.flush()
    state["unacked"] = await _jsutil.unacked(js, subject, durable)
    await _jsutil.drop_stream(js, subject)
    await nc.close()
    return state


def js_consume(p: dict[str, Any]) -> list[dict[str, Any]]:
    state = _run(_js_consume(p["url"], p["n"], p["size"], p["batch"]))
    row = subscribe_row(p["metric"], p["n"], state)
    row.update(batch=p["batch"], unacked=state["unacked"])
    return [row]

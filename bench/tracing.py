#!/usr/bin/env python
"""What tracing costs core publish: off (the hook present, nothing instrumented) against
the code without the hook, and on, for information.

    python bench/tracing.py                    # 200k publishes (20k traced) x 7 repetitions
    python bench/tracing.py --count 50000 --repeat 3 --base main

Variants, each in a fresh Python process per repetition, interleaved so that a noisy
neighbour hurts them alike, against one nats-server of our own:

- ``base``: the ``syncmsg`` package of git ref ``--base`` (default ``main``, which has no
  tracing hook), extracted with ``git archive`` into a temporary directory;
- ``off``: this tree, tracing off (``syncmsg.otel`` never called): the cost of the hook;
- ``on-noop``: ``syncmsg.otel.instrument()`` with no SDK (OpenTelemetry's no-op providers);
- ``on-sdk``: the SDK's TracerProvider with a BatchSpanProcessor and an exporter that
  drops the spans, and a MeterProvider: what recording every span costs.

Each process publishes ``--count`` 16-byte messages from one thread, then flushes; the
rate is messages per second including the flush, and the process's CPU time (publishing
and event-loop threads) per message is measured too, as it is much less disturbed by
other work on a shared machine than the rate. The medians and the best runs are printed,
with each variant's ratios to ``base``'s; nothing is asserted (machines are shared and
noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO_DIR, Server, median

VARIANTS = ("base", "off", "on-noop", "on-sdk")

WORKER = r"""
import json, sys, time

mode, url, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
import syncmsg

if mode == "on-noop":
    import syncmsg.otel
    syncmsg.otel.instrument()
elif mode == "on-sdk":
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

    import syncmsg.otel
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Drop()))
    syncmsg.otel.instrument(tracer_provider=tracer_provider, meter_provider=MeterProvider())

payload = b"x" * 16
with syncmsg.connect(url, timeout=10.0) as client:
    for _ in range(2000):  # warm up
        client.publish("bench.tracing", payload)
    client.flush(timeout=30)
    started, cpu_started = time.perf_counter(), time.process_time()
    publish = client.publish
    for _ in range(count):
        publish("bench.tracing", payload)
    client.flush(timeout=120)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
print(json.dumps({"rate": count / elapsed, "cpu_ns": cpu / count * 1e9}))
"""


def extract_base(ref: str, into: Path) -> Path:
    """The ``syncmsg`` package of ``ref``, as files under ``into``."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, "syncmsg"],
        cwd=REPO_DIR,
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    into.mkdir()
    tar_path = into.parent / "base.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(into, filter="data")
    return into


def run_one(variant: str, url: str, count: int, base_dir: Path) -> tuple[float, float]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(base_dir if variant == "base" else REPO_DIR)
    done = subprocess.run(
        [sys.executable, "-c", WORKER, "off" if variant == "base" else variant, url, str(count)],
        env=env,
        cwd=base_dir.parent,  # neither tree: python -c puts the working directory first
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{variant}: {done.stderr.strip()}")
    result = json.loads(done.stdout.splitlines()[-1])
    return float(result["rate"]), float(result["cpu_ns"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument(
        "--on-count",
        type=int,
        default=None,
        help="publishes of the tracing-on variants "
        "(default: --count / 10; the rate is per message either way)",
    )
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--base", default="main", help="git ref of the code without tracing")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    samples: dict[str, list[float]] = {v: [] for v in variants}
    cpu: dict[str, list[float]] = {v: [] for v in variants}
    on_count = args.on_count or max(args.count // 10, 1000)
    with tempfile.TemporaryDirectory(prefix="syncmsg-bench-tracing-") as tmp:
        base_dir = extract_base(args.base, Path(tmp) / "base")
        with Server(jetstream=False) as server:
            for rep in range(args.repeat):
                # Rotate the order each repetition, so no variant always runs first.
                order = variants[rep % len(variants) :] + variants[: rep % len(variants)]
                for variant in order:
                    count = on_count if variant.startswith("on-") else args.count
                    rate, cpu_ns = run_one(variant, server.url, count, base_dir)
                    samples[variant].append(rate)
                    cpu[variant].append(cpu_ns)
                    print(
                        f"rep {rep + 1} {variant}: {rate:,.0f} msg/s, {cpu_ns:,.0f} CPU ns/msg",
                        file=sys.stderr,
                    )
    base = median(samples["base"]) if samples.get("base") else None
    base_best = max(samples["base"]) if samples.get("base") else None
    base_cpu = median(cpu["base"]) if cpu.get("base") else None
    load = os.getloadavg()[0]
    for variant in variants:
        value = median(samples[variant])
        print(
            json.dumps(
                {
                    "metric": "core_publish_1t_tracing",
                    "variant": variant,
                    "value": round(value),
                    "unit": "msg/s",
                    "ratio_to_base": round(value / base, 4) if base else None,
                    # The best run is the one a noisy neighbour disturbed least.
                    "best": round(max(samples[variant])),
                    "best_ratio_to_base": (
                        round(max(samples[variant]) / base_best, 4) if base_best else None
                    ),
                    "samples": [round(s) for s in samples[variant]],
                    # CPU time (both threads) per message: less disturbed by a busy
                    # machine than the wall-clock rate; above 1.0 costs more than base.
                    "cpu_ns_per_msg": round(median(cpu[variant])),
                    "cpu_ratio_to_base": (
                        round(median(cpu[variant]) / base_cpu, 4) if base_cpu else None
                    ),
                    "count": on_count if variant.startswith("on-") else args.count,
                    "base": args.base,
                    "load": round(load, 2),
                    "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
            )
        )


if __name__ == "__main__":
    main()

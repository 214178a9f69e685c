#!/usr/bin/env python
"""syncmsg's benchmark: syncmsg against raw nats-py async, side by side, in one run.

    python bench/run.py                  # everything, ~5 minutes; writes docs/performance.md
    python bench/run.py --quick          # smaller counts, one repetition, < 1 minute
    python bench/run.py --only core      # groups: see --help
    python bench/run.py --repeat 5 --out /tmp/perf.md

It starts its own nats-server (JetStream on, loopback, free port) and a raw nats-py
responder process, then runs every measurement in a fresh Python process per client and
repetition, interleaving the clients so that a noisy neighbour hurts them alike. It prints
one JSON line per metric and client on stdout (progress goes to stderr):

    {"metric": "core_publish_1t", "client": "syncmsg", "value": 2.1e5, "unit": "msg/s",
     "ratio_to_raw": 0.93, "samples": [...], ...}

Values are medians over the repetitions; ``ratio_to_raw`` is the client's median divided
by raw nats-py's median from the same run (for latencies lower is better, so the targets
there are upper bounds). Nothing here is ever asserted by the test suite.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH_DIR, REPO_DIR, Server, median

CLIENTS = ("raw", "syncmsg", "naive")
SUB_LIMITS = {"pending_msgs_limit": 1 << 20, "pending_bytes_limit": 512 * 1024 * 1024}
ECHO_SUBJECT = "bench.echo"


@dataclasses.dataclass
class Job:
    """One worker invocation per client and repetition."""

    group: str
    name: str  # the worker function in _raw / _syncmsg / _naive
    params: dict[str, Any]
    clients: tuple[str, ...] = CLIENTS
    per_client: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    once: bool = False  # a bound check, not a noisy rate: one repetition is enough
    timeout: float = 240.0

    def params_for(self, client: str) -> dict[str, Any]:
        params = dict(self.params)
        params.update(self.per_client.get(client, {}))
        return params


GROUPS = (
    "core-publish",
    "request",
    "request-threads",
    "serve",
    "request-e2e",
    "core-subscribe",
    "buffer",
    "sweep-size",
    "sweep-threads",
    "js-publish",
    "js-publish-async",
    "js-consume",
)
ALIASES = {
    "all": GROUPS,
    "core": ("core-publish", "request", "core-subscribe", "buffer"),
    "requests": ("request", "request-threads", "serve", "request-e2e"),
    "sweeps": ("sweep-size", "sweep-threads"),
    "js": ("js-publish", "js-publish-async", "js-consume"),
}


def plan(quick: bool) -> list[Job]:
    """Every job with its message counts. The naive wrapper is ~30x slower at publishing and
    acking, so it handles fewer messages (its rate does not depend on N); raw nats-py and
    syncmsg always get the same N."""
    n_pub = 50_000 if quick else 200_000
    n_naive = 2_000 if quick else 8_000
    size_budget = (32 if quick else 128) * 1024 * 1024
    sizes = (16, 1024, 65536) if quick else (16, 128, 1024, 4096, 16384, 65536)
    large_sizes = (4096, 65536) if quick else (4096, 16384, 65536)
    thread_counts = (1, 4, 16) if quick else (1, 2, 4, 8, 16)
    n_js = 5_000 if quick else 20_000

    def pub_point(metric: str, n: int, size: int, threads: int) -> dict[str, Any]:
        return {"metric": metric, "n": n, "size": size, "threads": threads}

    def naive_points(points: list[dict[str, Any]], n: int = n_naive) -> dict[str, Any]:
        return {"points": [dict(p, n=min(p["n"], n)) for p in points]}

    jobs: list[Job] = []
    for threads in (1, 8):
        points = [pub_point(f"core_publish_{threads}t", n_pub, 128, threads)]
        jobs.append(
            Job(
                "core-publish",
                "publish",
                {"points": points},
                per_client={"naive": naive_points(points)},
            )
        )
    jobs.append(
        Job(
            "request",
            "request",
            {
                "metric": "request",
                "subject": ECHO_SUBJECT,
                "size": 128,
                "n": 500 if quick else 3000,
            },
        )
    )
    # Requests from several threads at once (raw nats-py: tasks), to the shared raw
    # responder: the request side alone.
    request_points = [
        {
            "metric": f"request_threads_{t}",
            "threads": t,
            "n": max(250, 125 * t) if quick else max(1000, 500 * t),
        }
        for t in ((1, 8) if quick else (1, 4, 8, 16))
    ]
    jobs.append(
        Job(
            "request-threads",
            "request_threads",
            {"subject": ECHO_SUBJECT, "size": 128, "points": request_points},
        )
    )
    # The serve side alone: the client under test answers (syncmsg: serve() with 4
    # workers), a raw nats-py process sends requests from 8 tasks.
    jobs.append(
        Job(
            "serve",
            "serve",
            {
                "metric": "serve_8c",
                "size": 128,
                "n": 2000 if quick else 10_000,
                "concurrency": 8,
                "workers": 4,
            },
            clients=("raw", "syncmsg"),
        )
    )
    # Both sides: 8 requesting threads and a responder in another process, both of the
    # client under test (raw nats-py: 8 tasks and its own responder).
    jobs.append(
        Job(
            "request-e2e",
            "request_threads",
            {
                "subject": "",
                "size": 128,
                "workers": 4,
                "points": [
                    {"metric": "request_e2e_8t", "threads": 8, "n": 1000 if quick else 4000}
                ],
            },
            clients=("raw", "syncmsg"),
        )
    )
    jobs.append(
        Job(
            "core-subscribe",
            "subscribe",
            {
                "metric": "core_subscribe",
                "size": 128,
                "n": 20_000 if quick else 100_000,
                "limits": SUB_LIMITS,
            },
        )
    )
    jobs.append(
        Job(
            "buffer",
            "buffer",
            {"metric": "buffer_rss_growth", "size": 128, "n": 1_000_000},
            clients=("raw", "syncmsg"),
            once=True,
        )
    )
    # The same bound with 8 threads and 64 KiB payloads: what one thread queues between two
    # wake-ups of the loop is then large, so an uncounted queue shows here.
    jobs.append(
        Job(
            "buffer",
            "buffer",
            {"metric": "buffer_rss_growth_8t_64k", "size": 65536, "n": 20_000, "threads": 8},
            clients=("raw", "syncmsg"),
            once=True,
        )
    )
    size_points = [
        pub_point(f"core_publish_size_{s}B", max(1000, min(n_pub, size_budget // s)), s, 1)
        for s in sizes
    ]
    jobs.append(Job("sweep-size", "publish", {"points": size_points}, clients=("raw", "syncmsg")))
    large_points = [
        pub_point(f"core_publish_size_8t_{s}B", max(1000, min(n_pub, size_budget // s)), s, 8)
        for s in large_sizes
    ]
    jobs.append(Job("sweep-size", "publish", {"points": large_points}, clients=("raw", "syncmsg")))
    thread_points = [pub_point(f"core_publish_threads_{t}", n_pub, 128, t) for t in thread_counts]
    jobs.append(
        Job(
            "sweep-threads",
            "publish",
            {"points": thread_points},
            per_client={"naive": naive_points(thread_points, n_naive // 2)},
        )
    )
    jobs.append(
        Job(
            "js-publish",
            "js_publish",
            {"metric": "js_publish", "size": 128, "n": 300 if quick else 2000},
        )
    )
    jobs.append(
        Job(
            "js-publish-async",
            "js_publish_async",
            {"metric": "js_publish_async", "size": 128, "window": 256, "n": n_js},
            per_client={"naive": {"n": n_naive}},
        )
    )
    jobs.append(
        Job(
            "js-publish-async",
            "js_publish_async",
            {"metric": "js_publish_async_4k", "size": 4096, "window": 256, "n": n_js // 2},
            clients=("raw", "syncmsg"),
        )
    )
    jobs.append(
        Job(
            "js-consume",
            "js_consume",
            {"metric": "js_consume", "size": 128, "batch": 256, "n": n_js},
            per_client={"naive": {"n": min(n_js, n_naive // 2)}},
        )
    )
    return jobs


# ------------------------------------------------------------------ running
def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_worker(job: Job, client: str, url: str) -> dict[str, Any]:
    params = job.params_for(client)
    params["url"] = url
    spec = json.dumps({"client": client, "job": job.name, "params": params})
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, str(BENCH_DIR / "_worker.py"), spec],
            capture_output=True,
            text=True,
            timeout=job.timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {job.timeout:g}s", "unavailable": False}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = (proc.stderr or "").strip().splitlines()[-3:]
        return {
            "error": f"worker exited {proc.returncode}: {' | '.join(tail)}",
            "unavailable": False,
        }
    result: dict[str, Any] = json.loads(lines[-1])
    result["seconds"] = time.monotonic() - started
    if "error" in result and not result.get("unavailable"):
        tail = (proc.stderr or "").strip().splitlines()[-3:]
        result["stderr"] = " | ".join(tail)
    return result


class Responder:
    """The raw nats-py echo responder, in its own process, shared by every client."""

    def __init__(self, url: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH_DIR / "_peer.py"), "responder", url, ECHO_SUBJECT],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("responder did not start")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def collect(
    jobs: list[Job], clients: tuple[str, ...], repeat: int, url: str
) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[tuple[str, str], str], list[str]]:
    """Run the jobs round by round; returns per (metric, client): samples and extras."""
    samples: dict[tuple[str, str], dict[str, Any]] = {}
    problems: dict[tuple[str, str], str] = {}
    order: list[str] = []
    for rnd in range(repeat):
        for job in jobs:
            if job.once and rnd:
                continue
            for client in job.clients:
                if client not in clients:
                    continue
                result = run_worker(job, client, url)
                label = f"[{rnd + 1}/{repeat}] {job.group:<16} {client:<8}"
                if "error" in result:
                    kind = "n/a" if result.get("unavailable") else "FAILED"
                    log(f"{label} {kind}: {result['error']} {result.get('stderr', '')}")
                    problems[(job.group, client)] = (
                        "n/a: " if result.get("unavailable") else "failed: "
                    ) + result["error"]
                    continue
                shown = []
                for row in result["rows"]:
                    key = (row["metric"], client)
                    if row["metric"] not in order:
                        order.append(row["metric"])
                    entry = samples.setdefault(
                        key,
                        {
                            "values": [],
                            "unit": row["unit"],
                            "group": job.group,
                            "peak_rss_mib": 0.0,
                            "extras": [],
                        },
                    )
                    entry["values"].append(row["value"])
                    entry["peak_rss_mib"] = max(entry["peak_rss_mib"], result["peak_rss_mib"])
                    entry["extras"].append(
                        {k: v for k, v in row.items() if k not in ("metric", "value", "unit")}
                    )
                    shown.append(f"{row['metric']}={row['value']:.6g}{row['unit']}")
                log(f"{label} {' '.join(shown)}  ({result['seconds']:.1f}s)")
    return samples, problems, order


def summarise(
    samples: dict[tuple[str, str], dict[str, Any]], order: list[str]
) -> list[dict[str, Any]]:
    lines = []
    for metric in order:
        raw = samples.get((metric, "raw"))
        raw_median = median(raw["values"]) if raw else None
        for client in CLIENTS:
            entry = samples.get((metric, client))
            if entry is None:
                continue
            value = median(entry["values"])
            ratio = value / raw_median if raw_median else None
            line = {
                "metric": metric,
                "client": client,
                "value": round(value, 3),
                "unit": entry["unit"],
                "ratio_to_raw": None if ratio is None else round(ratio, 3),
                "samples": [round(v, 3) for v in entry["values"]],
                "peak_rss_mib": round(entry["peak_rss_mib"], 1),
            }
            extras = entry["extras"][-1]
            for key in (
                "n",
                "received",
                "out_of_order",
                "unacked",
                "accepted",
                "errors",
                "first_error_at",
                "accepted_bytes",
                "concurrency",
                "error_type",
                "peak_growth",
                "buffer_limit_bytes",
                "ns_per_publish",
                "other_errors",
                "window",
                "batch",
                "failed",
            ):
                if key in extras:
                    line[key] = extras[key]
            cpu = [e["cpu_us_per_msg"] for e in entry["extras"] if "cpu_us_per_msg" in e]
            if cpu:
                line["cpu_us_per_msg"] = round(median(cpu), 2)
            for key in ("p50_us", "p99_us"):  # latencies seen by concurrent requests
                seen = [e[key] for e in entry["extras"] if key in e]
                if seen:
                    line[key] = round(median(seen), 1)
            lines.append(line)
    return lines


def expand(only: str | None) -> tuple[str, ...]:
    if not only:
        return GROUPS
    chosen: list[str] = []
    for word in only.split(","):
        word = word.strip()
        names = ALIASES.get(word, (word,))
        for name in names:
            if name not in GROUPS:
                raise SystemExit(
                    f"unknown group {name!r}; choose from {', '.join(GROUPS)} "
                    f"or {', '.join(ALIASES)}"
                )
            if name not in chosen:
                chosen.append(name)
    return tuple(chosen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=f"groups: {', '.join(GROUPS)}; aliases: "
        + "; ".join(f"{k} = {','.join(v)}" for k, v in ALIASES.items() if k != "all"),
    )
    parser.add_argument("--quick", action="store_true", help="small counts, 1 repetition")
    parser.add_argument("--only", help="comma-separated groups or aliases (default: all)")
    parser.add_argument("--repeat", type=int, help="repetitions per measurement (default 3)")
    parser.add_argument(
        "--clients", default=",".join(CLIENTS), help="comma-separated subset of raw,syncmsg,naive"
    )
    parser.add_argument(
        "--out",
        default=str(REPO_DIR / "docs" / "performance.md"),
        help="where to write the report (default docs/performance.md)",
    )
    parser.add_argument("--no-write", action="store_true", help="print JSON lines only")
    parser.add_argument(
        "--save-run",
        metavar="PATH",
        help="also save this run (summary, machine facts) so that --render can rewrite the report",
    )
    parser.add_argument(
        "--render",
        metavar="PATH",
        help="write the report from a run saved with --save-run, without measuring",
    )
    parser.add_argument(
        "--save-baseline",
        metavar="PATH",
        help="also save this run's summary as the 'before' of the report's before/after table",
    )
    parser.add_argument(
        "--server-url",
        help="use this nats-server instead of starting one (the buffer test always starts its own)",
    )
    args = parser.parse_args(argv)

    if args.render:
        return render(Path(args.render), Path(args.out))
    groups = expand(args.only)
    clients = tuple(c.strip() for c in args.clients.split(",") if c.strip())
    for client in clients:
        if client not in CLIENTS:
            raise SystemExit(f"unknown client {client!r}")
    repeat = args.repeat or (1 if args.quick else 3)
    jobs = [job for job in plan(args.quick) if job.group in groups]

    started = time.monotonic()
    server = None if args.server_url else Server(jetstream=True, use_syncmsg=True).start()
    url = args.server_url or server.url  # type: ignore[union-attr]
    responder = Responder(url) if {"request", "request-threads"} & set(groups) else None
    log(f"bench: nats-server at {url}; groups {', '.join(groups)}; {repeat} repetition(s)")
    try:
        samples, problems, order = collect(jobs, clients, repeat, url)
    finally:
        if responder is not None:
            responder.close()
        if server is not None:
            server.close()
    lines = summarise(samples, order)
    for line in lines:
        print(json.dumps(line), flush=True)
    elapsed = time.monotonic() - started
    log(f"bench: done in {elapsed:.0f}s")
    if args.save_baseline:
        from _report import save_baseline

        save_baseline(Path(args.save_baseline), lines)
        log(f"bench: saved the baseline to {args.save_baseline}")
    from _report import machine, write_report

    shown, skip = [], False  # the command as it measures: without where it saves
    for arg in argv if argv is not None else sys.argv[1:]:
        if skip or arg in ("--save-run", "--save-baseline"):
            skip = not skip
            continue
        shown.append(arg)
    command = " ".join(["python", "bench/run.py", *shown])
    facts = machine()
    run = {
        "lines": lines,
        "problems": [[group, client, note] for (group, client), note in problems.items()],
        "groups": list(groups),
        "command": command,
        "repeat": repeat,
        "quick": args.quick,
        "elapsed": elapsed,
        "machine": facts,
        "when": f"{dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
    }
    if args.save_run:
        Path(args.save_run).write_text(json.dumps(run, indent=1) + "\n", encoding="utf-8")
    if not args.no_write:
        out = Path(args.out)
        write_report(
            out,
            lines,
            problems,
            groups=groups,
            command=command,
            repeat=repeat,
            quick=args.quick,
            elapsed=elapsed,
            jobs=jobs,
            facts=facts,
            when=run["when"],
        )
        log(f"bench: wrote {out}")
    return 0


def render(saved: Path, out: Path) -> int:
    """Rewrite the report from a saved run (after editing where_the_time_goes.md, say)."""
    from _report import write_report

    run = json.loads(saved.read_text(encoding="utf-8"))
    groups = tuple(run["groups"])
    write_report(
        out,
        run["lines"],
        {(group, client): note for group, client, note in run["problems"]},
        groups=groups,
        command=run["command"],
        repeat=run["repeat"],
        quick=run["quick"],
        elapsed=run["elapsed"],
        jobs=[job for job in plan(run["quick"]) if job.group in groups],
        facts=run["machine"],
        when=run.get("when"),
    )
    log(f"bench: wrote {out} from {saved}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

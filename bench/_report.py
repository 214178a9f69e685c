# ruff: noqa: RUF001 - the report is Markdown for people; its dashes and signs are meant
"""Writes docs/performance.md from one run's summary lines."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from _common import BENCH_DIR, REPO_DIR, find_server_binary, server_version

# (label, metric, comparison, target ratio); comparison ">=" for rates, "<=" for latencies.
MAIN_ROWS: list[tuple[str, str, str | None, float | None]] = [
    ("core publish, 1 thread, 128 B", "core_publish_1t", ">=", 0.9),
    ("core publish, 8 threads, aggregate", "core_publish_8t", ">=", 0.8),
    ("request/reply p50 (responder in another process)", "request_p50", "<=", 1.1),
    ("request/reply p99", "request_p99", None, None),
    (
        "request/reply from 8 threads, serve() with 4 workers in another process",
        "request_e2e_8t",
        ">=",
        0.9,
    ),
    (
        "requests from 8 threads to the raw responder (the request side)",
        "request_threads_8",
        ">=",
        0.9,
    ),
    ("serve(), 4 workers, 8 concurrent raw requesters (the serve side)", "serve_8c", ">=", 0.9),
    ("core publish, 1 thread, 4 KiB", "core_publish_size_4096B", ">=", 0.9),
    ("core publish, 1 thread, 16 KiB", "core_publish_size_16384B", ">=", 0.9),
    ("JetStream publish with ack, sequential, p50", "js_publish_p50", "<=", 1.1),
    ("JetStream publish with ack, sequential, p99", "js_publish_p99", None, None),
    ("JetStream publish_async, pipelined", "js_publish_async", ">=", 1.0),
    ("JetStream publish_async, pipelined, 4 KiB", "js_publish_async_4k", ">=", 1.0),
    ("core subscribe, callbacks in worker threads", "core_subscribe", ">=", 0.7),
    (
        "durable JetStream consume, explicit ack, handlers in worker threads",
        "js_consume",
        ">=",
        0.7,
    ),
]
BUFFER_LIMIT_MIB = 64
BUFFER_SLACK = 1.25  # accepted bytes may exceed the reconnect buffer by this factor
BUFFER_ROWS = [
    ("buffer_rss_growth", "1M publishes of 128 B while the server is down"),
    ("buffer_rss_growth_8t_64k", "20k publishes of 64 KiB from 8 threads, server down"),
]
FINDINGS = BENCH_DIR / "where_the_time_goes.md"
BASELINE = BENCH_DIR / "baseline.json"
# The rows of issue 15 (label, metric, comparison, target), shown before and after.
ISSUE_ROWS: list[tuple[str, str, str, float]] = [
    (
        "request/reply from 8 threads (raw: 8 tasks), responder with 4 workers: throughput",
        "request_e2e_8t",
        ">=",
        0.9,
    ),
    ("… the request side: 8 threads to the raw responder", "request_threads_8", ">=", 0.9),
    ("… the serve side: serve(), 4 workers, 8 raw requesters", "serve_8c", ">=", 0.9),
    ("core publish, 1 thread, 4 KiB payloads", "core_publish_size_4096B", ">=", 0.9),
    ("core publish, 1 thread, 16 KiB payloads", "core_publish_size_16384B", ">=", 0.9),
    ("sequential request p50", "request_p50", "<=", 1.1),
    ("sequential JetStream publish p50", "js_publish_p50", "<=", 1.1),
]


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "msg/s":
        return f"{value / 1000:,.1f} k/s" if value < 1e6 else f"{value / 1e6:,.2f} M/s"
    if unit == "us":
        return f"{value:,.0f} µs"
    if unit == "MiB":
        return f"{value:,.1f} MiB"
    return f"{value:.3g} {unit}"


def machine() -> dict[str, str]:
    cpu = "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        nats_py = importlib.metadata.version("nats-py")
    except importlib.metadata.PackageNotFoundError:
        nats_py = "?"
    try:
        syncmsg_version = importlib.metadata.version("syncmsg")
    except importlib.metadata.PackageNotFoundError:
        syncmsg_version = "?"
    commit = _git("rev-parse", "--short", "HEAD")
    if commit and _git("status", "--porcelain", "--", "syncmsg"):
        commit += " (syncmsg/ has uncommitted changes)"
    try:
        server = server_version(find_server_binary())
    except SystemExit:
        server = "?"
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "OS": platform.platform(),
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "nats-py": nats_py,
        "nats-server": server,
        "syncmsg": f"{syncmsg_version}, commit {commit or '?'}",
        "load average (1/5/15 min, at the end)": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args],
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except OSError:
        return ""


def write_report(
    out: Path,
    lines: list[dict[str, Any]],
    problems: dict[tuple[str, str], str],
    *,
    groups: tuple[str, ...],
    command: str,
    repeat: int,
    quick: bool,
    elapsed: float,
    jobs: list[Any],
    facts: dict[str, str] | None = None,
    when: str | None = None,
) -> None:
    by = {(line["metric"], line["client"]): line for line in lines}

    def value(metric: str, client: str) -> float | None:
        line = by.get((metric, client))
        return None if line is None else line["value"]

    def ratio(metric: str, client: str) -> float | None:
        line = by.get((metric, client))
        return None if line is None else line["ratio_to_raw"]

    def unavailable(group: str, client: str) -> str:
        note = problems.get((group, client))
        return f"n/a ({note})" if note else "n/a"

    group_of = {line["metric"]: line for line in lines}
    md: list[str] = []
    add = md.append
    add("# Performance")
    add("")
    add(
        "syncmsg against raw nats-py async, measured side by side in one run of "
        "`bench/run.py`, with the naive `run_coroutine_threadsafe` wrapper for scale. "
        "This file is generated; rerun the command below to refresh it."
    )
    add("")
    add('<!-- skip: next "takes about 5 minutes on 2 cores, and rewrites this page" -->')
    add("```sh")
    add(command)
    add("```")
    add("")
    add(
        f"Run on {when or f'{dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}'}, "
        f"{repeat} repetition(s) "
        f"per measurement{' (--quick: smaller counts)' if quick else ''}, "
        f"{elapsed:.0f} s in all. Values are medians over the repetitions; a ratio is "
        "syncmsg's (or the naive wrapper's) median divided by raw nats-py's median from the "
        "same run. The machine is shared and noisy: expect ±10–20 % between runs, and "
        "read the ratios rather than the absolute numbers."
    )
    add("")
    add("## Results")
    add("")
    add(
        "| metric | raw nats-py | syncmsg | naive wrapper | syncmsg ÷ raw | naive ÷ raw "
        "| target | met? |"
    )
    add("|---|---:|---:|---:|---:|---:|---|---|")
    for label, metric, comparison, target in MAIN_ROWS:
        unit = group_of.get(metric, {}).get("unit", "")
        group = _group_for(metric, jobs)
        if group not in groups:
            continue
        cells = []
        for client in ("raw", "syncmsg", "naive"):
            v = value(metric, client)
            cells.append(
                fmt(v, unit)
                if v is not None
                else ("n/a" if group not in groups else unavailable(group, client))
            )
        r_sync, r_naive = ratio(metric, "syncmsg"), ratio(metric, "naive")
        if comparison is None or target is None:
            target_text, met = "(report)", ""
        else:
            sign = "≥" if comparison == ">=" else "≤"
            target_text = f"{sign} {target:g}×"
            if r_sync is None:
                met = "–"
            elif (r_sync >= target) if comparison == ">=" else (r_sync <= target):
                met = "yes"
            else:
                met = "**no**"
        add(
            f"| {label} | {' | '.join(cells)} | {_r(r_sync)} | {_r(r_naive)} | "
            f"{target_text} | {met} |"
        )
    buffer_tests = [
        (metric, label)
        for metric, label in BUFFER_ROWS
        if by.get((metric, "syncmsg")) is not None or by.get((metric, "raw")) is not None
    ]
    for metric, label in buffer_tests:
        line = by.get((metric, "syncmsg"))
        raw_line = by.get((metric, "raw"))
        raw_cell = fmt(raw_line["value"], "MiB") if raw_line else "n/a"
        sync_cell = fmt(line["value"], "MiB") if line else unavailable("buffer", "syncmsg")
        met = "–" if line is None else ("yes" if _bounded(line) else "**no**")
        add(
            f"| {label}: RSS growth | {raw_cell} | {sync_cell} | – | – | – | "
            f"BufferFullError once the reconnect buffer is full; ≤ {BUFFER_LIMIT_MIB} MiB "
            f"| {met} |"
        )
    if not buffer_tests and "buffer" in groups:
        add(
            f"| publishing while the server is down | – | {unavailable('buffer', 'syncmsg')} "
            "| – | – | – | bounded | – |"
        )
    add("")
    add(
        "Throughputs are messages per second with 128-byte payloads; latencies are per "
        "call, in microseconds."
    )
    add("")

    if buffer_tests:
        add("### Publishing while the server is down")
        add("")
        add(
            "The client connects, the server is killed, and once the client has noticed, "
            "the publishes are attempted: 1,000,000 of 128 B from one thread, and 20,000 of "
            "64 KiB from 8 threads (8 asyncio tasks for raw nats-py). *Bounded* means "
            "syncmsg raised `BufferFullError`, accepted at most "
            f"{BUFFER_SLACK:g}× its reconnect buffer, and its RSS grew by at most "
            f"{BUFFER_LIMIT_MIB} MiB."
        )
        add("")
        header = ["| |"]
        rule = ["|---|"]
        columns: list[dict[str, Any] | None] = []
        for metric, _label in buffer_tests:
            tag = "1 thread, 128 B" if metric == "buffer_rss_growth" else "8 threads, 64 KiB"
            for client, name in (("raw", "raw nats-py"), ("syncmsg", "syncmsg")):
                header.append(f" {name}, {tag} |")
                rule.append("---:|")
                columns.append(by.get((metric, client)))
        add("".join(header))
        add("".join(rule))
        rows = [
            ("reconnect buffer (bytes)", "buffer_limit_bytes", "{:,}"),
            ("publishes accepted before the first error", "first_error_at", "{:,}"),
            ("publishes accepted in all", "accepted", "{:,}"),
            ("bytes accepted", "accepted_bytes", "{:,}"),
            ("publishes refused", "errors", "{:,}"),
            ("error raised", "error_type", "`{}`"),
            ("RSS growth at the end (MiB)", "value", "{:.1f}"),
            ("peak RSS growth (MiB)", "peak_growth", "{:.1f}"),
            ("time per publish, mostly refused (ns)", "ns_per_publish", "{:,.0f}"),
        ]
        for label, key, pattern in rows:
            cells = [
                "n/a" if line is None or line.get(key) is None else pattern.format(line[key])
                for line in columns
            ]
            add(f"| {label} | {' | '.join(cells)} |")
        add("")

    sizes = [m for m in _ordered_metrics(lines) if m.startswith("core_publish_size_")]
    if sizes:
        add("## Throughput against payload size (core publish)")
        add("")
        add(
            "One publishing thread, and for the large payloads also 8 threads (raw nats-py: "
            "8 asyncio tasks). CPU is process CPU time per message over the timed window."
        )
        add("")
        add(
            "| payload | threads | raw nats-py | syncmsg | syncmsg ÷ raw | raw MB/s "
            "| syncmsg MB/s | raw CPU/msg | syncmsg CPU/msg |"
        )
        add("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for metric in sorted(sizes, key=_size_key):
            count, size = _size_key(metric)
            raw_v, sync_v = value(metric, "raw"), value(metric, "syncmsg")
            add(
                f"| {_size(size)} | {count} | {fmt(raw_v, 'msg/s')} | {fmt(sync_v, 'msg/s')} | "
                f"{_r(ratio(metric, 'syncmsg'))} | {_mb(raw_v, size)} | {_mb(sync_v, size)} | "
                f"{_cpu(by.get((metric, 'raw')))} | {_cpu(by.get((metric, 'syncmsg')))} |"
            )
        add("")
    requests = [
        m
        for m in _ordered_metrics(lines)
        if m.startswith(("request_threads_", "request_e2e_", "serve_"))
    ]
    if requests:
        add("## Concurrent requests")
        add("")
        add(
            "Requests per second, and the latency each request saw (p50 / p99). *threads N*: "
            "N requesting threads (raw nats-py: N tasks) of the client under test against "
            "the shared raw nats-py responder, the request side alone. *serve*: the client "
            "under test answers (syncmsg `serve()` with 4 workers, raw nats-py an async "
            "callback) for a raw nats-py process requesting from 8 tasks, the serve side "
            "alone; its CPU is the responder's. *end to end*: 8 threads and a responder in "
            "another process, both of the client under test."
        )
        add("")
        add(
            "| measurement | raw nats-py | syncmsg | naive wrapper | syncmsg ÷ raw "
            "| p50 raw / syncmsg | p99 raw / syncmsg | CPU/request raw / syncmsg |"
        )
        add("|---|---:|---:|---:|---:|---:|---:|---:|")
        for metric in requests:
            raw_line, sync_line = by.get((metric, "raw")), by.get((metric, "syncmsg"))
            add(
                f"| {_request_label(metric)} | {fmt(value(metric, 'raw'), 'msg/s')} | "
                f"{fmt(value(metric, 'syncmsg'), 'msg/s')} | "
                f"{fmt(value(metric, 'naive'), 'msg/s') if by.get((metric, 'naive')) else '–'} | "
                f"{_r(ratio(metric, 'syncmsg'))} | "
                f"{_pair(raw_line, sync_line, 'p50_us')} | {_pair(raw_line, sync_line, 'p99_us')} | "
                f"{_cpu(raw_line)} / {_cpu(sync_line)} |"
            )
        add("")
    threads = [m for m in _ordered_metrics(lines) if m.startswith("core_publish_threads_")]
    if threads:
        add("## Throughput against publishing threads (core publish, 128 B, aggregate)")
        add("")
        add(
            "Raw nats-py has no threads: its column is the same number of asyncio tasks "
            "publishing concurrently on one loop."
        )
        add("")
        add("| threads | raw nats-py (tasks) | syncmsg | naive wrapper | syncmsg ÷ raw |")
        add("|---:|---:|---:|---:|---:|")
        for metric in threads:
            count = metric.removeprefix("core_publish_threads_")
            add(
                f"| {count} | {fmt(value(metric, 'raw'), 'msg/s')} | "
                f"{fmt(value(metric, 'syncmsg'), 'msg/s')} | "
                f"{fmt(value(metric, 'naive'), 'msg/s')} | {_r(ratio(metric, 'syncmsg'))} |"
            )
        add("")

    cpu_rows = [
        m
        for m in _ordered_metrics(lines)
        if any("cpu_us_per_msg" in by.get((m, c), {}) for c in ("raw", "syncmsg"))
        and not m.startswith(
            (
                "core_publish_size_",
                "core_publish_threads_",
                "request_threads_",
                "request_e2e_",
                "serve_",
            )
        )
    ]
    if cpu_rows:
        add("## CPU per message")
        add("")
        add(
            "Process CPU time (all threads) over the timed window, divided by the messages: "
            "less sensitive to a busy neighbour than the rates above, so a useful second "
            "opinion on this machine. Lower is better."
        )
        add("")
        add("| measurement | raw nats-py | syncmsg | naive wrapper | syncmsg ÷ raw |")
        add("|---|---:|---:|---:|---:|")
        for metric in cpu_rows:
            cells = []
            for client in ("raw", "syncmsg", "naive"):
                line = by.get((metric, client))
                cpu = None if line is None else line.get("cpu_us_per_msg")
                cells.append("–" if cpu is None else f"{cpu:,.1f} µs")
            raw_cpu = (by.get((metric, "raw")) or {}).get("cpu_us_per_msg")
            sync_cpu = (by.get((metric, "syncmsg")) or {}).get("cpu_us_per_msg")
            ratio_text = _r(sync_cpu / raw_cpu) if raw_cpu and sync_cpu else "–"
            add(f"| {metric} | {' | '.join(cells)} | {ratio_text} |")
        add("")

    add("## Peak RSS")
    add("")
    add(
        "Peak resident memory of the measuring process, the largest over its measurements "
        "and repetitions. It includes the interpreter and the imports (syncmsg also loads "
        "pydantic), and for the sweeps the largest payload or thread count."
    )
    add("")
    add("| measurement | raw nats-py | syncmsg | naive wrapper |")
    add("|---|---:|---:|---:|")
    peaks: dict[str, dict[str, float]] = {}
    for line in lines:
        metric = line["metric"]
        name = (
            "payload-size sweep"
            if metric.startswith("core_publish_size_")
            else "thread sweep"
            if metric.startswith("core_publish_threads_")
            else metric.removesuffix("_p50").removesuffix("_p99")
        )
        cell = peaks.setdefault(name, {})
        cell[line["client"]] = max(cell.get(line["client"], 0.0), line["peak_rss_mib"])
    for name, cell in peaks.items():
        cells = [
            "–" if c not in cell else f"{cell[c]:.0f} MiB" for c in ("raw", "syncmsg", "naive")
        ]
        add(f"| {name} | {' | '.join(cells)} |")
    add("")

    add("## Machine")
    add("")
    add("| | |")
    add("|---|---|")
    for key, text in (facts or machine()).items():
        add(f"| {key} | {text} |")
    add("")

    add("## How it is measured")
    add("")
    add(
        "- `bench/run.py` starts its own nats-server (loopback, free port, JetStream in a "
        "temporary directory) and runs each measurement in a **fresh Python process per "
        "client and repetition**, the clients interleaved within each round so that noise "
        "from the shared machine hits all of them alike. Only the client under test is "
        "imported in that process."
    )
    add(
        "- **Publishing:** every client publishes the same N messages (the naive wrapper "
        "fewer: it is about 30× slower and only there for scale) after a warm-up, and the "
        "clock stops after a flush, i.e. once the server has received everything. Threads "
        "start together behind a barrier."
    )
    add(
        "- **Request/reply:** the responder is one raw nats-py process shared by all "
        "clients; each client makes sequential requests after 200 warm-up ones; p50 and "
        "p99 are over all requests of one repetition."
    )
    add(
        "- **Concurrent requests:** N threads (raw nats-py: N tasks) start together behind a "
        "barrier and each makes its share of the requests in sequence, timing each one; the "
        "rate is all requests over the wall time. The serve side runs the responder in the "
        "measuring process (syncmsg `serve()` with 4 workers, raw nats-py an async "
        "callback) and a raw nats-py process sends the requests from 8 tasks; its CPU per "
        "request is the responder process's. End to end, the responder is a second process "
        "of the same client (`bench/_responder.py`)."
    )
    add(
        "- **Subscribing:** a separate publisher process writes pre-built PUB commands to "
        "a plain socket (so it costs almost no CPU), and throughput is the time from the "
        "first to the last message seen by the handler. Every client gets the same pending "
        "limits (1 Mi messages, 512 MiB) so none drops messages; the handler checks that "
        "messages arrive in order. syncmsg runs the handler on its worker thread "
        "(`workers=1`), the naive wrapper hands each message to a thread through a "
        "`queue.SimpleQueue`, raw nats-py runs it as the async callback."
    )
    add(
        "- **JetStream:** a fresh file-backed stream per measurement. Sequential publishes "
        "wait for each ack. Pipelined: raw nats-py `asyncio.gather` over windows of 256 "
        "`js.publish` calls (the naive wrapper the same through `run_coroutine_threadsafe`); "
        "syncmsg calls `publish_async` for every message, throttled by its own window "
        "(`max_pending`, 4096 by default), then `js.flush()`. syncmsg adds a `Nats-Msg-Id` "
        "header to every publish (exactly-once), raw nats-py none. Consuming: the "
        "stream is filled first, then raw nats-py does pull `fetch(256)` and `await "
        "msg.ack()` for each message; syncmsg `js.subscribe(..., durable=..., "
        "manual_ack=True)` (prefetch 256) with the handler on its worker thread calling "
        "`msg.ack()`; the clock runs from the first to the last "
        "message handled, and the consumer's ack-pending count is checked afterwards."
    )
    add(
        "- **Memory:** each reconnect-buffer test starts its own server, kills it, and "
        "publishes (1M × 128 B from one thread; 20k × 64 KiB from 8 threads); RSS is read "
        "from `/proc/self/status`, before and after."
    )
    add("")
    if problems:
        add("## Not measured in this run")
        add("")
        for (group, client), note in sorted(problems.items()):
            add(f"- {group}, {client}: {note}")
        add("")
    if FINDINGS.exists():
        add(FINDINGS.read_text(encoding="utf-8").rstrip())
        add("")
    before_after(add, by)
    md.extend(_sections_of_other_benchmarks(out, md))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(md), encoding="utf-8")


def _sections_of_other_benchmarks(out: Path, md: list[str]) -> list[str]:
    """The ``## `` sections of the page as it stands that this report does not write: those
    of the other benchmarks (the object store's, tracing's), which a rewrite must keep."""
    if not out.exists():
        return []
    ours = {line for line in "\n".join(md).splitlines() if line.startswith("## ")}
    kept: list[str] = []
    keeping = False
    for line in out.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            keeping = line not in ours
        if keeping:
            kept.append(line)
    if kept and md and md[-1] != "":
        kept.insert(0, "")
    return kept


def _bounded(line: dict[str, Any]) -> bool:
    limit = line.get("buffer_limit_bytes") or 0
    accepted = line.get("accepted_bytes")
    return bool(
        line.get("errors", 0) > 0
        and line.get("error_type") == "syncmsg.BufferFullError"
        and line["value"] <= BUFFER_LIMIT_MIB
        and line.get("peak_growth", 0) <= BUFFER_LIMIT_MIB
        and (accepted is None or accepted <= limit * BUFFER_SLACK + 65536)
    )


def _group_for(metric: str, jobs: list[Any]) -> str:
    for job in jobs:
        if metric in [p.get("metric") for p in job.params.get("points", [])]:
            return str(job.group)
        own = job.params.get("metric")
        if own and metric in (own, f"{own}_p50", f"{own}_p99"):
            return str(job.group)
    return {
        "request_p50": "request",
        "request_p99": "request",
        "js_publish_p50": "js-publish",
        "js_publish_p99": "js-publish",
        "js_publish_async": "js-publish-async",
        "core_subscribe": "core-subscribe",
        "js_consume": "js-consume",
    }.get(metric, "")


def _ordered_metrics(lines: list[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for line in lines:
        if line["metric"] not in seen:
            seen.append(line["metric"])
    return seen


def _r(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _size(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 else f"{size} B"


def _mb(rate: float | None, size: int) -> str:
    return "–" if rate is None else f"{rate * size / 1e6:,.1f}"


def _size_key(metric: str) -> tuple[int, int]:
    """(threads, payload size) of a ``core_publish_size_[8t_]<size>B`` metric."""
    rest = metric.removeprefix("core_publish_size_").removesuffix("B")
    threads = 1
    if "t_" in rest:
        head, rest = rest.split("t_", 1)
        threads = int(head)
    return threads, int(rest)


def _cpu(line: dict[str, Any] | None) -> str:
    cpu = None if line is None else line.get("cpu_us_per_msg")
    return "–" if cpu is None else f"{cpu:,.1f} µs"


def _pair(raw: dict[str, Any] | None, sync: dict[str, Any] | None, key: str) -> str:
    cells = ["–" if x is None or x.get(key) is None else f"{x[key]:,.0f}" for x in (raw, sync)]
    return f"{cells[0]} / {cells[1]} µs"


def _request_label(metric: str) -> str:
    if metric.startswith("request_threads_"):
        return f"threads {metric.removeprefix('request_threads_')}"
    if metric.startswith("serve_"):
        return "serve, 8 concurrent requesters"
    return "end to end, 8 threads, serve() with 4 workers"


def save_baseline(path: Path, lines: list[dict[str, Any]]) -> None:
    """Keep a run's summary as the *before* of the before/after table."""
    import json

    commit = _git("rev-parse", "--short", "HEAD")
    if commit and _git("status", "--porcelain", "--", "syncmsg"):
        commit += "+"
    data = {
        "commit": commit,
        "date": f"{dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        "lines": lines,
    }
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def before_after(add: Any, by: dict[tuple[str, str], dict[str, Any]]) -> None:
    """The table of issue 15: the saved baseline's ratios next to this run's."""
    import json

    if not BASELINE.exists():
        return
    base = json.loads(BASELINE.read_text(encoding="utf-8"))
    before = {(line["metric"], line["client"]): line for line in base["lines"]}
    add("## Before and after (issue 15)")
    add("")
    add(
        f"*Before*: `bench/baseline.json`, the core of commit `{base['commit']}` measured on "
        f"{base['date']} with this benchmark, on this machine. *After*: this run. Values are "
        "syncmsg ÷ raw nats-py from the same run, with syncmsg's and raw nats-py's medians "
        "and, where measured, syncmsg's CPU per message ÷ raw nats-py's (steadier than the "
        "rates when the neighbours' load changes between the two runs)."
    )
    add("")
    add("| measurement | before | after | target | met? |")
    add("|---|---:|---:|---:|---|")

    def cell(lines: dict[tuple[str, str], dict[str, Any]], metric: str) -> tuple[str, float | None]:
        sync, raw = lines.get((metric, "syncmsg")), lines.get((metric, "raw"))
        if sync is None or raw is None or sync.get("ratio_to_raw") is None:
            return "–", None
        unit = sync["unit"]
        r = float(sync["ratio_to_raw"])
        text = f"{r:.2f}× ({fmt(sync['value'], unit)} vs {fmt(raw['value'], unit)}"
        if sync.get("cpu_us_per_msg") and raw.get("cpu_us_per_msg"):
            text += f"; CPU {sync['cpu_us_per_msg'] / raw['cpu_us_per_msg']:.2f}×"
        return text + ")", r

    for label, metric, comparison, target in ISSUE_ROWS:
        was, _ = cell(before, metric)
        now, r = cell(by, metric)
        sign = "≥" if comparison == ">=" else "≤"
        met = (
            "–"
            if r is None
            else ("yes" if (r >= target if comparison == ">=" else r <= target) else "**no**")
        )
        add(f"| {label} | {was} | {now} | {sign} {target:g}× | {met} |")
    add("")

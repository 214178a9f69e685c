"""The W3C trace context crosses to nats.js and back unchanged (nats.js 2.x under Node).

nats.js is installed from the npm registry into ``tests/otel/nodejs/node_modules`` by the
first test that needs it (``npm ci``, pinned by the lock file).
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from _otel_helpers import Traces

import syncmsg

NODEJS = Path(__file__).parent / "nodejs"


@pytest.fixture(scope="session")
def nats_js() -> Callable[..., subprocess.Popen[str]]:
    """``run(*args)``: ``node interop.js *args``, with nats.js installed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the nats.js interop tests")
    with open(NODEJS / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # xdist workers install once, one at a time
        if not (NODEJS / "node_modules" / "nats" / "package.json").exists():
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=NODEJS,
                check=True,
                timeout=300,
            )

    def run(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [node, str(NODEJS / "interop.js"), *args],
            cwd=NODEJS,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    return run


def finish(process: subprocess.Popen[str]) -> str:
    try:
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 0, err
    return out


def test_a_nats_js_consumer_reads_the_traceparent_syncmsg_wrote(
    traces: Traces,
    client: syncmsg.Client,
    nats_url: str,
    nats_js: Callable[..., subprocess.Popen[str]],
) -> None:
    subject = "interop.to_js"
    consumer = nats_js("consume", nats_url, subject)
    try:
        assert consumer.stdout is not None
        assert consumer.stdout.readline().strip() == "ready"
        with traces.tracer.start_as_current_span("view"):
            client.publish(subject, b"from syncmsg")
        client.flush(timeout=5)
    finally:
        got = json.loads(finish(consumer).splitlines()[-1])
    (publish,) = traces.named(f"publish {subject}")
    ctx = publish.context
    assert got["traceparent"] == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"
    assert got["data"] == "from syncmsg"


def test_syncmsg_continues_a_trace_nats_js_started(
    traces: Traces,
    client: syncmsg.Client,
    nats_url: str,
    nats_js: Callable[..., subprocess.Popen[str]],
) -> None:
    subject = "interop.from_js"
    trace_id, span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with client.subscribe_sync(subject) as sub:
        finish(nats_js("publish", nats_url, subject, f"00-{trace_id}-{span_id}-01", "vendor=x"))
        msg = sub.next_msg(timeout=10)
    assert msg.headers is not None
    assert msg.headers["traceparent"] == f"00-{trace_id}-{span_id}-01"  # unchanged
    handled = []
    client.subscribe(subject, lambda m: handled.append(m))
    finish(nats_js("publish", nats_url, subject, f"00-{trace_id}-{span_id}-01", "vendor=x"))
    (process,) = traces.wait_for(f"process {subject}")
    assert f"{process.context.trace_id:032x}" == trace_id
    assert process.parent is not None and process.parent.is_remote
    assert f"{process.parent.span_id:016x}" == span_id
    assert process.context.trace_state.get("vendor") == "x"

"""Without OpenTelemetry installed: syncmsg imports and runs as before, and asking for
tracing is a clear ConfigurationError naming the extra (a subprocess that cannot import
``opentelemetry``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys

    class NoOpenTelemetry:
        def find_spec(self, name, path=None, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoOpenTelemetry())

    import syncmsg
    import syncmsg.otel

    url = sys.argv[1]
    with syncmsg.connect(url, timeout=5.0) as client:
        with client.subscribe_sync("absent.check") as sub:
            client.publish("absent.check", b"x")
            msg = sub.next_msg(timeout=5)
            assert msg.data == b"x" and msg.headers is None
    assert not syncmsg.otel.is_instrumented()
    for attempt in (syncmsg.otel.instrument, lambda: syncmsg.connect(url, tracing=True)):
        try:
            attempt()
        except syncmsg.ConfigurationError as exc:
            print("refused:", exc)
        else:
            raise SystemExit("tracing was accepted without OpenTelemetry")
    assert not any(name.startswith("opentelemetry") for name in sys.modules)
    print("ok")
    """
)


def test_without_opentelemetry_syncmsg_runs_and_tracing_is_refused(nats_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, nats_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "ok"
    refusals = [line for line in lines if line.startswith("refused:")]
    assert len(refusals) == 2
    assert all("pip install 'syncmsg[otel]'" in line for line in refusals)

"""Run ``python -m syncmsg`` as a subprocess, as a user or a script would."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from typing import Any


def cli_env(url: str | None, **extra: str) -> dict[str, str]:
    """The environment of a CLI process: no NATS_* of ours, NATS_URL=url, and the test's own
    config directory (XDG_CONFIG_HOME, set by tests/cli/conftest.py), so no saved context."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NATS_")}
    if "NATS_SERVER_BIN" in os.environ:
        env["NATS_SERVER_BIN"] = os.environ["NATS_SERVER_BIN"]
    if url is not None:
        env["NATS_URL"] = url
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run(
    url: str | None, *args: str, timeout: float = 60, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncmsg", *args],
        env=cli_env(url, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
    )


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("syncmsg: error:")]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], errors[0]


class Running:
    """A CLI process in the background whose output lines can be awaited with a timeout."""

    def __init__(self, url: str | None, *args: str, **env: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncmsg", *args],
            env=cli_env(url, **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout: queue.Queue[str] = queue.Queue()
        self.stderr: queue.Queue[str] = queue.Queue()
        self.out_lines: list[str] = []
        self.err_lines: list[str] = []
        for stream, lines, sink in (
            (self.proc.stdout, self.out_lines, self.stdout),
            (self.proc.stderr, self.err_lines, self.stderr),
        ):
            threading.Thread(target=self._pump, args=(stream, lines, sink), daemon=True).start()

    @staticmethod
    def _pump(stream: Any, lines: list[str], sink: queue.Queue[str]) -> None:
        with stream:  # closed at the end of the output, not left to garbage collection
            for line in stream:
                lines.append(line.rstrip("\n"))
                sink.put(line.rstrip("\n"))

    def next_line(self, which: str = "stdout", timeout: float = 30) -> str:
        source = self.stdout if which == "stdout" else self.stderr
        try:
            return source.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"no {which} line within {timeout}s; stderr so far: {self.err_lines}"
            ) from None

    def wait_for_stderr(self, text: str, timeout: float = 30) -> None:
        while text not in self.next_line("stderr", timeout):
            pass

    def wait(self, timeout: float = 30) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"still running after {timeout}s: {self.err_lines}") from None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

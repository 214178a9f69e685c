"""syncmsg server: a JetStream dev server with a persistent store, stopped by Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from _cli_helpers import Running, assert_one_line_error, run

import syncmsg
from syncmsg.jetstream import StreamSpec


def _start(store: Path, *extra: str) -> tuple[Running, dict[str, Any]]:
    server = Running(None, "server", "--port", "0", "--store-dir", str(store), "--json", *extra)
    try:
        ready = json.loads(server.next_line(timeout=60))
    except BaseException:
        server.close()
        raise
    return server, ready


@pytest.mark.slow
def test_server_runs_until_ctrl_c_and_keeps_its_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    server, ready = _start(store, "--http-port", "0")
    try:
        assert ready["event"] == "ready" and ready["jetstream"] is True
        assert ready["store_dir"] == str(store) and ready["monitor_url"].startswith("http://")
        with syncmsg.connect(ready["url"], timeout=5) as client:
            js = client.jetstream()
            js.ensure_stream(StreamSpec(name="KEPT", subjects=["kept.>"]))
            js.publish("kept.one", b"1")

        clash = run(None, "server", "--port", ready["url"].rsplit(":", 1)[1], "--store-dir",
                    str(tmp_path / "other"))  # fmt: skip
        assert_one_line_error(clash, 1, "--port 0")

        started = time.monotonic()
        server.proc.send_signal(signal.SIGINT)
        assert server.wait(15) == 0
        assert time.monotonic() - started < 10
    finally:
        server.close()
    assert json.loads(server.out_lines[-1]) == {"event": "stopped"}
    assert not server.err_lines or "Traceback" not in "\n".join(server.err_lines)

    again, ready = _start(store)
    try:
        with syncmsg.connect(ready["url"], timeout=5) as client:
            info = client.jetstream().stream_info("KEPT")
            assert info.state.messages == 1  # the store survived the restart
        os.kill(ready["pid"], signal.SIGKILL)  # the nats-server process dies under it
        assert again.wait(15) == 1
    finally:
        again.close()
    errors = [line for line in again.err_lines if line.startswith("syncmsg: error:")]
    assert len(errors) == 1 and "exited unexpectedly" in errors[0]


@pytest.mark.slow
def test_server_text_output_without_jetstream(tmp_path: Path) -> None:
    server = Running(None, "server", "--port", "0", "--no-jetstream", "--store-dir", str(tmp_path))
    try:
        line = server.next_line(timeout=60)
        assert line.startswith("nats-server ready at nats://127.0.0.1:") and "Ctrl-C" in line
        assert "JetStream" not in line
        url = line.split(" at ", 1)[1].split(";")[0]
        assert run(url, "health").returncode == 0
        server.proc.send_signal(signal.SIGINT)
        assert server.wait(15) == 0
        assert server.out_lines[-1] == "nats-server stopped"
    finally:
        server.close()

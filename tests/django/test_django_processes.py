"""The example project as it runs in production: gunicorn --preload with threads, and
``manage.py syncmsg_worker`` stopped with SIGTERM mid-load."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from _django_helpers import EXAMPLE, count_rows, example_env, free_port, migrate, wait_for

import syncmsg
from syncmsg.events import TaskEvent, ensure_event_streams, subject_for

TENANT = "5f0c6f9e-4c1a-4a3b-9d7e-2b8f1e6a9c01"


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status), json.loads(response.read())


def _stop(proc: subprocess.Popen[Any], deadline: float) -> tuple[int, float]:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(deadline)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise AssertionError(f"did not exit within {deadline}s of SIGTERM") from None
    return code, time.monotonic() - started


@pytest.mark.slow
def test_gunicorn_preload_threads_store_every_event_once(
    nats_server_factory: Any, tmp_path: Path
) -> None:
    server = nats_server_factory(jetstream=True)
    db = tmp_path / "db.sqlite3"
    migrate(db)
    port = free_port()
    log = (tmp_path / "gunicorn.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn",
            "--preload", "--workers", "3", "--threads", "4", "--worker-class", "gthread",
            "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "15",
            "example_site.wsgi:application",
        ],
        cwd=EXAMPLE,
        env=example_env(server.url, db, TASKBOARD_PUBLISH="on_commit"),  # publishes in the request
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: proc.poll() is not None or _get(f"{base}/health/nats/") == 200,
            60,
            "gunicorn to answer",
        )
        assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()

        total = 200
        with ThreadPoolExecutor(max_workers=40) as pool:
            replies = list(
                pool.map(
                    lambda i: _post(f"{base}/tasks/", {"title": f"task {i}", "kind": "load"}),
                    range(total),
                )
            )
        assert {status for status, _ in replies} == {201}
        event_ids = {body["event_id"] for _, body in replies}
        assert len(event_ids) == total

        with syncmsg.connect(server.url) as client:
            js = client.jetstream()
            info = js.stream_info("TASK_EVENTS")
            assert info.state.messages == total
            stored = [
                TaskEvent.from_wire(js.get_msg("TASK_EVENTS", seq).data)
                for seq in range(info.state.first_seq, info.state.last_seq + 1)
            ]
        assert {str(event.id) for event in stored} == event_ids
        assert {event.task_type for event in stored} == {"load"}
        assert count_rows(db, "select count(*), count(distinct event_id) from taskboard_task") == [
            (total, total)
        ]
    finally:
        code, took = _stop(proc, 30)
        log.close()
    assert code == 0, (tmp_path / "gunicorn.log").read_text()
    assert took < 20


def _start_worker(url: str, db: Path, log: Path) -> subprocess.Popen[str]:
    with log.open("a") as out:  # the child has its own descriptor; ours is not needed
        return subprocess.Popen(
            [sys.executable, "manage.py", "syncmsg_worker", "--shutdown-timeout", "15"],
            cwd=EXAMPLE,
            env=example_env(url, db, TASKBOARD_HANDLER_DELAY="0.002"),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )


def _processed(db: Path) -> int:
    return int(count_rows(db, "select count(*) from taskboard_processedmessage")[0][0])


@pytest.mark.slow
def test_worker_sigterm_mid_load_loses_nothing(nats_server_factory: Any, tmp_path: Path) -> None:
    server = nats_server_factory(jetstream=True)
    db = tmp_path / "db.sqlite3"
    migrate(db)
    total = 300
    with syncmsg.connect(server.url) as client:
        ensure_event_streams(client)
        js = client.jetstream()
        for _ in range(total):
            event = TaskEvent(
                source="load-test",
                tenant_id=TENANT,
                type="task.created",
                task_id=uuid4(),
                task_type="load",
                payload={},
            )
            js.publish_async(subject_for(event), event.to_wire(), msg_id=str(event.id))
        js.flush(30)
    log = tmp_path / "worker.log"

    first = _start_worker(server.url, db, log)
    try:
        wait_for(lambda: first.poll() is not None or _processed(db) >= 50, 60, "50 events handled")
        assert first.poll() is None, log.read_text()
    finally:
        code, took = _stop(first, 30)
    output = log.read_text()
    assert code == 0, output
    assert took < 5, output
    assert "syncmsg_worker: stopping" in output and "syncmsg_worker: stopped" in output
    after_first = _processed(db)
    assert 50 <= after_first < total, "the SIGTERM should land mid-load"

    with syncmsg.connect(server.url) as client:
        consumer = client.jetstream().consumer_info("TASK_EVENTS", "taskboard-task-consumer")
    # Everything the first worker handled was acked before it exited (one handler thread:
    # in stream order); the rest is still there for the next worker.
    assert consumer.ack_floor_stream_seq == after_first
    assert consumer.num_pending + consumer.num_ack_pending == total - after_first

    second = _start_worker(server.url, db, log)
    try:
        wait_for(
            lambda: second.poll() is not None or _processed(db) >= total,
            60,
            "every event handled",
        )
    finally:
        code, _ = _stop(second, 30)
    assert code == 0, log.read_text()

    rows = count_rows(
        db, "select count(*), count(distinct message_id), max(deliveries) "
        "from taskboard_processedmessage"
    )  # fmt: skip
    assert rows == [(total, total, 1)]  # every event once, none handled twice
    with syncmsg.connect(server.url) as client:
        consumer = client.jetstream().consumer_info("TASK_EVENTS", "taskboard-task-consumer")
    assert consumer.num_pending == 0 and consumer.num_ack_pending == 0

"""Durable consumers survive a client kill and a server restart: nothing lost, no acked repeat."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from _js_helpers import unique, wait_until

import syncmsg
from syncmsg.jetstream import StreamSpec

_CHILD = Path(__file__).with_name("js_consumer_child.py")


def _read_log(path: Path) -> tuple[dict[str, set[int]], dict[str, set[int]]]:
    got: dict[str, set[int]] = defaultdict(set)
    acked: dict[str, set[int]] = defaultdict(set)
    if not path.exists():
        return got, acked
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts[0] == "got" and len(parts) == 4:
            got[parts[1]].add(int(parts[2]))
        elif parts[0] == "acked" and len(parts) == 3:
            acked[parts[1]].add(int(parts[2]))
    return got, acked


def _start_child(url: str, stream: str, durable: str, log: Path, run: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(_CHILD), url, stream, durable, str(log), run],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # bounded: the child connects with a 5 s timeout
    assert line.strip() == "ready", proc.stderr.read() if proc.stderr else ""
    return proc


def _settled(js: Any, stream: str, durable: str) -> bool:
    try:
        info = js.consumer_info(stream, durable)
    except syncmsg.SyncMsgError:  # the API itself may be unavailable during an election
        return False
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


@pytest.mark.slow
def test_killed_consumer_process_resumes_its_durable(
    client: syncmsg.Client, nats_url: str, tmp_path: Path
) -> None:
    js = client.jetstream()
    name = unique("DUR")
    js.ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"], storage="file"))
    total = 300
    for i in range(total):
        js.publish_async(f"{name}.x", str(i))
    js.flush(20)
    log = tmp_path / "deliveries.log"

    first = _start_child(nats_url, name, "resume", log, "1")
    try:
        wait_until(lambda: len(_read_log(log)[1]["1"]) >= 60, 30, what="60 acks by run 1")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    got, acked = _read_log(log)
    assert len(got["1"]) < total, "the kill should land mid-way"

    second = _start_child(nats_url, name, "resume", log, "2")
    try:
        wait_until(lambda: _settled(js, name, "resume"), 60, what="run 2 acks the rest")
    finally:
        second.kill()
        second.wait(10)
    got, acked = _read_log(log)
    assert got["1"] | got["2"] == set(range(1, total + 1)), "a message was lost"
    assert not acked["1"] & got["2"], "a message acked by run 1 came back in run 2"
    # Only what run 1 had in hand when it died is seen twice (at most its prefetch).
    assert len(got["1"] & got["2"]) <= 20
    js.delete_stream(name)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["restart", "kill"])
def test_durable_consumer_survives_a_server_restart(nats_server_factory: Any, how: str) -> None:
    server = nats_server_factory(jetstream=True)
    client = syncmsg.connect(server.url, timeout=5.0, reconnect_wait=0.1)
    try:
        js = client.jetstream(timeout=2.0)
        name = unique("SRV")
        js.ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"], storage="file"))
        total = 200
        for i in range(total):
            js.publish_async(f"{name}.x", str(i))
        js.flush(20)
        lock = threading.Lock()
        deliveries: dict[int, int] = defaultdict(int)
        confirmed: set[int] = set()
        acked_then_seen: list[int] = []
        gate = threading.Event()
        gate.set()

        def handle(msg: syncmsg.Msg) -> None:
            seq = msg.metadata.sequence_stream
            with lock:
                if seq in confirmed:
                    acked_then_seen.append(seq)
                deliveries[seq] += 1
            gate.wait(30)
            try:
                msg.ack_sync(timeout=2)
            except syncmsg.SyncMsgError:
                return  # the ack may be lost with the server: it must come back then
            with lock:
                confirmed.add(seq)

        # ack_wait is long enough that a handler slowed by a loaded machine is not redelivered
        # while it still holds its message (that would be a legitimate redelivery, not a
        # lost ack); unacked messages still come back well within the wait below.
        js.subscribe(f"{name}.>", handle, durable="survivor", ack_wait=10.0, workers=2, prefetch=10)
        wait_until(lambda: len(confirmed) >= 80, 30, what="80 confirmed acks")
        if how == "kill":
            server.kill()
        else:
            server.stop()
        wait_until(lambda: not client.is_connected, 10, what="client notices")
        server.start()
        # An ack_sync may time out although the ack got through: the server is the judge.
        wait_until(lambda: _settled(js, name, "survivor"), 60, what="every message acked")
        assert set(deliveries) == set(range(1, total + 1)), "a message was lost"
        if how == "restart":
            assert not acked_then_seen, f"confirmed acks came back: {acked_then_seen}"
        # After kill -9, nats-server (R1 file storage) may have lost the acks of its last
        # few seconds: it writes consumer state lazily. Those come back: at least once,
        # never lost (docs/jetstream.md, "Durability, and what is not guaranteed").
    finally:
        client.close()


@pytest.mark.slow
def test_durable_consumer_survives_losing_its_leader_in_a_cluster(
    nats_cluster_factory: Any,
) -> None:
    cluster = nats_cluster_factory(3)
    client = syncmsg.connect(cluster.urls, timeout=5.0, reconnect_wait=0.1)
    try:
        js = client.jetstream(timeout=2.0)
        name = unique("CL")
        js.ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"], replicas=3))
        total = 200
        for i in range(total):
            js.publish_async(f"{name}.x", str(i))
        js.flush(20)
        lock = threading.Lock()
        deliveries: dict[int, int] = defaultdict(int)
        confirmed: set[int] = set()
        acked_then_seen: list[int] = []

        def handle(msg: syncmsg.Msg) -> None:
            seq = msg.metadata.sequence_stream
            with lock:
                if seq in confirmed:
                    acked_then_seen.append(seq)
                deliveries[seq] += 1
            try:
                msg.ack_sync(timeout=2)
            except syncmsg.SyncMsgError:
                return
            with lock:
                confirmed.add(seq)

        sub = js.subscribe(
            f"{name}.>", handle, durable="ha", ack_wait=2.0, prefetch=10, max_ack_pending=10
        )
        wait_until(lambda: len(confirmed) >= 60, 30, what="60 confirmed acks")
        leader = (sub.consumer_info().raw.get("cluster") or {}).get("leader")
        index = next(i for i, s in enumerate(cluster.servers) if s.name == leader)
        cluster.kill(index)
        # An ack_sync may time out although the ack got through: the server is the judge.
        wait_until(lambda: _settled(js, name, "ha"), 90, what="every message acked")
        assert set(deliveries) == set(range(1, total + 1)), "a message was lost"
        assert not acked_then_seen, f"confirmed acks came back: {acked_then_seen}"
    finally:
        client.close()

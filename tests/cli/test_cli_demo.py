"""syncmsg demo: one line per step, back-pressure on large counts, and honest shortfalls."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from syncmsg.cli import demo as demo_command
from syncmsg.cli import main


def _json(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_demo_explains_each_step(nats_url: str, capsys: Any) -> None:
    assert main(["demo", "--count", "1000", "-s", nats_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6
    assert lines[0] == f"using the server at {nats_url}"
    assert lines[1].startswith(f"connected to {nats_url} (nats-server ")
    assert lines[2].startswith("published 1,000 messages to demo.orders.*; ")
    assert " worker thread" in lines[2] and " handled them in " in lines[2]
    assert "paused" not in lines[2]  # 1,000 messages fit in the window
    assert lines[3].startswith("request on demo.time answered in ")
    assert lines[4].startswith("JetStream: stored 1,000 messages in stream DEMO (#1..#1000) in ")
    assert "durable consumer demo-worker acked 1,000 on " in lines[4]
    assert lines[4].endswith("; stream DEMO deleted")
    assert lines[5].startswith("health: ok, round trip ")


def test_large_count_applies_back_pressure(
    nats_url: str, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`demo --count 200000` used to run 30 s and fail with 'only 99584 of 200000 messages
    arrived': nothing held the publisher back. A small subscription buffer stands in for
    the large count here (the window is half the buffer), to keep the test quick."""
    monkeypatch.setenv("NATS_PENDING_MSGS_LIMIT", "1000")
    real_add = demo_command._Counter.add

    def slower_add(self: Any) -> None:  # handlers slower than publishing, on any machine
        time.sleep(0.0001)
        real_add(self)

    monkeypatch.setattr(demo_command._Counter, "add", slower_add)
    assert main(["demo", "--count", "10k", "-s", nats_url, "--json"]) == 0
    events = {event["event"]: event for event in _json(capsys.readouterr().out)}
    pubsub = events["pubsub"]
    assert (pubsub["published"], pubsub["handled"], pubsub["dropped"]) == (10_000, 10_000, 0)
    assert pubsub["window"] == 500 and pubsub["pauses"] > 0
    assert events["jetstream"]["published"] == events["jetstream"]["consumed"] == 10_000
    assert main(["demo", "--count", "3000", "-s", nats_url]) == 0
    line = capsys.readouterr().out.splitlines()[2]
    assert line.startswith("published 3,000 messages to demo.orders.*; ")
    assert "(publishing paused " in line and "to keep at most 500 messages in flight)" in line


def test_drops_are_reported_plainly(
    nats_url: str, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without back-pressure and with slow handlers, the client drops messages as a slow
    consumer: the demo says how many and why, and fails, instead of a bare shortfall."""
    monkeypatch.setenv("NATS_PENDING_MSGS_LIMIT", "100")
    monkeypatch.setattr(demo_command, "in_flight_window", lambda limit: 1_000_000)
    monkeypatch.setattr(demo_command, "STALL_SECONDS", 1.0)
    real_add = demo_command._Counter.add

    def slow_add(self: Any) -> None:
        time.sleep(0.001)
        real_add(self)

    monkeypatch.setattr(demo_command._Counter, "add", slow_add)
    assert main(["demo", "--count", "3000", "-s", nats_url]) == 1
    captured = capsys.readouterr()
    line = captured.out.splitlines()[2]
    assert line.startswith("published 3,000 messages to demo.orders.*; ")
    assert " handled " in line and " of 3,000: " in line
    assert "dropped by the client as a slow consumer (the workers fell behind and the " in line
    assert "subscription's buffer of 100 messages overflowed)" in line
    errors = [text for text in captured.err.splitlines() if text.startswith("syncmsg: error:")]
    assert len(errors) == 1 and "of 3,000 messages not handled" in errors[0]


def test_demo_starts_an_embedded_server_when_none_is_configured(
    capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NATS_URL", raising=False)
    assert main(["demo", "--count", "10"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("started an embedded nats-server with JetStream at nats://127.0.0.1:")

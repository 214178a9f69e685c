"""syncmsg pub / sub / req / reply / health against a real server."""

from __future__ import annotations

import json
import signal
import uuid
from typing import Any

import pytest
from _cli_helpers import Running, assert_one_line_error, json_lines, run

import syncmsg
from syncmsg.cli import main
from syncmsg.jetstream import StreamSpec
from syncmsg.testing import wait_until


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def test_pub_and_sub(nats_url: str) -> None:
    subject = _unique("cli.sub.")
    sub = Running(nats_url, "sub", subject, "--count", "3", "--json", "--wait", "30s", "--progress")
    try:
        sub.wait_for_stderr("listening on")
        first = run(nats_url, "pub", subject, "one", "-H", "Trace: abc")
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip() == f"published 1 message to {subject}"
        many = run(nats_url, "pub", subject, "n={n}", "--count", "2", "--json", "--progress")
        assert many.returncode == 0, many.stderr
        assert json_lines(many.stdout)[0]["published"] == 2
        assert f"publishing to {subject}: 2/2 msgs in " in many.stderr  # forced off a terminal
        assert sub.wait() == 0
    finally:
        sub.close()
    lines = [json.loads(line) for line in sub.out_lines]
    assert [line["data"] for line in lines] == ["one", "n=1", "n=2"]
    wait_until(
        lambda: any(
            line.startswith(f"receiving from {subject}: 3/3 msgs in ") for line in sub.err_lines
        )
    )
    assert lines[0]["headers"] == {"Trace": "abc"}
    assert {line["subject"] for line in lines} == {subject}


def test_sub_text_output_binary_and_stop_with_sigterm(
    nats_url: str, client: syncmsg.Client
) -> None:
    subject = _unique("cli.text.")
    sub = Running(nats_url, "sub", subject)
    try:
        sub.wait_for_stderr("listening on")
        client.publish(subject, b"\xff\xfe", headers={"K": "v"})
        client.flush()
        assert sub.next_line() == f"[#1] {subject}: \ufffd\ufffd"
        assert sub.next_line() == "  K: v"
        sub.proc.send_signal(signal.SIGTERM)
        assert sub.wait() == 0  # stopping a listener is not an error
    finally:
        sub.close()

    as_json = Running(nats_url, "sub", subject, "--json", "--count", "1")
    try:
        as_json.wait_for_stderr("listening on")
        client.publish(subject, b"\xff")
        client.flush()
        assert json.loads(as_json.next_line()) == {"subject": subject, "data_base64": "/w=="}
        assert as_json.wait() == 0
    finally:
        as_json.close()


def test_jetstream_pub_and_durable_sub(nats_url: str, client: syncmsg.Client) -> None:
    name = _unique("CLI")
    client.jetstream().ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"]))
    subject = f"{name}.orders"
    one = run(nats_url, "pub", subject, '{"id": 1}', "--js", "--msg-id", "order-1", "--json")
    assert json_lines(one.stdout) == [
        {"subject": subject, "stream": name, "seq": 1, "duplicate": False}
    ]
    many = run(
        nats_url, "pub", subject, '{"n": {n}}', "--js", "--count", "500",
        "--msg-id", "bulk-{n}", "--json", "--progress",
    )  # fmt: skip
    assert many.returncode == 0, many.stderr
    summary = json_lines(many.stdout)[0]
    assert summary["published"] == 500 and summary["duplicates"] == 0
    assert (summary["first_seq"], summary["last_seq"], summary["stream"]) == (2, 501, name)
    assert "500/500 msgs in " in many.stderr
    read = run(nats_url, "sub", f"{name}.>", "--durable", "cli", "--count", "3", "--json")
    assert read.returncode == 0, read.stderr
    assert [line["seq"] for line in json_lines(read.stdout)] == [1, 2, 3]
    info = client.jetstream().consumer_info(name, "cli")
    assert info.ack_floor_stream_seq == 3  # acked as printed


def test_expected_failures_print_one_line(nats_url: str) -> None:
    assert_one_line_error(run(nats_url, "pub", "x", "-H", "nocolon"), 2, "NAME:VALUE")
    assert_one_line_error(
        run(nats_url, "pub"), 2, "Missing argument 'SUBJECT'", "syncmsg pub --help"
    )


def test_req_and_reply(nats_url: str) -> None:
    subject = _unique("cli.svc.")
    echo = Running(nats_url, "reply", subject, "--count", "2", "--json")
    try:
        echo.wait_for_stderr("answering requests")
        text = run(nats_url, "req", subject, "hello")
        assert (text.returncode, text.stdout) == (0, "hello\n")
        as_json = run(nats_url, "req", subject, "-", "--json", "-H", "A: b", stdin='{"x": 1}')
        reply = json_lines(as_json.stdout)[0]
        assert reply["data"] == '{"x": 1}' and reply["rtt_ms"] > 0
        assert echo.wait() == 0
    finally:
        echo.close()
    served = [json.loads(line) for line in echo.out_lines]
    assert [s["data"] for s in served] == ["hello", '{"x": 1}']
    assert served[1]["headers"] == {"A": "b"}

    fixed = Running(nats_url, "reply", subject, "answer {n}", "-H", "X: y")
    try:
        fixed.wait_for_stderr("answering requests")
        with syncmsg.connect(nats_url) as client:
            reply = client.request(subject, "q", timeout=10)
        assert (reply.data, reply.headers) == (b"answer 1", {"X": "y"})
        fixed.proc.send_signal(signal.SIGINT)
        assert fixed.wait() == 0
    finally:
        fixed.close()
    assert fixed.out_lines[0].startswith(f"[#1] {subject}: q")


def test_req_failures_are_one_line(nats_url: str, client: syncmsg.Client) -> None:
    nobody = run(nats_url, "req", _unique("cli.nobody."), "x")
    assert_one_line_error(nobody, 5, "no responders")


def test_req_timeout_and_remote_error(nats_url: str, client: syncmsg.Client, capsys: Any) -> None:
    silent = _unique("cli.silent.")
    client.subscribe(silent, lambda msg: None)
    client.flush()
    assert main(["req", silent, "--timeout", "500ms", "--url", nats_url]) == 4
    assert capsys.readouterr().err.startswith("syncmsg: error: ")

    broken = _unique("cli.broken.")

    def fail(msg: syncmsg.Msg) -> None:
        raise ValueError("the handler broke")

    client.serve(broken, fail)
    client.flush()
    assert main(["req", broken, "--url", nats_url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("syncmsg: error: ") and err.count("\n") == 1
    assert "the handler broke" in err


def test_health(nats_url: str, refused_url: str) -> None:
    detail = run(nats_url, "health", "--json", "--jetstream")
    body = json_lines(detail.stdout)[0]
    assert body["ok"] is True and body["jetstream"] is True and body["rtt_ms"] > 0

    down_json = run(None, "health", "--json", "--timeout", "1s", NATS_URL=refused_url)
    assert_one_line_error(down_json, 3, "unhealthy")
    assert json_lines(down_json.stdout)[0] | {"error": None} == {
        "ok": False, "state": "unavailable", "connected": False, "server": None,
        "rtt_ms": None, "error": None,
    }  # fmt: skip


@pytest.mark.slow
def test_demo_with_an_embedded_server() -> None:
    result = run(None, "demo", "--count", "20", "--json")
    assert result.returncode == 0, result.stderr
    events = json_lines(result.stdout)
    assert [event["event"] for event in events] == [
        "server", "connect", "pubsub", "request", "jetstream", "health",
    ]  # fmt: skip
    assert events[0]["embedded"] is True and events[-1]["ok"] is True
    assert events[2]["handled"] == 20 and events[4]["consumed"] == 20
    assert result.stderr == ""  # --json and no terminal: no progress

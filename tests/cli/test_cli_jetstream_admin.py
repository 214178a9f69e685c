"""``syncmsg streams rm|purge|view|get`` and ``syncmsg consumers ls|info|add|rm|pause|resume|
unpin|reset``, in-process against a real nats-server: human units in flags and files, human
units in what they print, confirmation, exit codes."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from _cli_helpers import assert_one_line_error, run

import syncmsg
from syncmsg.cli import EXIT_NOT_FOUND, EXIT_USAGE, main
from syncmsg.cli import _confirm as confirm_module
from syncmsg.jetstream import StreamSpec

pytestmark = pytest.mark.timeout(90)

NS = 1_000_000_000


def _json(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _field(text: str, label: str) -> str:
    """The value printed for ``label`` by ``info`` (``  label   value``)."""
    for line in text.splitlines():
        if line.startswith(f"  {label}  "):
            return line[len(label) + 2 :].strip()
    raise AssertionError(f"no {label!r} in:\n{text}")


@pytest.fixture
def js(client: syncmsg.Client) -> syncmsg.JetStream:
    return client.jetstream()


@pytest.fixture
def stream(js: syncmsg.JetStream) -> Iterator[str]:
    """A stream ``CA…`` on ``CA….>`` holding five messages: ``.a`` 1, 3, 5 and ``.b`` 2, 4
    (each with an ``X-N`` header), and a sixth that is not UTF-8, on ``.bin``."""
    name = f"CA{uuid.uuid4().hex[:8].upper()}"
    js.ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"], storage="memory"))
    for n in range(1, 6):
        js.publish(
            f"{name}.{'a' if n % 2 else 'b'}",
            json.dumps({"n": n}).encode(),
            headers={"X-N": str(n)},
        )
    js.publish(f"{name}.bin", b"\xff\x00\xfe")
    yield name
    with contextlib.suppress(syncmsg.StreamNotFoundError):  # the test removed it
        js.delete_stream(name)


def cli(url: str, *args: str) -> int:
    return main([*args, "-s", url])


# ============================================================================ streams view, get


def test_view_shows_messages_oldest_first(nats_url: str, stream: str, capsys: Any) -> None:
    assert cli(nats_url, "streams", "view", stream) == 0
    lines = capsys.readouterr().out.splitlines()
    shown = [line for line in lines if line.startswith("[#")]
    assert [line.split("]")[0] for line in shown] == [f"[#{n}" for n in range(1, 7)]
    assert shown[0].startswith(f"[#1] {stream}.a (") and shown[0].endswith(' UTC): {"n": 1}')
    assert "  X-N: 1" in lines

    assert cli(nats_url, "streams", "view", stream, "2", "--id", "3", "--json") == 0
    seen = _json(capsys.readouterr().out)
    assert [(m["seq"], m["subject"], m["data"]) for m in seen] == [
        (3, f"{stream}.a", '{"n": 3}'),
        (4, f"{stream}.b", '{"n": 4}'),
    ]
    assert seen[0]["headers"]["X-N"] == "3" and seen[0]["stream"] == stream
    assert dt.datetime.fromisoformat(seen[0]["time"]).tzinfo is not None

    assert cli(nats_url, "streams", "view", stream, "--subject", f"{stream}.b", "--json") == 0
    assert [m["seq"] for m in _json(capsys.readouterr().out)] == [2, 4]
    assert cli(nats_url, "streams", "view", stream, "1k", "--since", "1h", "--json") == 0
    everything = _json(capsys.readouterr().out)
    assert len(everything) == 6 and everything[-1]["data_base64"] == "/wD+"

    assert cli(nats_url, "streams", "view", stream, "--subject", f"{stream}.none") == 0
    captured = capsys.readouterr()
    assert captured.out == "" and f"no messages in {stream} on {stream}.none" in captured.err


def test_view_of_a_stream_purged_since_an_hour(nats_url: str, stream: str, capsys: Any) -> None:
    assert cli(nats_url, "streams", "purge", stream, "--force") == 0
    capsys.readouterr()
    assert cli(nats_url, "streams", "view", stream, "--since", "1h") == 0
    assert f"no messages in {stream}" in capsys.readouterr().err


def test_get_by_sequence_and_last_for_a_subject(nats_url: str, stream: str, capsys: Any) -> None:
    assert cli(nats_url, "streams", "get", stream, "2") == 0
    text = capsys.readouterr().out
    assert text.startswith(f"{stream} #2 on {stream}.b, stored ") and " UTC\n" in text
    assert "headers:\n  X-N: 2\n" in text and text.rstrip().endswith('{"n": 2}')

    assert cli(nats_url, "streams", "get", stream, "--last-for", f"{stream}.a", "--json") == 0
    (last,) = _json(capsys.readouterr().out)
    assert (last["seq"], last["subject"], json.loads(last["data"])) == (5, f"{stream}.a", {"n": 5})
    assert cli(nats_url, "streams", "get", stream, "-S", f"{stream}.*", "--json") == 0
    assert _json(capsys.readouterr().out)[0]["seq"] == 6


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["get", "{s}", "99"], EXIT_NOT_FOUND, "no message at #99 in {s}"),
        (["get", "{s}", "-S", "{s}.nothing"], EXIT_NOT_FOUND, "no message on {s}.nothing"),
        (["get", "{s}"], EXIT_USAGE, "give a sequence SEQ or --last-for SUBJECT"),
        (["get", "{s}", "1", "-S", "{s}.a"], EXIT_USAGE, "give a sequence SEQ or --last-for"),
        (["get", "NOPE{s}", "1"], EXIT_NOT_FOUND, "no stream named 'NOPE{s}'"),
        (["view", "NOPE{s}"], EXIT_NOT_FOUND, "no stream named 'NOPE{s}'"),
        (["view", "{s}", "--id", "2", "--since", "1h"], EXIT_USAGE, "not both"),
        (["view", "{s}", "--since", "lately"], EXIT_USAGE, "not a duration: 'lately'"),
        (["view", "{s}", "0"], EXIT_USAGE, "'[COUNT]': must be at least 1"),
        (["purge", "{s}", "--seq", "2", "--keep", "1", "-f"], EXIT_USAGE, "not both"),
        (["purge", "{s}", "--keep", "many", "-f"], EXIT_USAGE, "not a count: 'many'"),
        (["purge", "NOPE{s}", "-f"], EXIT_NOT_FOUND, "no stream named 'NOPE{s}'"),
        (["rm", "NOPE{s}", "-f"], EXIT_NOT_FOUND, "no stream named 'NOPE{s}'"),
        (["rm", "{s}"], EXIT_USAGE, "refusing to delete stream {s} without --force"),
        (["purge", "{s}"], EXIT_USAGE, "refusing to purge stream {s} without --force"),
    ],
)
def test_stream_command_errors(
    args: list[str], code: int, words: str, nats_url: str, stream: str, js: Any, capsys: Any
) -> None:
    assert cli(nats_url, "streams", *[arg.format(s=stream) for arg in args]) == code
    err = capsys.readouterr().err
    assert err.startswith("syncmsg: error: ") and err.count("\n") == 1, err
    assert words.format(s=stream) in err, err
    assert js.stream_info(stream).state.messages == 6  # nothing was removed


# ============================================================================ streams purge, rm


def test_purge_by_subject_sequence_and_count(
    nats_url: str, stream: str, js: Any, capsys: Any
) -> None:
    assert cli(nats_url, "streams", "purge", stream, "--subject", f"{stream}.b", "-f") == 0
    assert capsys.readouterr().out == f"purged 2 messages from {stream}\n"
    assert js.stream_info(stream).state.messages == 4
    assert cli(nats_url, "streams", "purge", stream, "--seq", "4", "--force", "--json") == 0
    assert _json(capsys.readouterr().out) == [{"stream": stream, "purged": 2}]  # #1 and #3
    assert cli(nats_url, "streams", "purge", stream, "--keep", "1", "-f", "--json") == 0
    assert _json(capsys.readouterr().out) == [{"stream": stream, "purged": 1}]
    assert js.get_last_msg(stream, f"{stream}.>").seq == 6
    assert cli(nats_url, "streams", "purge", stream, "-f") == 0
    assert capsys.readouterr().out == f"purged 1 messages from {stream}\n"
    assert js.stream_info(stream).state.messages == 0


def test_rm_deletes_the_stream(nats_url: str, stream: str, js: Any, capsys: Any) -> None:
    assert cli(nats_url, "streams", "rm", stream, "--force", "--json") == 0
    assert _json(capsys.readouterr().out) == [{"stream": stream, "deleted": True}]
    with pytest.raises(syncmsg.StreamNotFoundError):
        js.stream_info(stream)


def test_a_terminal_is_asked_first(
    nats_url: str, stream: str, js: Any, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    questions: list[str] = []
    answers = [False, True]

    def ask(text: str, **_: Any) -> bool:
        questions.append(text)
        return answers.pop(0)

    monkeypatch.setattr(confirm_module, "_interactive", lambda: True)
    monkeypatch.setattr(click, "confirm", ask)
    assert cli(nats_url, "streams", "rm", stream) == 1
    assert "not confirmed: nothing was done" in capsys.readouterr().err
    assert js.stream_info(stream).state.messages == 6
    assert cli(nats_url, "streams", "purge", stream, "--subject", f"{stream}.a") == 0
    assert questions == [
        f"Really delete stream {stream} (6 messages, 0 consumers)?",
        f"Really purge stream {stream} (every message on {stream}.a; it holds 6)?",
    ]
    assert js.stream_info(stream).state.messages == 3


def test_a_script_without_force_is_refused_at_once(nats_url: str, stream: str, js: Any) -> None:
    # A real process whose stdin is a pipe: no terminal to ask on, so no waiting for one.
    result = run(nats_url, "streams", "rm", stream, stdin="y\n", timeout=30)
    assert_one_line_error(result, EXIT_USAGE, "without --force", "not a terminal")
    assert js.stream_info(stream).state.messages == 6
    result = run(nats_url, "streams", "rm", stream, "-f", timeout=30)
    assert result.returncode == 0 and result.stdout == f"deleted stream {stream}\n"


# ============================================================================ stream files, info


def test_stream_files_and_info_in_human_units(
    nats_url: str, js: Any, tmp_path: Path, capsys: Any
) -> None:
    name = f"CF{uuid.uuid4().hex[:8].upper()}"
    origin = f"{name}O"
    js.ensure_stream(StreamSpec(name=origin, subjects=[f"{origin}.>"], storage="memory"))
    spec_file = tmp_path / "streams.yaml"
    spec_file.write_text(
        f"name: {name}\n"
        "storage: memory\n"
        "max_age: 7d\n"
        "max_bytes: 1GiB\n"
        "max_msg_size: 1MiB\n"
        "max_msgs_per_subject: 10k\n"
        "duplicate_window: 90s\n"
        "subject_delete_marker_ttl: 15m\n"
        "allow_direct: true\n"
        "compression: s2\n"
        "sources:\n"
        f"  - name: {origin}\n"
        "    subject_transforms:\n"
        f"      - {{src: '{origin}.>', dest: '{name}.in.>'}}\n"
        f"republish: {{src: '{name}.>', dest: 'rep.{name}.>'}}\n"
    )
    try:
        assert cli(nats_url, "streams", "ensure", "--file", str(spec_file)) == 0
        assert capsys.readouterr().out.startswith(f"{name}: created")
        config = js.stream_info(name).config
        assert config.max_age == dt.timedelta(days=7) and config.max_bytes == 1 << 30
        assert config.subject_delete_marker_ttl == dt.timedelta(minutes=15)
        assert config.max_msgs_per_subject == 10_000 and config.max_msg_size == 1 << 20

        assert cli(nats_url, "streams", "info", name) == 0
        text = capsys.readouterr().out
        assert _field(text, "max age") == "7d" and _field(text, "max bytes") == "1 GiB"
        assert _field(text, "max message size") == "1 MiB"
        assert _field(text, "max per subject") == "10,000"
        assert _field(text, "duplicate window") == "1m30s"
        assert _field(text, "delete marker TTL") == "15m"
        assert _field(text, "compression") == "s2"
        assert f"name: {origin}" in _field(text, "sources")
        assert f"dest: rep.{name}.>" in _field(text, "republish")
        for nanos in ("604800000000000", "900000000000", "90000000000", "1073741824"):
            assert nanos not in text
        assert cli(nats_url, "streams", "info", name, "--json") == 0
        (raw,) = _json(capsys.readouterr().out)
        assert raw["config"]["subject_delete_marker_ttl"] == 900 * NS  # exact, for scripts

        # The same file again changes nothing; a change in units is found as drift.
        assert cli(nats_url, "streams", "ensure", "--file", str(spec_file), "--json") == 0
        assert _json(capsys.readouterr().out)[0]["action"] == "unchanged"
        spec_file.write_text(spec_file.read_text().replace("max_age: 7d", "max_age: 1w"))
        assert cli(nats_url, "streams", "ensure", "--file", str(spec_file), "--json") == 0
        assert _json(capsys.readouterr().out)[0]["action"] == "unchanged"  # 1w is 7d
        spec_file.write_text(spec_file.read_text().replace("max_age: 1w", "max_age: 36h"))
        assert cli(nats_url, "streams", "ensure", "--file", str(spec_file), "--json") == 0
        assert _json(capsys.readouterr().out)[0]["action"] == "updated"
        assert js.stream_info(name).config.max_age == dt.timedelta(hours=36)
    finally:
        js.delete_stream(name)
        js.delete_stream(origin)


# ============================================================================ consumers


def test_consumers_add_ls_info_rm(nats_url: str, stream: str, js: Any, capsys: Any) -> None:
    add = ["consumers", "add", stream, "billing", "--filter", f"{stream}.a", "--wait", "1m30s"]
    flags = ["--max-deliver", "5", "--inactive-threshold", "2h", "--max-pending", "10k"]
    assert cli(nats_url, *add, *flags, "--description", "bills") == 0
    assert capsys.readouterr().out == (
        f"consumer {stream} > billing: {stream}.a; ack explicit, 3 messages to deliver\n"
    )
    made = js.consumer_info(stream, "billing")
    assert made.config.ack_wait == dt.timedelta(seconds=90)
    assert made.config.inactive_threshold == dt.timedelta(hours=2)
    assert (made.config.max_deliver, made.config.max_ack_pending) == (5, 10_000)
    # The same configuration again succeeds; another one is refused.
    assert cli(nats_url, *add, *flags, "--description", "bills") == 0
    capsys.readouterr()
    assert cli(nats_url, *add, "--max-deliver", "7") == 1
    assert "billing" in capsys.readouterr().err

    backoff = ["consumers", "add", stream, "retry", "--wait", "30s", "--backoff", "5s,1m"]
    assert cli(nats_url, *backoff) == 0
    assert "--backoff sets the ack wait to its first step (5s)" in capsys.readouterr().err
    assert js.consumer_info(stream, "retry").config.ack_wait == dt.timedelta(seconds=5)
    assert cli(nats_url, "consumers", "rm", stream, "retry", "--force") == 0
    capsys.readouterr()

    assert (
        cli(nats_url, "consumers", "add", stream, "audit", "--deliver", "4", "--ack", "none") == 0
    )
    assert "3 messages to deliver" in capsys.readouterr().out  # #4, #5 and #6
    assert js.consumer_info(stream, "audit").config.opt_start_seq == 4

    assert cli(nats_url, "consumers", "ls", stream) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["NAME", "PENDING", "ACK", "PENDING", "REDELIVERED", "WAITING",
                                "LAST", "DELIVERY", "STATE", "FILTER"]  # fmt: skip
    assert [row.split()[0] for row in table[2:]] == ["audit", "billing"]
    assert table[3].split() == ["billing", "3", "0", "0", "0", "never", "active", f"{stream}.a"]
    assert cli(nats_url, "consumers", "ls", stream, "--json") == 0
    rows = {row["name"]: row for row in _json(capsys.readouterr().out)}
    assert rows["billing"]["filter_subjects"] == [f"{stream}.a"]
    assert rows["billing"]["num_pending"] == 3 and rows["billing"]["paused"] is False

    assert cli(nats_url, "consumers", "info", stream, "billing") == 0
    text = capsys.readouterr().out
    assert text.startswith(f"consumer {stream} > billing\n")
    assert _field(text, "ack wait") == "1m30s"
    assert _field(text, "inactive threshold") == "2h"
    assert _field(text, "max ack pending") == "10,000"
    assert _field(text, "description") == "bills" and _field(text, "unprocessed") == "3"
    assert "90000000000" not in text and "7200000000000" not in text and "_nats" not in text
    assert cli(nats_url, "consumers", "info", stream, "billing", "--json") == 0
    (raw,) = _json(capsys.readouterr().out)
    assert raw["config"]["ack_wait"] == 90 * NS and raw["num_pending"] == 3

    assert cli(nats_url, "consumers", "rm", stream, "audit", "-f", "--json") == 0
    assert _json(capsys.readouterr().out) == [
        {"stream": stream, "consumer": "audit", "deleted": True}
    ]
    assert js.consumer_names(stream) == ["billing"]


def test_consumer_config_files_take_human_units(
    nats_url: str, stream: str, js: Any, tmp_path: Path, capsys: Any
) -> None:
    config_file = tmp_path / "jobs.yaml"
    config_file.write_text(
        f"filter_subject: {stream}.b\n"
        "ack_wait: 45s\n"
        "inactive_threshold: 1d\n"
        "max_deliver: 4\n"
        "description: from a file\n"
    )
    args = ["consumers", "add", stream, "jobs", "--config", str(config_file), "--max-deliver", "9"]
    assert cli(nats_url, *args, "--json") == 0
    (created,) = _json(capsys.readouterr().out)
    assert created["config"]["ack_wait"] == 45 * NS
    assert created["config"]["inactive_threshold"] == 86400 * NS
    assert created["config"]["max_deliver"] == 9  # the flag wins over the file
    assert created["config"]["filter_subject"] == f"{stream}.b"

    json_file = tmp_path / "redeliver.json"
    json_file.write_text(json.dumps({"backoff": ["1s", "30s", "5m"], "max_deliver": 4}))
    assert cli(nats_url, "consumers", "add", stream, "retry", "--config", str(json_file)) == 0
    capsys.readouterr()
    backoff = js.consumer_info(stream, "retry").config.backoff
    assert backoff == (dt.timedelta(seconds=1), dt.timedelta(seconds=30), dt.timedelta(minutes=5))
    assert cli(nats_url, "consumers", "info", stream, "retry") == 0
    assert _field(capsys.readouterr().out, "backoff") == "1s, 30s, 5m"

    bad = tmp_path / "bad.yaml"
    bad.write_text("ack_wait: a while\n")
    assert cli(nats_url, "consumers", "add", stream, "bad", "--config", str(bad)) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "ack_wait: not a duration: 'a while'" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["ls", "NOPE{s}"], EXIT_NOT_FOUND, "no stream named 'NOPE{s}'"),
        (["info", "{s}", "nobody"], EXIT_NOT_FOUND, "no consumer 'nobody' on stream '{s}'"),
        (["info", "NOPE{s}", "nobody"], EXIT_NOT_FOUND, "no stream named 'NOPE{s}'"),
        (["rm", "{s}", "nobody", "-f"], EXIT_NOT_FOUND, "no consumer 'nobody'"),
        (["pause", "{s}", "nobody", "1h", "-f"], EXIT_NOT_FOUND, "no consumer 'nobody'"),
        (["resume", "{s}", "nobody", "-f"], EXIT_NOT_FOUND, "no consumer 'nobody'"),
        (["add", "NOPE{s}", "c"], EXIT_NOT_FOUND, "no stream named 'NOPE{s}'"),
        (["add", "{s}", "c", "--wait", "soon"], EXIT_USAGE, "not a duration: 'soon'"),
        (["add", "{s}", "c", "--deliver", "yesterday"], EXIT_USAGE, "--deliver 'yesterday'"),
        (["add", "{s}", "c", "--backoff", "1s,x"], EXIT_USAGE, "--backoff: not a duration"),
        (["add", "{s}", "c", "--pinned-groups", "a", "--overflow-groups", "b"], EXIT_USAGE,
         "not both"),
        (["add", "{s}", "a.b"], EXIT_USAGE, "invalid consumer 'a.b'"),
        (["pause", "{s}", "c", "sometime", "-f"], EXIT_USAGE, "neither a duration"),
        (["pause", "{s}", "c", "2020-01-01 00:00", "-f"], EXIT_USAGE, "not in the future"),
        (["pause", "{s}", "c", "1h"], EXIT_USAGE, "refusing to pause consumer {s} > c"),
        (["rm", "{s}", "c"], EXIT_USAGE, "refusing to delete consumer {s} > c"),
    ],
)  # fmt: skip
def test_consumer_command_errors(
    args: list[str], code: int, words: str, nats_url: str, stream: str, js: Any, capsys: Any
) -> None:
    js.add_consumer(stream, syncmsg.jetstream.ConsumerConfig(durable_name="c"))
    assert cli(nats_url, "consumers", *[arg.format(s=stream) for arg in args]) == code
    err = capsys.readouterr().err
    assert err.startswith("syncmsg: error: ") and err.count("\n") == 1, err
    assert words.format(s=stream) in err, err
    info = js.consumer_info(stream, "c")
    assert info.paused is False and sorted(js.consumer_names(stream)) == ["c"]


def test_pause_and_resume(nats_url: str, stream: str, js: Any, capsys: Any) -> None:
    assert cli(nats_url, "consumers", "add", stream, "worker") == 0
    capsys.readouterr()
    before = dt.datetime.now(dt.timezone.utc)
    assert cli(nats_url, "consumers", "pause", stream, "worker", "1h30m", "-f") == 0
    line = capsys.readouterr().out
    assert line.startswith(f"paused {stream} > worker until ") and "(1h30m from now)" in line
    info = js.consumer_info(stream, "worker")
    assert info.paused and info.pause_until is not None
    wanted = before + dt.timedelta(minutes=90)
    assert abs((info.pause_until - wanted).total_seconds()) < 30

    assert cli(nats_url, "consumers", "ls", stream, "--json") == 0
    assert _json(capsys.readouterr().out)[0]["paused"] is True
    assert cli(nats_url, "consumers", "ls", stream) == 0
    assert " paused " in capsys.readouterr().out.splitlines()[2]
    assert cli(nats_url, "consumers", "info", stream, "worker") == 0
    text = capsys.readouterr().out
    assert _field(text, "paused") == "yes" and _field(text, "paused until").endswith(" UTC")
    assert _field(text, "pause remaining").startswith("1h")

    # A time instead of a duration (UTC unless it says otherwise), and JSON for scripts.
    until = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).replace(microsecond=0)
    shown = until.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat()
    assert cli(nats_url, "consumers", "pause", stream, "worker", shown, "-f", "--json") == 0
    (paused,) = _json(capsys.readouterr().out)
    assert paused["paused"] is True
    assert dt.datetime.fromisoformat(paused["pause_until"]) == until
    assert 47 * 3600 * NS < paused["pause_remaining"] <= 48 * 3600 * NS

    assert cli(nats_url, "consumers", "resume", stream, "worker", "-f") == 0
    assert capsys.readouterr().out == f"resumed {stream} > worker\n"
    assert js.consumer_info(stream, "worker").paused is False
    assert cli(nats_url, "consumers", "resume", stream, "worker", "--json") == 0  # no question
    (resumed,) = _json(capsys.readouterr().out)
    assert resumed == {"stream": stream, "consumer": "worker", "paused": False,
                       "pause_until": None, "pause_remaining": None}  # fmt: skip
    assert cli(nats_url, "consumers", "resume", stream, "worker") == 0
    assert capsys.readouterr().out == f"{stream} > worker was not paused\n"


def test_add_paused_pinned_unpin_and_reset(
    nats_url: str, stream: str, js: Any, capsys: Any
) -> None:
    args = ["consumers", "add", stream, "jobs", "--pinned-groups", "workers", "--pinned-ttl", "2m"]
    assert cli(nats_url, *args, "--pause", "1h") == 0
    capsys.readouterr()
    info = js.consumer_info(stream, "jobs")
    assert info.paused and info.config.priority_groups == ("workers",)
    assert info.config.priority_policy is not None
    assert info.config.priority_policy.value == "pinned_client"
    assert cli(nats_url, "consumers", "info", stream, "jobs") == 0
    text = capsys.readouterr().out
    assert _field(text, "pinned TTL") == "2m" and _field(text, "priority groups") == "workers"
    assert cli(nats_url, "consumers", "resume", stream, "jobs", "-f") == 0
    capsys.readouterr()

    sub = js.pull_subscribe(
        f"{stream}.>",
        durable="jobs",
        stream=stream,
        priority_policy="pinned_client",
        group="workers",
        pinned_ttl=120,
    )
    try:
        got = sub.fetch(2, timeout=5)
        for msg in got:
            msg.ack_sync(timeout=5)
        assert [m.metadata.sequence_stream for m in got] == [1, 2]
        assert js.consumer_info(stream, "jobs").priority_groups[0].pinned_client_id
        assert cli(nats_url, "consumers", "ls", stream) == 0
        assert "pinned (workers)" in capsys.readouterr().out
        assert cli(nats_url, "consumers", "unpin", stream, "jobs", "workers", "-f", "--json") == 0
        assert _json(capsys.readouterr().out)[0]["unpinned"] is True
    finally:
        sub.unsubscribe()

    # Reset (nats-server 2.14): back to the ack floor, or to a sequence.
    assert cli(nats_url, "consumers", "reset", stream, "jobs", "--seq", "5", "-f") == 0
    assert capsys.readouterr().out == (
        f"reset {stream} > jobs: delivering from #5, 2 messages to deliver\n"
    )
    assert js.consumer_info(stream, "jobs").num_pending == 2
    assert cli(nats_url, "consumers", "reset", stream, "jobs", "-f", "--json") == 0
    (reset,) = _json(capsys.readouterr().out)
    assert reset["name"] == "jobs" and "config" in reset
    assert cli(nats_url, "consumers", "reset", stream, "jobs") == EXIT_USAGE
    assert "refusing to reset consumer" in capsys.readouterr().err


def test_a_server_too_old_for_reset_says_which_it_needs(
    nats_server_factory: Any, capsys: Any
) -> None:
    # nats-server 2.12 (JetStream API level 3), faked by a responder on a plain server: it
    # has the consumer, and no $JS.API.CONSUMER.RESET.
    server = nats_server_factory(jetstream=False)
    asked: list[str] = []
    consumer = {
        "stream_name": "OLD",
        "name": "jobs",
        "created": "2026-01-01T00:00:00Z",
        "config": {"durable_name": "jobs", "ack_policy": "explicit", "deliver_policy": "all"},
        "delivered": {"consumer_seq": 0, "stream_seq": 0},
        "ack_floor": {"consumer_seq": 0, "stream_seq": 0},
        "num_ack_pending": 0,
        "num_redelivered": 0,
        "num_waiting": 0,
        "num_pending": 0,
    }

    def answer(msg: syncmsg.Msg) -> None:
        asked.append(msg.subject)
        if msg.subject == "$JS.API.INFO":
            msg.respond(json.dumps({"api": {"level": 3, "total": 0, "errors": 0}}))
        elif msg.subject == "$JS.API.CONSUMER.INFO.OLD.jobs":
            msg.respond(json.dumps(consumer))
        else:
            msg.respond(json.dumps({"error": {"code": 400, "description": "unknown"}}))

    with syncmsg.connect(server.url, timeout=5) as responder:
        responder.subscribe("$JS.API.>", answer)
        responder.flush()
        assert main(["consumers", "reset", "OLD", "jobs", "--force", "-s", server.url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("syncmsg: error: ") and err.count("\n") == 1, err
    assert "nats-server 2.14" in err and "level 3" in err, err
    assert not any("RESET" in subject for subject in asked)  # refused before it was sent

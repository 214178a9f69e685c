"""The command line run in-process (``syncmsg.cli.main``): streams, usage errors, output."""

from __future__ import annotations

import argparse
import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

import syncmsg
from syncmsg import cli
from syncmsg.cli import main, parse_duration, parse_size
from syncmsg.jetstream import StreamSpec


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def _json(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_streams_ensure_ls_info(nats_url: str, capsys: Any, tmp_path: Path) -> None:
    name = _unique("CLIS")
    args = ["streams", "ensure", name, "--subjects", f"{name}.a", f"{name}.b", "--url", nats_url]
    limits = ["--max-age", "7d", "--max-bytes", "1G", "--storage", "memory", "--json"]
    assert main([*args, *limits]) == 0
    (created,) = _json(capsys.readouterr().out)
    assert created["action"] == "created" and created["subjects"] == [f"{name}.a", f"{name}.b"]
    assert created["storage"] == "memory"
    assert main([*args, *limits]) == 0
    assert _json(capsys.readouterr().out)[0]["action"] == "unchanged"
    assert main([*args, "--max-age", "1d", "--max-bytes", "1G", "--storage", "memory"]) == 0
    assert capsys.readouterr().out.startswith(f"{name}: updated (subjects: {name}.a, {name}.b;")

    assert main(["streams", "info", name, "--url", nats_url, "--json"]) == 0
    info = _json(capsys.readouterr().out)[0]
    assert info["config"]["max_age"] == 86400 * 10**9 and info["config"]["max_bytes"] == 1 << 30
    assert info["state"]["messages"] == 0
    assert main(["streams", "info", name, "--url", nats_url]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"stream {name}\n") and "  max_bytes: 1073741824" in text

    other = _unique("CLIF")
    spec_file = tmp_path / "streams.json"
    spec_file.write_text(
        json.dumps([{"name": other, "subjects": [f"{other}.>"]}, {"name": f"{other}2"}])
    )
    assert (
        main(["streams", "ensure", "--file", str(spec_file), "--url", nats_url, "--progress"]) == 0
    )
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].startswith(f"{other}: created")
    assert "streams ensured: 2/2" in captured.err
    yaml_file = tmp_path / "stream.yaml"
    yaml_file.write_text(f"name: {other}\nsubjects: ['{other}.>']\n")
    assert main(["streams", "ensure", "--file", str(yaml_file), "--url", nats_url]) == 0
    assert "unchanged" in capsys.readouterr().out

    assert main(["streams", "ls", "--url", nats_url, "--json", "--subject", f"{other}.x"]) == 0
    assert [row["name"] for row in _json(capsys.readouterr().out)] == [other]
    assert main(["streams", "ls", "--url", nats_url]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["NAME", "MESSAGES", "BYTES", "SUBJECTS"]
    assert any(line.startswith(name) for line in table)
    assert main(["streams", "ls", "--url", nats_url, "--subject", _unique("nothing.")]) == 0
    assert "no streams" in capsys.readouterr().err

    assert main(["streams", "info", _unique("NOPE"), "--url", nats_url]) == 5
    assert "no stream named" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "code", "words"),
    [
        (["streams", "ensure"], 2, "NAME"),
        (["streams", "ensure", "A", "--file", "x.json"], 2, "not both"),
        (["streams", "ensure", "--file", "/no/such/file.json"], 2, "cannot read"),
        (["streams", "ensure", "a.b"], 2, "invalid stream 'a.b'"),
        (["pub", "x", "--count", "0"], 2, "--count"),
        (["pub", "x", "--msg-id", "a"], 2, "--js"),
        (["pub", "x", "--js", "--count", "2", "--msg-id", "a"], 2, "{n}"),
        (["pub", "x", "--timeout", "0"], 2, "--timeout"),
        (["pub", "bad subject"], 1, "subject"),
        (["sub", "x", "--count", "0"], 2, "--count"),
        (["sub", "x", "--wait", "0"], 2, "--wait"),
        (["reply", "x", "--count", "0"], 2, "--count"),
    ],
)
def test_usage_errors(argv: list[str], code: int, words: str, nats_url: str, capsys: Any) -> None:
    assert main([*argv, "--url", nats_url]) == code
    err = capsys.readouterr().err
    assert err.startswith("syncmsg: error: ") and err.count("\n") == 1 and words in err


def test_bad_files(tmp_path: Path, nats_url: str, capsys: Any) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    not_objects = tmp_path / "list.json"
    not_objects.write_text("[1, 2]")
    for path, words in ((broken, "is not valid"), (not_objects, "expected a stream object")):
        assert main(["streams", "ensure", "--file", str(path), "--url", nats_url]) == 2
        assert words in capsys.readouterr().err


def test_configuration_errors(capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["health", "--url", "http://nope"]) == 2
    assert "scheme" in capsys.readouterr().err
    monkeypatch.setenv("NATS_TIMEOUT", "-1")
    assert main(["health", "--url", "nats://127.0.0.1:1"]) == 2


def test_sub_gives_up_after_wait(nats_url: str, capsys: Any, client: syncmsg.Client) -> None:
    assert (
        main(["sub", _unique("cli.none."), "--count", "1", "--wait", "0.3", "--url", nats_url]) == 4
    )
    assert "received 0 of 1 message(s) within 0.3s" in capsys.readouterr().err
    assert main(["sub", _unique("cli.none."), "--wait", "0.2", "--url", nats_url]) == 0
    name = _unique("CLIW")
    client.jetstream().ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"]))
    argv = ["sub", f"{name}.>", "--durable", "w", "--deliver", "new", "--wait", "0.3"]
    assert main([*argv, "--url", nats_url]) == 0


def test_demo_in_process(nats_url: str, capsys: Any) -> None:
    assert main(["demo", "--count", "10", "--url", nats_url]) == 0
    out = capsys.readouterr().out
    assert "published=10 handled=10" in out and "consumed=10" in out


def test_pub_text_and_stdin(
    nats_url: str, capsys: Any, monkeypatch: pytest.MonkeyPatch, client: syncmsg.Client
) -> None:
    subject = _unique("cli.stdin.")
    sub = client.subscribe_sync(subject)
    client.flush()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\x00from stdin")))
    assert main(["pub", subject, "-", "--url", nats_url]) == 0
    assert sub.next_msg(timeout=5).data == b"\x00from stdin"
    name = _unique("CLIT")
    client.jetstream().ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"]))
    argv = ["pub", f"{name}.x", "v", "--js", "--count", "2", "--msg-id", "m{n}", "--url", nats_url]
    assert main([*argv, "--quiet"]) == 0
    assert main(argv) == 0
    assert (
        capsys.readouterr().out.splitlines()[-1]
        == f"stored 2 message(s) in {name} (#1..#2, 2 duplicate(s))"
    )


def test_health_and_duplicates_in_text(nats_url: str, capsys: Any, client: syncmsg.Client) -> None:
    assert main(["health", "--url", nats_url]) == 0
    assert capsys.readouterr().out.startswith("ok: connected to nats://")
    name = _unique("CLID")
    client.jetstream().ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"]))
    for _ in range(2):
        assert main(["pub", f"{name}.x", "v", "--js", "--msg-id", "one", "--url", nats_url]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"stored in {name} as #1",
        f"stored in {name} as #1 (duplicate)",
    ]


def test_server_store_dir_problems(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["server", "--store-dir", str(blocker / "store")]) == 2
    assert "cannot create --store-dir" in capsys.readouterr().err
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert cli._default_store_dir() == tmp_path / "data" / "syncmsg" / "nats-server"


def test_parsers() -> None:
    assert parse_size("1G") == 1 << 30
    assert parse_size("512k") == 512 << 10
    assert parse_size("10MB") == 10 << 20
    assert parse_size("1024") == 1024
    assert parse_duration("7d") == 7 * 86400
    assert parse_duration("500ms") == 0.5
    assert parse_duration("90") == 90.0
    for bad, parse in (("1X", parse_size), ("x", parse_size), ("1y", parse_duration)):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(bad)


def test_exit_codes() -> None:
    assert cli.exit_code_for(syncmsg.NoServersError("x")) == cli.EXIT_UNAVAILABLE
    assert cli.exit_code_for(syncmsg.AuthorizationError("x")) == cli.EXIT_UNAVAILABLE
    assert cli.exit_code_for(syncmsg.TimeoutError("x")) == cli.EXIT_TIMEOUT
    assert cli.exit_code_for(syncmsg.StreamNotFoundError("x")) == cli.EXIT_NOT_FOUND
    assert cli.exit_code_for(syncmsg.ConfigurationError("x")) == cli.EXIT_USAGE
    assert cli.exit_code_for(syncmsg.JetStreamError("x")) == cli.EXIT_ERROR
    assert cli._one_line(ValueError("")) == "ValueError"


def test_progress_on_a_terminal(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    progress = cli._Progress("work", 3, enabled=True)
    progress.update(1)
    progress.update(2)  # throttled
    progress.done(3)
    err = capsys.readouterr().err
    assert err.startswith("\r\x1b[Kwork: 1/3") and err.endswith(
        "work: 3/3 (" + err.split("3/3 (")[1]
    )
    assert err.endswith("\n") and "2/3" not in err


def test_broken_pipe_is_quiet(nats_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(args: argparse.Namespace) -> int:
        raise BrokenPipeError

    monkeypatch.setattr(cli, "_cmd_health", broken)
    monkeypatch.setattr(cli.os, "dup2", lambda *args: None)
    assert main(["health", "--url", nats_url]) == 0


def test_interrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_cmd_health", interrupted)
    assert main(["health"]) == 130

"""The command line run in-process (``syncmsg.cli.main``): streams, usage errors, output."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

import syncmsg
from syncmsg import cli
from syncmsg.cli import main
from syncmsg.cli import server as server_command
from syncmsg.jetstream import StreamSpec


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def _json(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_streams_ensure_ls_info(nats_url: str, capsys: Any, tmp_path: Path) -> None:
    name = _unique("CLIS")
    args = ["streams", "ensure", name, "--subjects", f"{name}.a,{name}.b", "-s", nats_url]
    limits = ["--max-age", "7d", "--max-bytes", "1G", "--storage", "memory", "--json"]
    assert main([*args, *limits]) == 0
    (created,) = _json(capsys.readouterr().out)
    assert created["action"] == "created" and created["subjects"] == [f"{name}.a", f"{name}.b"]
    assert created["storage"] == "memory"
    assert main([*args, *limits]) == 0
    assert _json(capsys.readouterr().out)[0]["action"] == "unchanged"
    again = ["streams", "ensure", name, "--subjects", f"{name}.a", "--subjects", f"{name}.b"]
    assert (
        main(
            [
                *again,
                "-s",
                nats_url,
                "--max-age",
                "1d",
                "--max-bytes",
                "1GiB",
                "--storage",
                "memory",
            ]
        )
        == 0
    )
    assert (
        capsys.readouterr().out
        == f"{name}: updated (subjects: {name}.a, {name}.b; 0 messages, 0 B)\n"
    )

    assert main(["streams", "info", name, "-s", nats_url, "--json"]) == 0
    info = _json(capsys.readouterr().out)[0]
    assert info["config"]["max_age"] == 86400 * 10**9 and info["config"]["max_bytes"] == 1 << 30
    assert info["state"]["messages"] == 0
    assert main(["streams", "info", name, "-s", nats_url]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"stream {name}\n")
    # Human units, not 86400000000000 or 1073741824.
    assert "  max age           1d\n" in text and "  max bytes         1 GiB\n" in text
    assert "  max messages      unlimited\n" in text and "  duplicate window  2m\n" in text
    assert "86400000000000" not in text and "1073741824" not in text
    assert "_nats" not in text and text.endswith("\n") and " \n" not in text

    other = _unique("CLIF")
    spec_file = tmp_path / "streams.json"
    spec_file.write_text(
        json.dumps([{"name": other, "subjects": [f"{other}.>"]}, {"name": f"{other}2"}])
    )
    assert main(["streams", "ensure", "--file", str(spec_file), "-s", nats_url, "--progress"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].startswith(f"{other}: created")
    assert "ensuring streams: 2/2 streams in " in captured.err
    yaml_file = tmp_path / "stream.yaml"
    yaml_file.write_text(f"name: {other}\nsubjects: ['{other}.>']\n")
    assert main(["streams", "ensure", "--file", str(yaml_file), "-s", nats_url]) == 0
    assert "unchanged" in capsys.readouterr().out

    assert main(["streams", "ls", "-s", nats_url, "--json", "--subject", f"{other}.x"]) == 0
    assert [row["name"] for row in _json(capsys.readouterr().out)] == [other]
    assert main(["streams", "ls", "-s", nats_url]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["NAME", "MESSAGES", "SIZE", "CONSUMERS", "STORAGE", "SUBJECTS"]
    row = next(line for line in table if line.startswith(name))
    assert row.split() == [name, "0", "0", "B", "0", "memory", f"{name}.a,", f"{name}.b"], table
    assert main(["streams", "ls", "-s", nats_url, "--subject", _unique("nothing.")]) == 0
    assert "no streams" in capsys.readouterr().err

    assert main(["streams", "info", _unique("NOPE"), "-s", nats_url]) == 5
    assert "no stream named" in capsys.readouterr().err


def test_stream_files_take_human_units(
    nats_url: str, capsys: Any, tmp_path: Path, client: syncmsg.Client
) -> None:
    name = _unique("CLIU")
    yaml_file = tmp_path / "streams.yaml"
    yaml_file.write_text(
        f"- name: {name}\n"
        f"  subjects: ['{name}.>']\n"
        "  max_age: 30d\n"
        "  max_bytes: 1G\n"
        "  max_msg_size: 64KiB\n"
        "  max_msgs: 100k\n"
        "  duplicate_window: 90s\n"
        "  storage: memory\n"
    )
    assert main(["streams", "ensure", "--file", str(yaml_file), "-s", nats_url]) == 0
    assert capsys.readouterr().out.startswith(f"{name}: created")
    config = client.jetstream().stream_info(name).config
    assert config.max_age is not None and config.max_age.days == 30
    assert (config.max_bytes, config.max_msg_size, config.max_msgs) == (1 << 30, 64 << 10, 100_000)
    assert config.duplicate_window is not None and config.duplicate_window.total_seconds() == 90
    json_file = tmp_path / "streams.json"
    json_file.write_text(json.dumps({"name": name, "subjects": [f"{name}.>"], "max_age": 2592000,
                                     "max_bytes": "1GiB", "max_msg_size": 65536, "max_msgs": "100,000",
                                     "duplicate_window": "1m30s", "storage": "memory"}))  # fmt: skip
    assert main(["streams", "ensure", "--file", str(json_file), "-s", nats_url]) == 0
    assert capsys.readouterr().out.startswith(f"{name}: unchanged")
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"name: {name}\nmax_age: soon\n")
    assert main(["streams", "ensure", "--file", str(bad), "-s", nats_url]) == 2
    err = capsys.readouterr().err
    assert "max_age: not a duration: 'soon'" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "code", "words"),
    [
        (["streams", "ensure"], 2, "NAME"),
        (["streams", "ensure", "A", "--file", "x.json"], 2, "not both"),
        (["streams", "ensure", "--file", "/no/such/file.json"], 2, "cannot read"),
        (["streams", "ensure", "a.b"], 2, "invalid stream 'a.b'"),
        (["streams", "ensure", "A", "--max-bytes", "lots"], 2, "not a size: 'lots'"),
        (["streams", "ensure", "A", "--max-age", "1x"], 2, "not a duration: '1x'"),
        (["pub", "x", "--count", "0"], 2, "--count"),
        (["pub", "x", "--count", "many"], 2, "not a count"),
        (["pub", "x", "--msg-id", "a"], 2, "--js"),
        (["pub", "x", "--js", "--count", "2", "--msg-id", "a"], 2, "{n}"),
        (["pub", "x", "--timeout", "0"], 2, "--timeout"),
        (["pub", "x", "--timeout", "soon"], 2, "not a duration"),
        (["pub", "bad subject"], 1, "subject"),
        (["pub"], 2, "Missing argument 'SUBJECT'"),
        (["pub", "x", "--nope"], 2, "No such option"),
        (["nope"], 2, "No such command 'nope'"),
        (["sub", "x", "--count", "0"], 2, "--count"),
        (["sub", "x", "--wait", "0"], 2, "--wait"),
        (["reply", "x", "--count", "0"], 2, "--count"),
        (["context", "select"], 2, "NAME, or --none"),
    ],
)
def test_usage_errors(argv: list[str], code: int, words: str, nats_url: str, capsys: Any) -> None:
    assert main([*argv, "-s", nats_url]) == code
    err = capsys.readouterr().err
    assert err.startswith("syncmsg: error: ") and err.count("\n") == 1 and words in err


def test_usage_errors_point_at_help(capsys: Any) -> None:
    assert main(["pub"]) == 2
    assert capsys.readouterr().err.rstrip().endswith("(see: syncmsg pub --help)")
    assert main([]) == 2  # no command: the help, on stderr
    assert "Commands:" in capsys.readouterr().err


def test_bad_files(tmp_path: Path, nats_url: str, capsys: Any) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    broken_yaml = tmp_path / "broken.yaml"
    broken_yaml.write_text("name: [unclosed\n")
    not_objects = tmp_path / "list.json"
    not_objects.write_text("[1, 2]")
    for path, words in (
        (broken, "is not valid JSON"),
        (broken_yaml, "is not valid YAML"),
        (not_objects, "expected a stream object"),
    ):
        assert main(["streams", "ensure", "--file", str(path), "-s", nats_url]) == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1


def test_configuration_errors(capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["health", "-s", "http://nope"]) == 2
    assert "scheme" in capsys.readouterr().err
    monkeypatch.setenv("NATS_TIMEOUT", "-1")
    assert main(["health", "-s", "nats://127.0.0.1:1"]) == 2


def test_sub_gives_up_after_wait(nats_url: str, capsys: Any, client: syncmsg.Client) -> None:
    assert (
        main(["sub", _unique("cli.none."), "--count", "1", "--wait", "300ms", "-s", nats_url]) == 4
    )
    assert "received 0 of 1 messages within 300ms" in capsys.readouterr().err
    assert main(["sub", _unique("cli.none."), "--wait", "0.2", "-s", nats_url]) == 0
    name = _unique("CLIW")
    client.jetstream().ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"]))
    argv = ["sub", f"{name}.>", "--durable", "w", "--deliver", "new", "--wait", "0.3s"]
    assert main([*argv, "-s", nats_url]) == 0


def test_pub_text_and_stdin(
    nats_url: str, capsys: Any, monkeypatch: pytest.MonkeyPatch, client: syncmsg.Client
) -> None:
    subject = _unique("cli.stdin.")
    sub = client.subscribe_sync(subject)
    client.flush()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\x00from stdin")))
    assert main(["pub", subject, "-", "-s", nats_url]) == 0
    assert sub.next_msg(timeout=5).data == b"\x00from stdin"
    assert capsys.readouterr().out == f"published 1 message to {subject}\n"
    name = _unique("CLIT")
    client.jetstream().ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"]))
    argv = ["pub", f"{name}.x", "v", "--js", "--count", "2", "--msg-id", "m{n}", "-s", nats_url]
    assert main([*argv, "--quiet"]) == 0
    assert main(argv) == 0
    assert (
        capsys.readouterr()
        .out.splitlines()[-1]
        .startswith(f"stored 2 messages in {name} (#1..#2, 2 duplicates) in ")
    )


def test_health_and_duplicates_in_text(nats_url: str, capsys: Any, client: syncmsg.Client) -> None:
    assert main(["health", "-s", nats_url]) == 0
    assert capsys.readouterr().out.startswith("ok: connected to nats://")
    assert main(["health", "-s", nats_url, "--jetstream"]) == 0
    assert "JetStream with" in capsys.readouterr().out
    name = _unique("CLID")
    client.jetstream().ensure_stream(StreamSpec(name=name, subjects=[f"{name}.>"]))
    for _ in range(2):
        assert main(["pub", f"{name}.x", "v", "--js", "--msg-id", "one", "-s", nats_url]) == 0
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
    assert server_command.default_store_dir() == tmp_path / "data" / "syncmsg" / "nats-server"


def test_exit_codes() -> None:
    assert cli.exit_code_for(syncmsg.NoServersError("x")) == cli.EXIT_UNAVAILABLE
    assert cli.exit_code_for(syncmsg.AuthorizationError("x")) == cli.EXIT_UNAVAILABLE
    assert cli.exit_code_for(syncmsg.TimeoutError("x")) == cli.EXIT_TIMEOUT
    assert cli.exit_code_for(syncmsg.StreamNotFoundError("x")) == cli.EXIT_NOT_FOUND
    assert cli.exit_code_for(syncmsg.NoRespondersError("x")) == cli.EXIT_NOT_FOUND
    assert cli.exit_code_for(syncmsg.ConfigurationError("x")) == cli.EXIT_USAGE
    assert cli.exit_code_for(syncmsg.JetStreamError("x")) == cli.EXIT_ERROR
    assert cli.exit_code_for(cli.CommandFailed("x", 42)) == 42
    from syncmsg.cli._exit import one_line

    assert one_line(ValueError("")) == "ValueError" and one_line("a\n  b") == "a b"


def test_broken_pipe_is_quiet(nats_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from syncmsg.cli import _app, health

    def broken(*args: Any, **kwargs: Any) -> int:
        raise BrokenPipeError

    monkeypatch.setattr(health.health, "callback", broken)
    monkeypatch.setattr(_app.os, "dup2", lambda *args: None)
    assert main(["health", "-s", nats_url]) == 0


def test_interrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    from syncmsg.cli import health

    def interrupted(*args: Any, **kwargs: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(health.health, "callback", interrupted)
    assert main(["health"]) == 130


def test_missing_extra_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    import builtins

    real_import = builtins.__import__

    def without_rich(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "syncmsg.cli._main":
            raise ModuleNotFoundError("No module named 'rich'", name="rich")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_rich)
    assert main(["health"]) == 2
    assert capsys.readouterr().err == (
        "syncmsg: error: the command line needs the cli extra (rich is missing): "
        "pip install 'syncmsg[cli]'\n"
    )

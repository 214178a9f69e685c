"""syncmsg context add|ls|select|show|rm: saved server and credential sets."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from _cli_helpers import json_lines, run

from syncmsg.cli import main
from syncmsg.cli._app import Settings
from syncmsg.cli._connect import build_config
from syncmsg.cli._contexts import ContextStore, masked


def _json(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_add_ls_select_show_rm(nats_server_factory: Any, capsys: Any, config_home: Path) -> None:
    server = nats_server_factory(user="app", password="s3cret-pw", jetstream=False)
    assert main(["context", "add", "dev", "-s", server.url, "--user", "app",
                 "--password", "s3cret-pw", "--description", "my laptop"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert out == f"saved context dev (url {server.url}, user app, password ***)\n"
    path = config_home / "syncmsg" / "contexts" / "dev.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {
        "url": server.url, "user": "app", "password": "s3cret-pw", "description": "my laptop",
    }  # fmt: skip

    # Not selected yet: no context is used, so the default server would be tried.
    assert build_config(Settings()).url == "nats://localhost:4222"
    assert main(["--context", "dev", "health"]) == 0
    assert capsys.readouterr().out.startswith("ok: connected to")

    assert main(["context", "select", "dev"]) == 0
    assert capsys.readouterr().out == "selected context dev\n"
    assert main(["--json", "health"]) == 0
    assert _json(capsys.readouterr().out)[0]["ok"] is True

    assert main(["context", "add", "other", "-s", "nats://127.0.0.1:1", "--token", "tok-3n"]) == 0
    assert capsys.readouterr().out == "saved context other (url nats://127.0.0.1:1, token ***)\n"
    assert main(["context", "ls"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["NAME", "SERVER", "DESCRIPTION"]
    assert table[2].split() == ["*", "dev", server.url, "my", "laptop"]
    assert table[3].split() == ["other", "nats://127.0.0.1:1"]
    assert main(["context", "ls", "--json"]) == 0
    rows = _json(capsys.readouterr().out)
    assert [(r["name"], r["selected"]) for r in rows] == [("dev", True), ("other", False)]
    assert rows[1]["token"] == "***"

    assert main(["context", "show"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("context dev (selected)\n") and "password     ***" in shown
    assert main(["context", "show", "other", "--json"]) == 0
    other = _json(capsys.readouterr().out)[0]
    assert other["token"] == "***" and other["selected"] is False
    everything = json.dumps(rows) + shown + json.dumps(other)
    assert "s3cret-pw" not in everything and "tok-3n" not in everything

    # Updating keeps what is not given again; --replace forgets it.
    assert main(["context", "add", "dev", "--description", "laptop", "--json"]) == 0
    updated = _json(capsys.readouterr().out)[0]
    assert (updated["action"], updated["user"], updated["password"]) == ("updated", "app", "***")
    assert main(["context", "add", "other", "--replace", "-s", "nats://127.0.0.1:2"]) == 0
    capsys.readouterr()
    assert ContextStore(config_home / "syncmsg").load("other") == {"url": "nats://127.0.0.1:2"}

    assert main(["context", "rm", "dev"]) == 0
    assert capsys.readouterr().out == "removed context dev\n"
    assert main(["context", "show"]) == 2  # nothing selected any more
    assert "no context selected" in capsys.readouterr().err
    assert main(["context", "rm", "dev"]) == 5
    assert main(["context", "select", "dev"]) == 5
    assert main(["--context", "dev", "health"]) == 5
    assert "no context named 'dev'" in capsys.readouterr().err
    assert main(["context", "select", "--none"]) == 0
    assert capsys.readouterr().out == "no context selected\n"


def test_environment_and_options_override_the_context(
    nats_url: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    assert main(["context", "add", "dead", "-s", "nats://127.0.0.1:1", "--user", "ctx-user",
                 "--select"]) == 0  # fmt: skip
    capsys.readouterr()
    assert build_config(Settings()).url == "nats://127.0.0.1:1"
    assert build_config(Settings()).user == "ctx-user"
    monkeypatch.setenv("NATS_URL", nats_url)
    config = build_config(Settings())
    assert (config.url, config.user) == (nats_url, "ctx-user")  # env beats context, per field
    assert main(["health"]) == 0
    capsys.readouterr()
    monkeypatch.delenv("NATS_URL")
    assert main(["health", "-s", nats_url]) == 0  # an option beats the context
    capsys.readouterr()
    assert main(["context", "add", "live", "-s", nats_url]) == 0
    monkeypatch.setenv("NATS_CONTEXT", "live")  # NATS_CONTEXT beats the selected one
    assert build_config(Settings()).url == nats_url
    assert build_config(Settings(context="dead")).url == "nats://127.0.0.1:1"  # --context beats it


def test_context_in_a_subprocess(nats_url: str, config_home: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(config_home)}
    added = run(None, "context", "add", "here", "-s", nats_url, "--select", "--json", **env)
    assert added.returncode == 0, added.stderr
    assert json_lines(added.stdout)[0]["selected"] is True
    health = run(None, "--json", "health", **env)
    assert health.returncode == 0, health.stderr
    assert json_lines(health.stdout)[0]["server"] == nats_url


def test_bad_names_and_files(capsys: Any, config_home: Path) -> None:
    for bad in ("../escape", ".hidden", "a/b", ""):
        assert main(["context", "add", bad, "-s", "nats://x:1"]) == 2
        assert "invalid context name" in capsys.readouterr().err
    assert main(["context", "add", "ok", "--context", "other"]) == 2
    assert "--context selects a context to use" in capsys.readouterr().err
    store = ContextStore(config_home / "syncmsg")
    store.directory.mkdir(parents=True)
    (store.directory / "broken.json").write_text("{nope")
    (store.directory / "list.json").write_text("[1]")
    assert main(["--context", "broken", "health"]) == 2
    assert "cannot read context 'broken'" in capsys.readouterr().err
    assert main(["--context", "list", "health"]) == 2
    assert "does not hold an object" in capsys.readouterr().err
    assert main(["context", "ls"]) == 0
    captured = capsys.readouterr()
    assert "cannot read context 'broken'" in captured.err
    assert main(["context", "ls", "--json"]) == 0
    assert capsys.readouterr().out == ""
    store.remove("broken")
    store.remove("list")
    assert main(["context", "ls"]) == 0
    assert "no contexts" in capsys.readouterr().err


def test_masked() -> None:
    assert masked({"url": "nats://u:pw@h:4222,nats://h2:4222", "token": "t", "user": "u"}) == {
        "url": "nats://u:***@h:4222,nats://h2:4222",
        "token": "***",
        "user": "u",
    }

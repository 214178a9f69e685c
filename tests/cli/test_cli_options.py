"""Global options before or after the subcommand, the NATS_* environment, credentials."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from _cli_helpers import assert_one_line_error, json_lines, run

import syncmsg
from syncmsg.cli import main
from syncmsg.cli._app import Settings
from syncmsg.cli._connect import build_config


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def _json(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_global_options_before_the_command(nats_url: str) -> None:
    """The frictions of the argparse CLI: `syncmsg -s URL --json health` and
    `syncmsg --url X pub ...` failed with 'unrecognized arguments' / 'invalid choice'."""
    health = run(None, "-s", nats_url, "--json", "health")
    assert health.returncode == 0, health.stderr
    assert json_lines(health.stdout)[0]["ok"] is True
    published = run(None, "--url", nats_url, "pub", _unique("cli.opt."), "hello")
    assert published.returncode == 0, published.stderr
    assert published.stdout.startswith("published 1 message to cli.opt.")


@pytest.mark.parametrize(
    "argv",
    [
        ["-s", "{url}", "--json", "health"],
        ["--json", "health", "-s", "{url}"],
        ["health", "--json", "--server", "{url}"],
        ["--server={url}", "health", "--json"],
        ["-s", "nats://127.0.0.1:1", "health", "-s", "{url}", "--json"],  # the later one wins
        ["--json", "--timeout", "2s", "health", "--url", "{url}"],
    ],
)
def test_global_options_anywhere(argv: list[str], nats_url: str, capsys: Any) -> None:
    assert main([arg.format(url=nats_url) for arg in argv]) == 0
    assert _json(capsys.readouterr().out)[0]["ok"] is True


def test_global_options_in_nested_groups(nats_url: str, capsys: Any) -> None:
    for argv in (
        ["streams", "-s", nats_url, "--json", "ls"],
        ["streams", "ls", "--json", "-s", nats_url],
        ["--json", "-s", nats_url, "streams", "ls"],
    ):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert all(json.loads(line) for line in out.splitlines())


def test_nats_url_and_timeout_come_from_the_environment(
    nats_url: str, refused_url: str, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NATS_URL", nats_url)
    assert main(["--json", "health"]) == 0
    assert _json(capsys.readouterr().out)[0]["server"] == nats_url
    monkeypatch.setenv("NATS_URL", refused_url)
    assert main(["health", "-s", nats_url]) == 0  # the option beats the environment
    capsys.readouterr()
    monkeypatch.setenv("NATS_TIMEOUT", "0.3")
    assert main(["health"]) == 3
    assert "unhealthy" in capsys.readouterr().err
    monkeypatch.setenv("NATS_NAME", "from-env")
    assert build_config(Settings()).name == "from-env"
    monkeypatch.delenv("NATS_NAME")
    assert build_config(Settings()).name == "syncmsg-cli"


def test_token_and_user_password(nats_server_factory: Any, capsys: Any) -> None:
    tokens = nats_server_factory(token="s3cret-token", jetstream=False)
    assert main(["-s", tokens.url, "--token", "s3cret-token", "health"]) == 0
    capsys.readouterr()
    assert main(["-s", tokens.url, "--token", "wrong-token", "--timeout", "2s", "health"]) == 3
    captured = capsys.readouterr()
    assert "wrong-token" not in captured.out + captured.err
    users = nats_server_factory(user="app", password="pa55-word", jetstream=False)
    assert main(["health", "-s", users.url, "--user", "app", "--password", "pa55-word"]) == 0
    capsys.readouterr()
    assert main(["--user", "app", "--password", "bad-pa55", "health", "-s", users.url]) == 3
    captured = capsys.readouterr()
    assert "bad-pa55" not in captured.out + captured.err


def test_credentials_from_the_environment(nats_server_factory: Any) -> None:
    server = nats_server_factory(token="env-token", jetstream=False)
    ok = run(server.url, "health", NATS_TOKEN="env-token")
    assert ok.returncode == 0, ok.stderr
    refused = run(server.url, "health", "--timeout", "2s")
    assert_one_line_error(refused, 3, "unhealthy")


def test_mutual_tls(tmp_path: Path, nats_server_factory: Any, capsys: Any) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    server_cert.private_key_pem.write_to_path(str(tmp_path / "server-key.pem"))
    server_cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server-cert.pem"))
    client_cert = ca.issue_cert("client@example.com")
    client_cert.private_key_pem.write_to_path(str(tmp_path / "client-key.pem"))
    client_cert.cert_chain_pems[0].write_to_path(str(tmp_path / "client-cert.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    server = nats_server_factory(
        tls_cert=tmp_path / "server-cert.pem",
        tls_key=tmp_path / "server-key.pem",
        tls_ca=tmp_path / "ca.pem",
        extra_args=["--tlsverify"],
        jetstream=False,
    )
    tls = ["-s", server.client_url, "--tlsca", str(tmp_path / "ca.pem")]
    client = [
        "--tlscert",
        str(tmp_path / "client-cert.pem"),
        "--tlskey",
        str(tmp_path / "client-key.pem"),
    ]
    assert main(["health", *tls, *client]) == 0
    assert capsys.readouterr().out.startswith("ok: connected to tls://")
    assert main(["health", *tls, "--timeout", "2s"]) == 3  # no client certificate
    capsys.readouterr()
    assert main(["health", *tls, "--tlscert", str(tmp_path / "client-cert.pem")]) == 2
    assert "tls_cert and tls_key go together" in capsys.readouterr().err


def test_nkey_and_creds_options(tmp_path: Path) -> None:
    from syncmsg.testing import JwtOperator

    user = JwtOperator(directory=tmp_path).account("APP").user("cli")
    seed_file = tmp_path / "user.nk"
    seed_file.write_text(f"{user.seed}\n")
    config = build_config(Settings(nkey=str(seed_file), creds=str(user.creds_file)))
    assert config.nkey_seed is not None and config.nkey_seed.get_secret_value() == str(seed_file)
    assert config.nats_options()["nkeys_seed"] == str(seed_file)
    assert config.creds == user.creds_file
    assert user.seed not in repr(config)
    empty = tmp_path / "empty.nk"
    empty.write_text("nothing here\n")
    with pytest.raises(syncmsg.ConfigurationError, match=r"empty\.nk"):
        build_config(Settings(nkey=str(empty)))
    with pytest.raises(syncmsg.ConfigurationError, match=r"missing\.nk"):
        build_config(Settings(nkey=str(tmp_path / "missing.nk")))


def test_settings_never_show_secrets() -> None:
    state = Settings(server="nats://x", password="hunter2", token="t0k3n")
    assert "hunter2" not in repr(state) and "t0k3n" not in repr(state)
    assert repr(state) == "Settings(server=..., password=..., token=...)"


def test_client_name_and_connect_deadline(nats_url: str) -> None:
    config = build_config(Settings(server=nats_url, timeout=1.5))
    assert (config.timeout, config.connect_timeout, config.name) == (1.5, 1.5, "syncmsg-cli")
    assert config.connect_retry.deadline == 1.5
    assert isinstance(config, syncmsg.Config)


def test_version(capsys: Any) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"syncmsg {syncmsg.__version__}\n"
    result = run(None, "--version")
    assert (result.returncode, result.stdout) == (0, f"syncmsg {syncmsg.__version__}\n")


@pytest.mark.parametrize(
    ("argv", "progress", "quiet", "as_json"),
    [
        (["health"], None, False, False),
        (["--no-progress", "health"], False, False, False),
        (["health", "--progress"], True, False, False),
        (["--progress", "health", "--no-progress"], False, False, False),
        (["-q", "--json", "health"], None, True, True),
    ],
)
def test_flags_given_anywhere_are_kept(
    argv: list[str],
    progress: bool | None,
    quiet: bool,
    as_json: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from syncmsg.cli import health

    seen: list[Settings] = []

    def record(*args: Any, **kwargs: Any) -> int:
        from syncmsg.cli._app import settings

        seen.append(settings())
        return 0

    monkeypatch.setattr(health.health, "callback", record)
    assert main(argv) == 0
    (state,) = seen
    assert (state.progress, state.quiet, state.json) == (progress, quiet, as_json)

"""No secret in any configuration error, repr or log line, not even a piece of one.

Each case is a bad configuration that holds a secret; whatever syncmsg reports about it (the
message, the exception's args and repr, the whole printed traceback with its chained
exceptions, and the log) must not contain the secret or any 3-character piece of it.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Any

import pytest

import syncmsg

pytestmark = pytest.mark.timeout(30)

PASSWORD = "Qx7vK2pZ9w"
NUMERIC_TOKEN = "98765432101"
SEED = "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY"
ACCOUNT_SEED = "SAAHSBXDYQ4KWOX4OUBPDWJJXVCO43OYTWIW5C7XQPTUDS7VDXRH6CP4LA"


def pieces(secret: str, size: int = 3) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def reported(error: BaseException) -> str:
    return "\n".join(
        [str(error), repr(error), repr(error.args), *traceback.format_exception(error)]
    )


def assert_hidden(secret: str, text: str) -> None:
    leaked = sorted(piece for piece in pieces(secret) if piece in text)
    assert not leaked, f"pieces of the secret in the error: {leaked}\n{text}"


CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("pw123", "ftp://u:pw123@h:1", {}),  # the example
    (PASSWORD, f"ftp://u:{PASSWORD}@h:1", {}),
    (PASSWORD, f"nats://u:{PASSWORD}@h:notaport", {}),
    (PASSWORD, f"nats://u:{PASSWORD}@h:99999", {}),
    (PASSWORD, "nats://u:Qx7/vK2#pZ9w@h:99999", {}),  # '/' and '#' inside the password
    (PASSWORD, "nats://u:Qx7?vK2pZ9w@:4222", {}),
    (PASSWORD, f"nats://u:{PASSWORD}@bad host:4222", {}),
    (PASSWORD, f"nats://u:{PASSWORD}@h:1,ws://w:1", {}),
    (PASSWORD, f"nats://u:{PASSWORD}@%%%:1", {}),
    (PASSWORD, f"nats://u:{PASSWORD}@[::1:1", {}),
    (NUMERIC_TOKEN, f"nats://{NUMERIC_TOKEN}@h:0", {}),
    (NUMERIC_TOKEN, f"nats://{NUMERIC_TOKEN}@:4222", {}),
    (NUMERIC_TOKEN, f"{NUMERIC_TOKEN}@h:x", {}),
    (NUMERIC_TOKEN, "nats://h:1", {"token": int(NUMERIC_TOKEN)}),
    (PASSWORD, "nats://h:1", {"password": PASSWORD, "timeout": 0}),
    (PASSWORD, "nats://h:1", {"token": PASSWORD, "bogus": 1}),
    ("123456789", "nats://h:1", {"password": 123456789}),
    (SEED, "nats://h:1", {"nkey_seed": SEED[:-2] + "XX"}),
    (SEED, "nats://h:1", {"nkey_seed": SEED[:-1]}),
    (SEED, "nats://h:1", {"nkey_seed": SEED.lower()}),
    (SEED, "nats://h:1", {"nkey_seed": SEED, "timeout": -1}),
    (ACCOUNT_SEED, "nats://h:1", {"nkey_seed": ACCOUNT_SEED}),
]


@pytest.mark.parametrize(("secret", "url", "options"), CASES)
def test_config_errors_show_no_secret(
    secret: str, url: str, options: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(syncmsg.ConfigurationError) as info:
        syncmsg.Config.build(url, **options)
    error = info.value
    assert error.__cause__ is None and error.__context__ is None  # pydantic's error holds input
    assert "errors.pydantic.dev" not in str(error) and "input_value" not in str(error)
    assert_hidden(secret, reported(error) + caplog.text)
    with pytest.raises(syncmsg.ConfigurationError) as direct:  # Config() itself, not build()
        syncmsg.Config(url=url, **options)
    assert_hidden(secret, reported(direct.value))
    with pytest.raises(syncmsg.ConfigurationError) as through_connect:
        syncmsg.connect(url, **options)
    assert_hidden(secret, reported(through_connect.value))


def test_secrets_from_the_environment_are_hidden(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("NATS_URL", f"ftp://u:{PASSWORD}@h:1")
    monkeypatch.setenv("NATS_TOKEN", NUMERIC_TOKEN)
    monkeypatch.setenv("NATS_NKEY_SEED", SEED[:-2] + "XX")
    with pytest.raises(syncmsg.ConfigurationError) as info:
        syncmsg.Config()
    text = reported(info.value) + caplog.text
    for secret in (PASSWORD, SEED):
        assert_hidden(secret, text)
    monkeypatch.setenv("NATS_URL", "nats://h:1")
    monkeypatch.setenv("NATS_CONNECT_RETRY", f'{{"attempts": "{PASSWORD}"')  # not JSON
    with pytest.raises(syncmsg.ConfigurationError) as info:
        syncmsg.Config()
    assert_hidden(PASSWORD, reported(info.value))


def test_merged_config_errors_show_no_secret() -> None:
    config = syncmsg.Config.build(f"nats://u:{PASSWORD}@h:1", token=NUMERIC_TOKEN)
    with pytest.raises(syncmsg.ConfigurationError) as info:
        config.merged(timeout=-1)
    for secret in (PASSWORD, NUMERIC_TOKEN):
        assert_hidden(secret, reported(info.value))


def test_valid_config_repr_shows_no_secret(tmp_path: Path) -> None:
    seed_file = tmp_path / "user.nk"
    seed_file.write_text(SEED)
    config = syncmsg.Config.build(
        f"nats://u:{PASSWORD}@h:1,nats://{NUMERIC_TOKEN}@g:2",
        password=PASSWORD,
        token=NUMERIC_TOKEN,
        nkey_seed=SEED,
    )
    text = repr(config) + str(config) + repr(config.redacted_servers)
    for secret in (PASSWORD, NUMERIC_TOKEN, SEED):
        assert_hidden(secret, text)
    assert "nats://u:***@h:1" in text and "nats://***@g:2" in text
    from_file = syncmsg.Config.build("nats://h:1", nkey_seed=str(seed_file))
    assert_hidden(SEED, repr(from_file))


def test_file_contents_are_never_shown(tmp_path: Path) -> None:
    seed_file = tmp_path / "bad.nk"
    seed_file.write_text(SEED[:-2] + "XX")
    creds = tmp_path / "user.creds"
    creds.write_text(
        "-----BEGIN NATS USER JWT-----\neyJhbGciOiJlZDI1NTE5In0.payload.sig\n"
        "------END NATS USER JWT------\n"
        f"-----BEGIN USER NKEY SEED-----\n{SEED[:-2]}XX\n------END USER NKEY SEED------\n"
    )
    for options in ({"nkey_seed": str(seed_file)}, {"creds": creds}):
        with pytest.raises(syncmsg.ConfigurationError) as info:
            syncmsg.Config.build("nats://h:1", **options)
        text = reported(info.value)
        assert_hidden(SEED, text)
        assert "eyJhbGci" not in text and str(tmp_path) in text  # names the file


def test_creds_without_a_jwt_are_refused_before_nats_py_could_spin_on_them(
    tmp_path: Path,
) -> None:
    # nats-py reads a creds file looking for the JWT line with an unbounded loop: a file
    # holding only a seed would hang the event-loop thread at the first connect.
    creds = tmp_path / "seed-only.creds"
    creds.write_text(f"-----BEGIN USER NKEY SEED-----\n{SEED}\n------END USER NKEY SEED------\n")
    with pytest.raises(syncmsg.ConfigurationError, match="holds no user JWT"):
        syncmsg.Config.build("nats://h:1", creds=creds)
    no_seed = tmp_path / "jwt-only.creds"
    no_seed.write_text("-----BEGIN NATS USER JWT-----\neyJ.x.y\n------END NATS USER JWT------\n")
    with pytest.raises(syncmsg.ConfigurationError, match="holds no NKey seed"):
        syncmsg.Config.build("nats://h:1", creds=no_seed)
    with pytest.raises(syncmsg.ConfigurationError, match=r"missing\.creds"):
        syncmsg.Config.build("nats://h:1", creds=tmp_path / "missing.creds")


def test_config_error_messages_are_one_line_per_problem() -> None:
    with pytest.raises(syncmsg.ConfigurationError) as info:
        syncmsg.Config.build("nats://h:1", timeout=0, connect_timeout=-1, bogus=True)
    text = str(info.value)
    assert "\n" not in text
    assert "timeout: Input should be greater than 0" in text
    assert "connect_timeout:" in text and "bogus: Extra inputs are not permitted" in text

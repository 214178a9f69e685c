"""Unit tests of pure parts: config, retry policies, codec, subjects, metadata, errors."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import syncmsg
from syncmsg._codec import encode_headers, encode_payload, pub_command
from syncmsg._config import redact_url
from syncmsg._errors import map_error
from syncmsg._subjects import check_publish_subject, check_subscribe_subject

SEED = "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY"  # a user NKey seed


def test_config_reads_the_environment(monkeypatch, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("checked when the SSL context is made")
    monkeypatch.setenv("NATS_URL", "nats://a:4222, nats://b:4223")
    monkeypatch.setenv("NATS_USER", "bob")
    monkeypatch.setenv("NATS_PASSWORD", "hunter2")
    monkeypatch.setenv("NATS_TOKEN", "tkn")
    monkeypatch.setenv("NATS_NKEY_SEED", SEED)
    monkeypatch.setenv("NATS_TLS_CA", str(ca))
    config = syncmsg.Config()
    assert config.servers == ["nats://a:4222", "nats://b:4223"]
    assert config.user == "bob"
    assert config.password is not None and config.password.get_secret_value() == "hunter2"
    text = repr(config) + str(config)
    for secret in ("hunter2", "tkn", SEED):
        assert secret not in text


def test_config_defaults_and_overrides(monkeypatch):
    monkeypatch.delenv("NATS_URL", raising=False)
    config = syncmsg.Config()
    assert config.servers == ["nats://localhost:4222"]
    assert config.max_reconnect_attempts == -1 and config.reconnect_wait == 1.0
    assert syncmsg.Config.build(["x:1", "tls://y:2"]).servers == ["nats://x:1", "tls://y:2"]
    assert config.merged(timeout=2.0).timeout == 2.0


def test_config_hides_url_passwords():
    config = syncmsg.Config.build("nats://u:pw-in-url@host:4222")
    assert "pw-in-url" not in repr(config)
    assert redact_url("nats://tok@host:1") == "nats://***@host:1"
    assert redact_url("nats://host:1") == "nats://host:1"


@pytest.mark.parametrize(
    "options",
    [
        {"url": "http://x:1"},
        {"url": " , "},
        {"timeout": 0},
        {"tls_cert": "/c.pem"},
        {"bogus": 1},
    ],
)
def test_bad_config_is_a_configuration_error(options):
    with pytest.raises(syncmsg.ConfigurationError):
        syncmsg.Config.build(**options)


def test_nats_options_for_credentials(tmp_path):
    creds = tmp_path / "user.creds"
    creds.write_text(
        "-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QifQ.x.y\n------END NATS USER JWT------\n"
        f"-----BEGIN USER NKEY SEED-----\n{SEED}\n------END USER NKEY SEED------\n"
    )
    options = syncmsg.Config.build(
        "nats://h:1", user="u", password="p", token="t", creds=creds, nkey_seed=SEED
    ).nats_options()
    assert options["password"] == "p" and options["token"] == "t"
    assert options["user_credentials"] == str(creds) and options["nkeys_seed_str"] == SEED
    with pytest.raises(syncmsg.ConfigurationError):
        syncmsg.Config.build(creds=tmp_path / "missing.creds").nats_options()


def test_retry_policy_is_immutable_and_validated():
    policy = syncmsg.RetryPolicy.default()
    with pytest.raises(AttributeError):
        policy.attempts = 3  # type: ignore[misc]
    assert policy.replace(attempts=2).attempts == 2 and policy.attempts == 5
    for bad in (
        {"attempts": None, "deadline": None},
        {"attempts": 0},
        {"deadline": -1},
        {"multiplier": 0.5},
    ):
        with pytest.raises(ValueError):
            syncmsg.RetryPolicy(**bad)  # type: ignore[arg-type]


def test_retry_policy_retries_what_it_should():
    calls: list[float | None] = []
    sleeps: list[float] = []

    def flaky(left: float | None) -> str:
        calls.append(left)
        if len(calls) < 3:
            raise syncmsg.TimeoutError("slow")
        return "ok"

    policy = syncmsg.RetryPolicy(attempts=5, deadline=10, initial=0.01, jitter=0)
    assert policy.call(flaky, sleep=sleeps.append) == "ok"
    assert len(calls) == 3 and len(sleeps) == 2 and sleeps[1] >= sleeps[0]
    assert all(left is not None and left <= 10 for left in calls)

    def fatal(left: float | None) -> None:
        raise syncmsg.AuthorizationError("no")

    with pytest.raises(syncmsg.AuthorizationError):
        syncmsg.RetryPolicy.never().call(fatal)
    attempts: list[int] = []

    def always(left: float | None) -> None:
        attempts.append(1)
        raise syncmsg.NoRespondersError("none")

    with pytest.raises(syncmsg.NoRespondersError):
        syncmsg.RetryPolicy(attempts=3, deadline=None, initial=0).call(always, sleep=lambda s: None)
    assert len(attempts) == 3


def test_encode_headers_and_commands():
    assert encode_headers(None) is None and encode_headers({}) is None
    block = encode_headers({"A": "1", "B": ["x", "y"]})
    assert block == b"NATS/1.0\r\nA: 1\r\nB: x\r\nB: y\r\n\r\n"
    assert pub_command("s", "", b"hi", None) == b"PUB s 2\r\nhi\r\n"
    assert pub_command("s", "r", b"hi", None) == b"PUB s r 2\r\nhi\r\n"
    hpub = pub_command("s", "r", b"hi", block)
    assert hpub.startswith(b"HPUB s r %d %d\r\n" % (len(block), len(block) + 2))
    with pytest.raises(syncmsg.InvalidHeaderError):
        encode_headers([("a", "b")])  # type: ignore[arg-type]
    with pytest.raises(syncmsg.InvalidHeaderError):
        encode_headers({"a:b": "x"})
    with pytest.raises(syncmsg.InvalidHeaderError):
        encode_headers({"a": [b"x"]})  # type: ignore[list-item]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=5))
def test_json_payloads_round_trip(value):
    assert syncmsg.Msg("s", encode_payload(value)).json() == value


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_subject_validation_never_lets_whitespace_or_empty_tokens_through(subject):
    try:
        check_publish_subject(subject)
    except syncmsg.InvalidSubjectError:
        return
    assert subject and not any(c.isspace() for c in subject)
    assert all(token and token not in ("*", ">") for token in subject.split("."))
    check_subscribe_subject(subject)


def test_metadata_parsing():
    ts = 1_700_000_000_123_456_789
    msg = syncmsg.Msg("orders.1", b"", reply=f"$JS.ACK.ORDERS.worker.3.42.7.{ts}.5")
    meta = msg.metadata
    assert (meta.stream, meta.consumer, meta.num_delivered) == ("ORDERS", "worker", 3)
    assert (meta.sequence_stream, meta.sequence_consumer, meta.num_pending) == (42, 7, 5)
    assert meta.timestamp.tzinfo is dt.timezone.utc and meta.timestamp.year == 2023
    v2 = syncmsg.MsgMetadata.from_reply(f"$JS.ACK.hub.ACCHASH.S.c.1.2.3.{ts}.0.rand")
    assert v2 is not None and v2.domain == "hub" and v2.stream == "S"
    assert syncmsg.MsgMetadata.from_reply("$JS.ACK.a.b") is None
    assert syncmsg.MsgMetadata.from_reply("$JS.ACK.S.c.x.2.3.4.0") is None
    with pytest.raises(ValueError, match="not a JetStream"):
        syncmsg.Msg("plain", b"").metadata
    with pytest.raises(ValueError):
        syncmsg.Msg("plain", b"", reply="_INBOX.x").ack()
    assert "plain" in repr(syncmsg.Msg("plain", b"abc"))


def test_error_tree_and_mapping():
    from nats import errors as nerr
    from nats.js import errors as jerr

    assert issubclass(syncmsg.InvalidSubjectError, ValueError)
    assert issubclass(syncmsg.TimeoutError, TimeoutError)
    assert issubclass(syncmsg.ConnectionClosedError, ConnectionError)
    assert issubclass(syncmsg.AuthorizationError, PermissionError)
    assert issubclass(syncmsg.LoopThreadError, RuntimeError)
    cases = [
        (nerr.TimeoutError(), syncmsg.TimeoutError),
        (asyncio.TimeoutError(), syncmsg.TimeoutError),
        (nerr.NoRespondersError(), syncmsg.NoRespondersError),
        (nerr.MaxPayloadError(), syncmsg.PayloadTooLargeError),
        (nerr.BadSubjectError(), syncmsg.InvalidSubjectError),
        (nerr.OutboundBufferLimitError(), syncmsg.BufferFullError),
        (nerr.ConnectionClosedError(), syncmsg.ConnectionClosedError),
        (nerr.AuthorizationError(), syncmsg.AuthorizationError),
        (nerr.NoServersError(), syncmsg.NoServersError),
        (nerr.StaleConnectionError(), syncmsg.NatsConnectionError),
        (OSError("reset"), syncmsg.NatsConnectionError),
        (nerr.Error("other"), syncmsg.SyncMsgError),
        (
            jerr.APIError(code=404, err_code=10059, description="stream not found"),
            syncmsg.StreamNotFoundError,
        ),
        (
            jerr.APIError(code=404, err_code=10014, description="consumer not found"),
            syncmsg.ConsumerNotFoundError,
        ),
        (
            jerr.APIError(code=400, err_code=10071, description="wrong last sequence"),
            syncmsg.WrongLastSequenceError,
        ),
        (jerr.APIError(code=500, err_code=1, description="odd"), syncmsg.JetStreamError),
    ]
    for raw, expected in cases:
        assert type(map_error(raw)) is expected, raw
    mine = syncmsg.NoRespondersError("x")
    assert map_error(mine) is mine
    plain = KeyError("k")
    assert map_error(plain) is plain
    slow = map_error(nerr.SlowConsumerError(subject="s", reply="", sid=1, sub=None))
    assert isinstance(slow, syncmsg.SlowConsumerError) and slow.subject == "s"
    assert syncmsg.RemoteError("bad", subject="svc").subject == "svc"


def test_logger_name():
    assert logging.getLogger("syncmsg").name == "syncmsg"


def test_wait_until_polls_and_fails_with_what_it_waited_for():
    from syncmsg.testing import wait_until

    calls: list[int] = []
    wait_until(lambda: calls.append(1) or len(calls) >= 3, timeout=5, interval=0)
    assert len(calls) == 3
    with pytest.raises(AssertionError, match=r"the moon not met within 0\.05s"):
        wait_until(lambda: False, timeout=0.05, what="the moon")

"""Why a first connection failed, and whether it is retried, against real nats-servers.

Two layers are tested. ``explain_connect_failure`` and ``is_definite_refusal`` are fed what
nats-py really raises and reports to its error callback for each case (the raw attempt below
drives nats-py itself against a real server). Then ``syncmsg.connect`` is driven end to end;
the tests that need the connect path to call those functions are marked xfail until it does.

What nats-py 2.x gives for each case (measured; allow_reconnect=False, as syncmsg connects):

=============================  ============================  ===============================
case                           raised by ``nc.connect``      passed to ``error_cb``
=============================  ============================  ===============================
refused port                   TimeoutError() (wait_for)     ConnectionRefusedError, repeated
wrong user/password, token     Error("nats: 'Authorization   the same Error
                               Violation'")
wrong CA                       SSLCertVerificationError      the same
                               "unable to get local issuer"
hostname mismatch              SSLCertVerificationError      the same
                               "Hostname mismatch"
mTLS without a client cert     ConnectionResetError          the same; 1 time in 30 an
                               ("Connection lost"), or       SSLError CERTIFICATE_REQUIRED
                               BrokenPipeError under load
invalid nkey seed              nkeys.ErrInvalidSeed          nothing (raised before dialling)
"not a url"                    TimeoutError()                socket.gaierror, repeated
=============================  ============================  ===============================
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import pytest

import syncmsg
from syncmsg._errors import explain_connect_failure, is_definite_refusal

pytestmark = pytest.mark.timeout(60)

SEED = "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY"
SEED_PUBLIC_KEY = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"
OTHER_SEED = "SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU"
NKEY_CONFIG = f'authorization {{ users = [ {{ nkey: "{SEED_PUBLIC_KEY}" }} ] }}'
AT_ONCE = 3.0  # seconds: far below the 10 s default connect_retry deadline


@dataclass
class Certs:
    ca: Path
    other_ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    trustme = pytest.importorskip("trustme")
    tmp = tmp_path_factory.mktemp("certs")
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("client@example.com")
    paths = Certs(*(tmp / name for name in ("ca", "other", "sc", "sk", "cc", "ck")))
    ca.cert_pem.write_to_path(str(paths.ca))
    other.cert_pem.write_to_path(str(paths.other_ca))
    server.cert_chain_pems[0].write_to_path(str(paths.server_cert))
    server.private_key_pem.write_to_path(str(paths.server_key))
    client.cert_chain_pems[0].write_to_path(str(paths.client_cert))
    client.private_key_pem.write_to_path(str(paths.client_key))
    return paths


def tls_url(server: Any) -> str:
    return str(server.url).replace("nats://", "tls://")


# ------------------------------------------------------------------ raw nats-py attempts


@dataclass
class RawAttempt:
    raised: BaseException
    seen: list[BaseException] = field(default_factory=list)
    server_info: dict[str, Any] = field(default_factory=dict)


def raw_attempt(url: str, timeout: float = 2.0, **options: Any) -> RawAttempt:
    """One nats-py connect as syncmsg makes it, and what nats-py raised and reported."""

    async def run() -> RawAttempt:
        seen: list[BaseException] = []

        async def on_error(exc: BaseException) -> None:
            seen.append(exc)

        nc = nats.NATS()
        try:
            await asyncio.wait_for(
                nc.connect(
                    servers=[url],
                    allow_reconnect=False,
                    connect_timeout=timeout,
                    reconnect_time_wait=0.2,
                    error_cb=on_error,
                    **options,
                ),
                timeout,
            )
        except BaseException as exc:
            info = dict(getattr(nc, "_server_info", {}) or {})
            attempt = RawAttempt(exc, seen, info)
        else:
            raise AssertionError(f"connected to {url}")
        finally:
            # After a failed TLS handshake nats-py's close() does not return.
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(nc.close(), 0.2)
        return attempt

    return asyncio.run(run())


def explain(attempt: RawAttempt, url: str, has_client_cert: bool = False) -> syncmsg.SyncMsgError:
    return explain_connect_failure(
        attempt.raised,
        attempt.seen,
        [url],
        server_info=attempt.server_info,
        has_client_cert=has_client_cert,
    )


def tls_context(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None and key is not None:
        context.load_cert_chain(str(cert), str(key))
    return context


def test_refused_port_is_explained_as_refused_and_retryable(refused_url: str) -> None:
    url = refused_url
    attempt = raw_attempt(url, timeout=0.5)
    assert isinstance(attempt.raised, asyncio.TimeoutError)  # all nats-py raises
    assert any(isinstance(e, ConnectionRefusedError) for e in attempt.seen)
    error = explain(attempt, url)
    assert type(error) is syncmsg.NoServersError
    assert "connection refused" in str(error) and url in str(error)
    assert "TimeoutError()" not in str(error)
    assert isinstance(error.__cause__, ConnectionRefusedError)
    assert not is_definite_refusal(error) and not is_definite_refusal(attempt.seen[0])


def test_silent_server_is_explained_as_a_timeout() -> None:
    with socket.socket() as listener:  # accepts TCP, never says INFO
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"nats://127.0.0.1:{listener.getsockname()[1]}"
        attempt = raw_attempt(url, timeout=0.5)
    error = explain(attempt, url)
    assert type(error) is syncmsg.NoServersError and not is_definite_refusal(error)
    assert "timed out" in str(error) or "closed the connection" in str(error)


@pytest.mark.parametrize(
    ("server_options", "client_options"),
    [
        ({"user": "alice", "password": "s3cret"}, {"user": "alice", "password": "wrong-pw"}),
        ({"user": "alice", "password": "s3cret"}, {}),
        ({"token": "tok-123"}, {"token": "wrong-token"}),
        ({"config_text": NKEY_CONFIG}, {"nkeys_seed_str": OTHER_SEED}),
    ],
    ids=["wrong-password", "no-credentials", "wrong-token", "unknown-nkey"],
)
def test_refused_credentials_are_definite(
    nats_server_factory: Any, server_options: dict[str, Any], client_options: dict[str, Any]
) -> None:
    server = nats_server_factory(jetstream=False, **server_options)
    attempt = raw_attempt(server.url, **client_options)
    assert "Authorization Violation" in str(attempt.raised)
    error = explain(attempt, server.url)
    assert type(error) is syncmsg.AuthorizationError
    assert "refused the credentials" in str(error) and server.url in str(error)
    assert is_definite_refusal(error) and is_definite_refusal(attempt.raised)
    for secret in ("wrong-pw", "wrong-token", OTHER_SEED, "s3cret"):
        assert secret not in str(error)


def test_wrong_ca_is_a_definite_tls_error(nats_server_factory: Any, certs: Certs) -> None:
    server = nats_server_factory(
        jetstream=False, tls_cert=certs.server_cert, tls_key=certs.server_key
    )
    url = tls_url(server)
    attempt = raw_attempt(url, tls=tls_context(certs.other_ca))
    assert isinstance(attempt.raised, ssl.SSLCertVerificationError)
    error = explain(attempt, url)
    assert type(error) is syncmsg.TLSError and isinstance(error, syncmsg.NatsConnectionError)
    assert "not trusted" in str(error) and "tls_ca" in str(error)
    assert "unable to get local issuer certificate" in str(error)
    assert error.__cause__ is attempt.raised
    assert is_definite_refusal(error) and is_definite_refusal(attempt.raised)


def test_hostname_mismatch_is_a_definite_tls_error(nats_server_factory: Any, certs: Certs) -> None:
    server = nats_server_factory(
        jetstream=False, tls_cert=certs.server_cert, tls_key=certs.server_key
    )
    url = tls_url(server)
    attempt = raw_attempt(url, tls=tls_context(certs.ca), tls_hostname="wrong.example")
    error = explain(attempt, url)
    assert type(error) is syncmsg.TLSError and is_definite_refusal(attempt.raised)
    assert "not valid for this host" in str(error) and "wrong.example" in str(error)


def test_mtls_without_a_client_certificate_is_a_definite_tls_error(
    nats_server_factory: Any, certs: Certs
) -> None:
    server = nats_server_factory(
        jetstream=False,
        tls_cert=certs.server_cert,
        tls_key=certs.server_key,
        tls_ca=certs.ca,
        extra_args=["--tlsverify"],
    )
    url = tls_url(server)
    for _ in range(5):  # nats-py reports it several ways (see the table above)
        attempt = raw_attempt(url, tls=tls_context(certs.ca))
        assert attempt.server_info.get("tls_verify") is True
        error = explain(attempt, url, has_client_cert=False)
        assert type(error) is syncmsg.TLSError, error
        assert "requires a client certificate" in str(error)
        assert is_definite_refusal(error)
    # Both ways the hang-up arrives are read as the missing certificate...
    for raw in (ConnectionResetError("Connection lost"), BrokenPipeError(32, "Broken pipe")):
        attempt = RawAttempt(raw, [], {"tls_verify": True})
        assert type(explain(attempt, "tls://h:1")) is syncmsg.TLSError
    # ...but with a certificate configured, a dropped handshake is not diagnosed as missing one.
    lost = RawAttempt(ConnectionResetError("Connection lost"), [], {"tls_verify": True})
    assert type(explain(lost, url, has_client_cert=True)) is syncmsg.NoServersError


def test_client_certificate_from_an_unknown_ca_is_explained(
    nats_server_factory: Any, certs: Certs, tmp_path: Path
) -> None:
    trustme = pytest.importorskip("trustme")
    stranger = trustme.CA().issue_cert("client@example.com")
    cert, key = tmp_path / "stranger.pem", tmp_path / "stranger-key.pem"
    stranger.cert_chain_pems[0].write_to_path(str(cert))
    stranger.private_key_pem.write_to_path(str(key))
    server = nats_server_factory(
        jetstream=False,
        tls_cert=certs.server_cert,
        tls_key=certs.server_key,
        tls_ca=certs.ca,
        extra_args=["--tlsverify"],
    )
    url = tls_url(server)
    attempt = raw_attempt(url, tls=tls_context(certs.ca, cert, key))
    error = explain(attempt, url, has_client_cert=True)
    # Mostly the server's "unknown ca" alert arrives; now and then only the dropped link.
    assert "client certificate" in str(error)
    assert type(error) is (
        syncmsg.TLSError if is_definite_refusal(error) else syncmsg.NoServersError
    )


def test_invalid_seed_is_a_configuration_error_that_hides_the_seed(
    nats_server_factory: Any,
) -> None:
    server = nats_server_factory(jetstream=False, config_text=NKEY_CONFIG)
    broken_seed = SEED.replace("A", "0", 1)  # not base32 (nkeys does not check the CRC)
    attempt = raw_attempt(server.url, nkeys_seed_str=broken_seed)
    assert type(attempt.raised).__name__ == "ErrInvalidSeed" and not attempt.seen
    error = explain(attempt, server.url)
    assert type(error) is syncmsg.ConfigurationError and is_definite_refusal(error)
    assert "seed is invalid" in str(error) and broken_seed[:8] not in str(error)


def test_unresolvable_host_is_retryable() -> None:
    url = "nats://no-such-host.invalid:4222"
    attempt = raw_attempt(url, timeout=1.0)
    error = explain(attempt, url)
    assert type(error) is syncmsg.NoServersError and not is_definite_refusal(error)
    assert "cannot resolve the host name" in str(error)


# ------------------------------------------------------------------ syncmsg.connect


def connect_fails(expected: type[BaseException], *args: Any, **options: Any) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(expected) as info:
        syncmsg.connect(*args, **options).close()
    return str(info.value), time.monotonic() - started


def test_wrong_password_fails_at_once(nats_server_factory: Any) -> None:
    server = nats_server_factory(jetstream=False, user="alice", password="s3cret-pw")
    text, elapsed = connect_fails(
        syncmsg.AuthorizationError, server.url, user="alice", password="wrong-pw"
    )
    assert elapsed < AT_ONCE and "wrong-pw" not in text and "s3cret" not in text


def test_wrong_password_in_the_url_is_not_shown(nats_server_factory: Any) -> None:
    server = nats_server_factory(jetstream=False, user="alice", password="s3cret-pw")
    url = server.url.replace("nats://", "nats://alice:Wr0ngPassw0rd@")
    text, elapsed = connect_fails(syncmsg.AuthorizationError, url)
    assert elapsed < AT_ONCE and "Wr0ng" not in text and "Passw0rd" not in text


def test_wrong_token_fails_at_once(nats_server_factory: Any) -> None:
    server = nats_server_factory(jetstream=False, token="tok-123")
    text, elapsed = connect_fails(syncmsg.AuthorizationError, server.url, token="987654321")
    assert elapsed < AT_ONCE and "987654321" not in text


def test_wrong_ca_fails_at_once(nats_server_factory: Any, certs: Certs) -> None:
    server = nats_server_factory(
        jetstream=False, tls_cert=certs.server_cert, tls_key=certs.server_key
    )
    text, elapsed = connect_fails(syncmsg.TLSError, tls_url(server), tls_ca=certs.other_ca)
    assert elapsed < AT_ONCE and "CERTIFICATE_VERIFY_FAILED" in text


def test_hostname_mismatch_fails_at_once(nats_server_factory: Any, certs: Certs) -> None:
    server = nats_server_factory(
        jetstream=False, tls_cert=certs.server_cert, tls_key=certs.server_key
    )
    text, elapsed = connect_fails(
        syncmsg.TLSError, tls_url(server), tls_ca=certs.ca, tls_hostname="wrong.example"
    )
    assert elapsed < AT_ONCE and "wrong.example" in text


def test_mtls_with_a_client_certificate_connects(nats_server_factory: Any, certs: Certs) -> None:
    server = nats_server_factory(
        jetstream=False,
        tls_cert=certs.server_cert,
        tls_key=certs.server_key,
        tls_ca=certs.ca,
        extra_args=["--tlsverify"],
    )
    options = {"tls_ca": certs.ca, "tls_cert": certs.client_cert, "tls_key": certs.client_key}
    with syncmsg.connect(tls_url(server), **options) as client:
        assert client.health()["ok"]


@pytest.mark.parametrize(
    "broken_seed",
    [SEED[:-2] + "XX", SEED.replace("A", "0", 1), SEED[:20], SEED.lower()],
    ids=["checksum", "not-base32", "short", "lower-case"],
)
def test_invalid_seed_fails_at_config_build_without_showing_it(
    broken_seed: str, refused_url: str
) -> None:
    text, elapsed = connect_fails(syncmsg.ConfigurationError, refused_url, nkey_seed=broken_seed)
    assert elapsed < AT_ONCE and "not a valid NKey seed" in text
    assert broken_seed[:6] not in text and broken_seed[-6:] not in text


def test_nkey_seed_is_the_seed_or_a_file_holding_it(
    nats_server_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = nats_server_factory(jetstream=False, config_text=NKEY_CONFIG)
    seed_file = tmp_path / "user.nk"
    seed_file.write_text(f"{SEED}\n")
    for value in (SEED, str(seed_file)):
        with syncmsg.connect(server.url, nkey_seed=value) as client:
            assert client.health()["ok"]
    monkeypatch.setenv("NATS_NKEY_SEED", str(seed_file))
    with syncmsg.connect(server.url) as client:
        assert client.health()["ok"]
    text, _ = connect_fails(syncmsg.AuthorizationError, server.url, nkey_seed=OTHER_SEED)
    assert OTHER_SEED not in text


def test_unreadable_seed_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "missing.nk"
    text, _ = connect_fails(syncmsg.ConfigurationError, "nats://h:1", nkey_seed=str(missing))
    assert str(missing) in text
    garbage = tmp_path / "garbage.nk"
    garbage.write_text("SUA-this-is-no-seed-but-secret-anyway\n")
    text, _ = connect_fails(syncmsg.ConfigurationError, "nats://h:1", nkey_seed=str(garbage))
    assert str(garbage) in text and "this-is-no-seed" not in text


@pytest.mark.parametrize(
    "url",
    ["not a url", "nats://", "nats://:4222", "nats://h:99999", "nats://h:port", "%%%", "::::"],
)
def test_unparseable_url_fails_at_once(url: str) -> None:
    text, elapsed = connect_fails(syncmsg.ConfigurationError, url)
    assert elapsed < AT_ONCE and "url" in text


def test_unreadable_or_broken_tls_files_are_named(
    nats_server_factory: Any, certs: Certs, tmp_path: Path
) -> None:
    server = nats_server_factory(
        jetstream=False, tls_cert=certs.server_cert, tls_key=certs.server_key
    )
    missing = tmp_path / "missing-ca.pem"
    text, elapsed = connect_fails(syncmsg.ConfigurationError, tls_url(server), tls_ca=missing)
    assert str(missing) in text and elapsed < AT_ONCE
    broken = tmp_path / "broken-ca.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n")
    text, elapsed = connect_fails(syncmsg.ConfigurationError, tls_url(server), tls_ca=broken)
    assert str(broken) in text and "not base64" not in text and elapsed < AT_ONCE
    text, _ = connect_fails(
        syncmsg.ConfigurationError,
        tls_url(server),
        tls_ca=certs.ca,
        tls_cert=certs.client_cert,
        tls_key=certs.server_key,  # not the certificate's key
    )
    assert str(certs.client_cert) in text and str(certs.server_key) in text


# -------------------------------------------------- waiting for the connect path's wiring


def test_refused_port_says_connection_refused(refused_url: str) -> None:
    url = refused_url
    policy = syncmsg.RetryPolicy(attempts=None, deadline=1.0)
    started = time.monotonic()
    with pytest.raises(syncmsg.NoServersError) as info:
        syncmsg.connect(url, connect_retry=policy)
    assert time.monotonic() - started < 5
    assert "connection refused" in str(info.value) and "TimeoutError()" not in str(info.value)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


def test_connect_timeout_bounds_the_whole_connect(refused_url: str) -> None:
    url = refused_url  # the default connect_retry allows 10 s
    started = time.monotonic()
    with pytest.raises(syncmsg.NoServersError):
        syncmsg.connect(url, timeout=1)
    assert time.monotonic() - started < 2.5


def test_mtls_without_a_client_certificate_fails_at_once(
    nats_server_factory: Any, certs: Certs
) -> None:
    server = nats_server_factory(
        jetstream=False,
        tls_cert=certs.server_cert,
        tls_key=certs.server_key,
        tls_ca=certs.ca,
        extra_args=["--tlsverify"],
    )
    text, elapsed = connect_fails(syncmsg.TLSError, tls_url(server), tls_ca=certs.ca)
    assert elapsed < AT_ONCE and "requires a client certificate" in text


def test_tls_failure_messages_name_the_cause(nats_server_factory: Any, certs: Certs) -> None:
    server = nats_server_factory(
        jetstream=False, tls_cert=certs.server_cert, tls_key=certs.server_key
    )
    started = time.monotonic()
    with pytest.raises(syncmsg.TLSError) as info:
        syncmsg.connect(tls_url(server), tls_ca=certs.other_ca)
    assert "not trusted" in str(info.value)
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
    # nats-py's close() never returns after a failed handshake: do not wait for it.
    assert time.monotonic() - started < 1.0


def test_refused_credentials_keep_the_cause(nats_server_factory: Any) -> None:
    server = nats_server_factory(jetstream=False, user="alice", password="s3cret-pw")
    with pytest.raises(syncmsg.AuthorizationError) as info:
        syncmsg.connect(server.url, user="alice", password="wrong-pw")
    assert info.value.__cause__ is not None and server.url in str(info.value)

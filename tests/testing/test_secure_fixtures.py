"""syncmsg.testing's secured servers: TLS certificates, accounts, JWTs, and their fixtures.

Every server here is a real nats-server; the JWTs are checked by the server itself, and by
nats-py reading the .creds files.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nats
import pytest

import syncmsg
from syncmsg.testing import (
    AccountsConfig,
    JwtOperator,
    NatsServer,
    NKey,
    Permissions,
    TlsCertificates,
    creds_text,
    decode_jwt,
    encode_jwt,
    write_creds,
)
from syncmsg.testing import _server as server_module

pytestmark = pytest.mark.timeout(60)


async def _quiet(exc: Exception) -> None:
    """nats-py error callback that keeps expected errors out of the log."""


def _nats_py_round_trip(url: str, **options: Any) -> bytes:
    """Connect with raw nats-py (the other implementation), echo one request, close."""

    async def run() -> bytes:
        nc = await nats.connect(
            url, allow_reconnect=False, connect_timeout=5, error_cb=_quiet, **options
        )
        try:

            async def echo(msg: Any) -> None:
                await msg.respond(msg.data)

            await nc.subscribe("echo", cb=echo)
            return bytes((await nc.request("echo", b"ping", timeout=5)).data)
        finally:
            await nc.close()

    return asyncio.run(run())


# --------------------------------------------------------------------------- NKeys and JWTs


def test_nkeys_have_their_role_and_keep_the_seed_out_of_the_repr() -> None:
    for kind, letter in [("operator", "O"), ("account", "A"), ("user", "U")]:
        key = NKey.generate(kind)  # type: ignore[arg-type]
        assert key.kind == kind and key.public_key.startswith(letter)
        assert key.seed.startswith("S" + letter)
        assert key.seed not in repr(key) and key.public_key in repr(key)
        again = NKey.from_seed(key.seed)
        assert again.public_key == key.public_key
        assert again.sign(b"data") == key.sign(b"data")
    with pytest.raises(syncmsg.ConfigurationError, match="not a valid NKey seed"):
        NKey.from_seed("SUNOTASEED")


def test_jwt_round_trip_and_signature_check() -> None:
    operator = NKey.generate("operator")
    account = NKey.generate("account")
    token = encode_jwt(
        "account",
        subject=account.public_key,
        signer=operator,
        name="TENANT_A",
        nats={"limits": {"conn": -1}},
        expires=time.time() + 60,
    )
    claims = decode_jwt(token)
    assert claims["iss"] == operator.public_key and claims["sub"] == account.public_key
    assert claims["name"] == "TENANT_A" and claims["exp"] > claims["iat"]
    assert claims["nats"] == {"limits": {"conn": -1}, "type": "account", "version": 2}
    assert len(claims["jti"]) == 52  # base32 of a 32-byte hash, as nats-io/jwt makes it

    header, body, signature = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(body + "=="))
    forged["name"] = "TENANT_B"
    forged_body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    with pytest.raises(syncmsg.ConfigurationError, match="signature"):
        decode_jwt(f"{header}.{forged_body}.{signature}")
    assert decode_jwt(f"{header}.{forged_body}.{signature}", verify=False)["name"] == "TENANT_B"
    for junk in ["", "a.b", "x.y.z", f"{header}.{body}"]:
        with pytest.raises(syncmsg.ConfigurationError):
            decode_jwt(junk)


def test_jwt_roles_are_enforced_before_signing() -> None:
    operator, account, user = (NKey.generate(k) for k in ("operator", "account", "user"))  # type: ignore[arg-type]
    with pytest.raises(syncmsg.ConfigurationError, match="signed by an account"):
        encode_jwt("user", subject=user.public_key, signer=operator, name="u")
    with pytest.raises(syncmsg.ConfigurationError, match="must be a account public key"):
        encode_jwt("account", subject=user.public_key, signer=operator, name="a")
    with pytest.raises(syncmsg.ConfigurationError, match="signed by the operator itself"):
        other = NKey.generate("operator")
        encode_jwt("operator", subject=other.public_key, signer=operator, name="o")
    assert decode_jwt(encode_jwt("user", subject=user.public_key, signer=account, name="u"))


def test_creds_files_are_private_and_read_by_nats_py(tmp_path: Path) -> None:
    account, user = NKey.generate("account"), NKey.generate("user")
    token = encode_jwt("user", subject=user.public_key, signer=account, name="u")
    path = write_creds(tmp_path / "deep" / "u.creds", token, user.seed)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == creds_text(token, user.seed)
    path.chmod(0o644)
    write_creds(path, token, user.seed)  # rewriting an existing file tightens it again
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    from nats.aio.client import Client as NatsClient

    nc = NatsClient()
    nc._user_credentials = str(path)  # nats-py's own .creds reader
    nc.options = {}
    nc._setup_nkeys_jwt_connect()
    assert nc._user_jwt_cb is not None and nc._user_jwt_cb() == token.encode()
    assert nc._signature_cb is not None and len(nc._signature_cb("nonce")) > 0


def test_the_builders_import_lazily() -> None:
    code = (
        "import sys, syncmsg.testing\n"
        "assert 'nkeys' not in sys.modules and 'trustme' not in sys.modules, sys.modules.keys()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


# --------------------------------------------------------------------------- config building


def test_permissions_render_for_config_files_and_jwts() -> None:
    assert Permissions().is_empty()
    assert Permissions().jwt_claims() == {"pub": {}, "sub": {}}
    perms = Permissions(
        publish=["task.>"], subscribe=[], deny_publish=["task.secret"], allow_responses=True
    )
    assert perms.config_text() == (
        '{publish: {allow: ["task.>"], deny: ["task.secret"]}, subscribe: {deny: [">"]}, '
        "allow_responses: true}"
    )
    assert perms.jwt_claims() == {
        "pub": {"allow": ["task.>"], "deny": ["task.secret"]},
        "sub": {"deny": [">"]},
        "resp": {"max": 1, "ttl": 0},
    }
    assert Permissions(deny_subscribe=["audit.>"]).config_text() == (
        '{subscribe: {deny: ["audit.>"]}}'
    )


def test_accounts_config_checks_what_it_is_given() -> None:
    accounts = AccountsConfig()
    with pytest.raises(syncmsg.ConfigurationError, match="no account has a user"):
        accounts.config_text()
    tenant = accounts.account("TENANT_A", jetstream=True)
    with pytest.raises(syncmsg.ConfigurationError, match="already exists"):
        accounts.account("TENANT_A")
    for bad in ["", "a b", "../x", ".hidden", "x" * 65, "a/b"]:
        with pytest.raises(syncmsg.ConfigurationError):
            accounts.account(bad)
        with pytest.raises(syncmsg.ConfigurationError):
            tenant.user(bad)
    user = tenant.user("api")
    assert len(user.password) >= 20 and user.password not in repr(user)
    assert tenant.user("fixed", "pw").password == "pw"
    assert "jetstream: enabled" in accounts.config_text()


def test_an_export_and_import_in_a_config_file_carry_their_options() -> None:
    accounts = AccountsConfig()
    audit = accounts.account("AUDIT")
    audit.export_service("audit.>")
    audit.export_stream("notices.>")
    tenant = accounts.account("TENANT_A")
    tenant.import_service(audit, "audit.>", share=True)
    tenant.import_stream(audit, "notices.>", to="from-audit.>")
    tenant.user("api")
    text = accounts.config_text()
    assert '{service: "audit.>"}' in text and '{stream: "notices.>"}' in text
    assert '{service: {account: "AUDIT", subject: "audit.>"}, share: true}' in text
    assert '{stream: {account: "AUDIT", subject: "notices.>"}, to: "from-audit.>"}' in text


def test_jwt_operator_writes_a_memory_resolver_config(nats_operator: JwtOperator) -> None:
    tenant = nats_operator.account("TENANT_A", jetstream=True)
    user = tenant.user("api", permissions=Permissions(publish=["x"]))
    assert user.creds_file.is_file() and user.creds_file.is_relative_to(nats_operator.directory)
    assert user.connect_options() == {"creds": user.creds_file}
    assert user.environ() == {"NATS_CREDS": str(user.creds_file)}
    assert user.seed not in repr(user) and user.jwt not in repr(user)
    text = nats_operator.config_text()
    assert "resolver: MEMORY" in text
    assert f'system_account: "{nats_operator.system_account.public_key}"' in text
    account_claims = decode_jwt(tenant.jwt())
    assert account_claims["iss"] == nats_operator.public_key
    assert account_claims["nats"]["limits"]["disk_storage"] == -1
    assert decode_jwt(user.jwt)["iss"] == tenant.public_key
    assert decode_jwt(user.jwt)["nats"]["pub"] == {"allow": ["x"]}
    assert decode_jwt(nats_operator.jwt())["nats"]["system_account"] == (
        nats_operator.system_account.public_key
    )
    with pytest.raises(syncmsg.ConfigurationError, match="already exists"):
        nats_operator.account("TENANT_A")
    assert "TENANT_A" in repr(nats_operator)


def test_temporary_directories_are_removed_by_cleanup() -> None:
    operator = JwtOperator()
    user = operator.account("A").user("u")
    assert user.creds_file.exists()
    operator.cleanup()
    assert not operator.directory.exists()
    certs = TlsCertificates()
    assert certs.ca_file.exists()
    certs.cleanup()
    assert not certs.directory.exists()


# --------------------------------------------------------------------------- TLS


def test_tls_certificates_files_and_options(tmp_path: Path) -> None:
    certs = TlsCertificates(tmp_path / "tls")
    for path in (certs.ca_file, certs.server_cert, certs.client_cert):
        assert path.read_text().startswith("-----BEGIN CERTIFICATE-----")
    for key in (certs.server_key, certs.client_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert certs.connect_options() == {
        "tls_ca": certs.ca_file,
        "tls_cert": certs.client_cert,
        "tls_key": certs.client_key,
    }
    assert certs.environ(client_cert=False) == {"NATS_TLS_CA": str(certs.ca_file)}
    assert isinstance(certs.ssl_context(), ssl.SSLContext)
    block = certs.server_tls_block(verify=True, handshake_first=True)
    assert "verify: true" in block and "handshake_first: true" in block
    assert str(tmp_path) in repr(certs)
    with pytest.raises(syncmsg.ConfigurationError, match="at least one host"):
        TlsCertificates(tmp_path / "none", hosts=())


def test_nats_server_tls_arguments_are_checked(nats_tls_certs: TlsCertificates) -> None:
    with pytest.raises(syncmsg.ConfigurationError, match="either tls or tls_cert"):
        NatsServer(tls=nats_tls_certs, tls_cert="c.pem", tls_key="k.pem")
    with pytest.raises(syncmsg.ConfigurationError, match="need tls=TlsCertificates"):
        NatsServer(tls_verify=True)
    server = NatsServer(tls=nats_tls_certs, tls_handshake_first=True)
    try:
        assert server.client_url.startswith("tls://")
        assert server.connect_options() == {
            "tls_ca": nats_tls_certs.ca_file,
            "tls_handshake_first": True,
        }
    finally:
        server.close()
    assert NatsServer(jetstream=False).connect_options() == {}


def test_tls_fixtures_serve_both_implementations(
    nats_tls_server: NatsServer, nats_mtls_server: NatsServer, nats_tls_certs: TlsCertificates
) -> None:
    for server, client_cert in [(nats_tls_server, False), (nats_mtls_server, True)]:
        context = nats_tls_certs.ssl_context(client_cert=client_cert)
        assert _nats_py_round_trip(server.client_url, tls=context) == b"ping"
        with syncmsg.connect(server.client_url, **server.connect_options()) as client:
            assert client.health()["ok"]
    assert "tls_cert" in nats_mtls_server.connect_options()
    assert "tls_cert" not in nats_tls_server.connect_options()


def test_tls_first_readiness_reads_info_over_tls(
    nats_tls_first_server: NatsServer, nats_tls_certs: TlsCertificates
) -> None:
    server = nats_tls_first_server
    plain = server_module._read_info("127.0.0.1", server.port, 0.3)
    assert plain == {}  # the server says nothing until the handshake
    info = server_module._read_info("127.0.0.1", server.port, 2.0, nats_tls_certs.ssl_context())
    assert info is not None and info["server_name"] == server.name  # our process, not a stranger
    assert info.get("tls_required") is True
    context = nats_tls_certs.ssl_context(client_cert=False)
    assert _nats_py_round_trip(server.client_url, tls=context, tls_handshake_first=True) == b"ping"
    untrusted = ssl.create_default_context()  # the system CAs do not know the test CA
    assert server_module._read_info("127.0.0.1", server.port, 2.0, untrusted) is None


def test_tls_first_server_restarts_on_its_port(nats_secure_factory: Any) -> None:
    server = nats_secure_factory(tls_handshake_first=True, tls_verify=True, jetstream=False)
    port = server.port
    server.restart()
    assert server.port == port and server.is_running
    with syncmsg.connect(server.client_url, **server.connect_options()) as client:
        assert client.health()["ok"]


# --------------------------------------------------------------------------- secured servers


def test_secure_factory_combines_tls_and_accounts(nats_secure_factory: Any) -> None:
    accounts = AccountsConfig()
    user = accounts.account("APP", jetstream=True).user("app")
    server = nats_secure_factory(tls=True, auth=accounts, config_text="max_payload: 4096")
    options = {**server.connect_options(), **user.connect_options()}
    with syncmsg.connect(server.client_url, **options) as client:
        with pytest.raises(syncmsg.PayloadTooLargeError):  # the extra config_text applies
            client.publish("app.big", b"x" * 5000)
        js = client.jetstream()
        js.add_stream(syncmsg.StreamSpec(name="APP", subjects=["app.>"]))
        assert js.publish("app.one", b"1").seq == 1


def test_operator_mode_server_accepts_generated_creds(
    nats_secure_factory: Any, nats_operator: JwtOperator
) -> None:
    tenant = nats_operator.account("TENANT_A", jetstream=True)
    user = tenant.user("api")
    server = nats_secure_factory(auth=nats_operator)
    assert _nats_py_round_trip(server.url, user_credentials=str(user.creds_file)) == b"ping"
    with syncmsg.connect(server.url, **user.connect_options()) as client:
        js = client.jetstream()
        js.add_stream(syncmsg.StreamSpec(name="TASKS", subjects=["task.>"]))
        assert js.publish("task.email.task.created", b"{}").stream == "TASKS"


def test_operator_mode_refuses_expired_and_foreign_users(
    nats_secure_factory: Any, nats_operator: JwtOperator
) -> None:
    tenant = nats_operator.account("TENANT_A")
    expired = tenant.user("old", expires=time.time() - 60)
    stranger = JwtOperator().account("ELSEWHERE").user("spy")  # signed by another operator
    bearer = tenant.user("bearer", bearer=True)
    assert decode_jwt(bearer.jwt)["nats"]["bearer_token"] is True
    server = nats_secure_factory(auth=nats_operator, jetstream=False)
    once = syncmsg.RetryPolicy.never()
    for user in (expired, stranger):
        with pytest.raises(syncmsg.AuthorizationError):
            syncmsg.connect(server.url, connect_retry=once, **user.connect_options())
    with syncmsg.connect(server.url, **bearer.connect_options()) as client:
        assert client.health()["ok"]


def test_config_file_user_names_are_server_wide() -> None:
    accounts = AccountsConfig()
    accounts.account("A").user("api")
    with pytest.raises(syncmsg.ConfigurationError, match="server-wide"):
        accounts.account("B").user("api")


def test_the_testing_guides_example(nats_secure_factory: Any, nats_operator: JwtOperator) -> None:
    """docs/testing.md's secured-server test, as written there."""
    from syncmsg.testing import wait_until

    tenant = nats_operator.account("TENANT_A", jetstream=True)
    api = tenant.user("api", permissions=Permissions(publish=["task.>"], subscribe=["_INBOX.>"]))
    server = nats_secure_factory(tls=True, auth=nats_operator)
    errors: list[BaseException] = []
    options = {**server.connect_options(), **api.connect_options()}
    with syncmsg.connect(
        server.client_url, error_callback=lambda e, m: errors.append(e), **options
    ) as client:
        client.publish("admin.shutdown", b"")
        wait_until(lambda: errors, timeout=5, what="the permissions violation")
        assert client.is_connected

"""The security guide's scenarios, tried as an adversary would, on real servers.

Auth methods by argument and by NATS_* variables; TLS, mTLS and TLS-first; the design's
per-tenant accounts (isolation, the AUDIT stream shared through a service export and
imports) in config-file and JWT (operator) mode; permission violations; durability
settings and what Nats-Msg-Id de-duplication covers. Tests marked xfail show a client
defect in the core that is reported, not fixed here.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

import syncmsg
from syncmsg.events import (
    AGENT_EVENTS,
    AUDIT_EVENTS,
    TASK_EVENTS,
    AuditEvent,
    EventPublisher,
    EventSubscriber,
    stream_spec,
)
from syncmsg.testing import (
    AccountsConfig,
    JwtOperator,
    NatsServer,
    NKey,
    Permissions,
    TlsCertificates,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)

ONCE = syncmsg.RetryPolicy.never()
DOCS = Path(__file__).resolve().parents[2] / "docs" / "security.md"

# The design's services, as in docs/security.md: the API publishes every event family
# and uses JetStream; the dashboard only watches agent, workflow and task events.
API = Permissions(
    publish=["agent.>", "workflow.>", "task.>", "audit.>", "$JS.API.>", "$JS.ACK.>"],
    subscribe=["_INBOX.>"],
)
DASHBOARD = Permissions(
    publish=["$JS.API.CONSUMER.>", "$JS.ACK.>"],
    subscribe=["agent.>", "workflow.>", "task.>", "_INBOX.>"],
)


def _secret_free(client: syncmsg.Client, *secrets: str) -> None:
    shown = repr(client.config) + repr(client.health()) + str(client.config.redacted_servers)
    for secret in secrets:
        assert secret not in shown


def _echo(client: syncmsg.Client) -> bytes:
    client.serve("sec.echo", lambda msg: msg.data)
    return client.request("sec.echo", b"ping", timeout=5).data


# --------------------------------------------------------------------------- auth methods


class _Method:
    """A secured server for one auth method: good and bad options, and their NATS_* form."""

    def __init__(
        self,
        server: NatsServer,
        good: dict[str, Any],
        env: dict[str, str],
        bad: dict[str, Any],
        secret: str,
        keep: object = None,
    ) -> None:
        self.server, self.good, self.env, self.bad, self.secret = server, good, env, bad, secret
        self._keep = keep  # what owns the files the options name (a JwtUser's .creds)


@pytest.fixture(params=["token", "user_password", "nkey", "jwt_creds"])
def method(request: pytest.FixtureRequest, nats_secure_factory: Any) -> _Method:
    kind = request.param
    if kind == "token":
        token = "tok-" + uuid.uuid4().hex
        server = nats_secure_factory(token=token, jetstream=False)
        return _Method(server, {"token": token}, {"NATS_TOKEN": token}, {"token": "nope"}, token)
    if kind == "jwt_creds":
        operator = JwtOperator()
        user = operator.account("APP").user("app")
        stranger = JwtOperator().account("APP").user("app")  # another operator's user
        server = nats_secure_factory(auth=operator, jetstream=False)
        return _Method(
            server,
            user.connect_options(),
            user.environ(),
            stranger.connect_options(),
            user.seed,
            keep=(user, stranger),
        )
    accounts = AccountsConfig()
    app = accounts.account("APP")
    if kind == "user_password":
        user = app.user("app")
        server = nats_secure_factory(auth=accounts, jetstream=False)
        bad = {"user": "app", "password": "wrong-" + user.password[:4]}
        return _Method(server, user.connect_options(), user.environ(), bad, user.password)
    nkey_user = app.nkey_user()
    server = nats_secure_factory(auth=accounts, jetstream=False)
    unknown = {"nkey_seed": NKey.generate("user").seed}
    return _Method(
        server, nkey_user.connect_options(), nkey_user.environ(), unknown, nkey_user.seed
    )


def test_auth_method_by_argument(method: _Method) -> None:
    with syncmsg.connect(method.server.url, **method.good) as client:
        assert _echo(client) == b"ping"
        _secret_free(client, method.secret)


def test_auth_method_by_environment(method: _Method, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NATS_URL", method.server.url)
    for name, value in method.env.items():
        monkeypatch.setenv(name, value)
    with syncmsg.connect() as client:
        assert _echo(client) == b"ping"
        _secret_free(client, method.secret)


def test_wrong_credentials_are_refused(method: _Method) -> None:
    with pytest.raises(syncmsg.AuthorizationError) as info:
        syncmsg.connect(method.server.url, connect_retry=ONCE, **method.bad)
    assert method.secret not in str(info.value)
    with pytest.raises(syncmsg.AuthorizationError):  # and nothing at all is refused as well
        syncmsg.connect(method.server.url, connect_retry=ONCE)


def test_a_refused_password_fails_at_once(nats_secure_factory: Any) -> None:
    accounts = AccountsConfig()
    user = accounts.account("APP").user("app")
    server = nats_secure_factory(auth=accounts, jetstream=False)
    started = time.monotonic()
    with pytest.raises(syncmsg.AuthorizationError):
        syncmsg.connect(server.url, user=user.name, password="wrong")
    assert time.monotonic() - started < 3.0


# --------------------------------------------------------------------------- TLS


def test_tls_verifies_the_server_certificate(
    nats_tls_server: NatsServer, nats_tls_certs: TlsCertificates
) -> None:
    with syncmsg.connect(nats_tls_server.client_url, tls_ca=nats_tls_certs.ca_file) as client:
        assert _echo(client) == b"ping"
    untrusted = TlsCertificates()  # another CA: the server's certificate is not trusted
    with pytest.raises(syncmsg.NatsConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        syncmsg.connect(nats_tls_server.client_url, tls_ca=untrusted.ca_file, connect_retry=ONCE)
    with pytest.raises(syncmsg.NatsConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        syncmsg.connect(nats_tls_server.client_url, connect_retry=ONCE)  # system CAs only


def test_tls_by_environment(
    nats_mtls_server: NatsServer, nats_tls_certs: TlsCertificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NATS_URL", nats_mtls_server.client_url)
    for name, value in nats_tls_certs.environ().items():  # NATS_TLS_CA, _CERT, _KEY
        monkeypatch.setenv(name, value)
    with syncmsg.connect() as client:
        assert _echo(client) == b"ping"


def test_mtls_requires_a_client_certificate_from_the_ca(
    nats_mtls_server: NatsServer, nats_tls_certs: TlsCertificates
) -> None:
    url = nats_mtls_server.client_url
    with syncmsg.connect(url, **nats_tls_certs.connect_options()) as client:
        assert _echo(client) == b"ping"
    with pytest.raises(syncmsg.NatsConnectionError):
        syncmsg.connect(url, tls_ca=nats_tls_certs.ca_file, connect_retry=ONCE)
    impostor = TlsCertificates()  # a client certificate from another CA
    with pytest.raises(syncmsg.NatsConnectionError):
        syncmsg.connect(
            url,
            tls_ca=nats_tls_certs.ca_file,
            tls_cert=impostor.client_cert,
            tls_key=impostor.client_key,
            connect_retry=ONCE,
        )


def test_an_untrusted_certificate_fails_at_once(nats_tls_server: NatsServer) -> None:
    untrusted = TlsCertificates()  # kept: its files go when it is collected
    started = time.monotonic()
    with pytest.raises(syncmsg.NatsConnectionError):
        syncmsg.connect(nats_tls_server.client_url, tls_ca=untrusted.ca_file)
    assert time.monotonic() - started < 3.0


def test_tls_handshake_first(
    nats_tls_first_server: NatsServer, nats_tls_certs: TlsCertificates
) -> None:
    url = nats_tls_first_server.client_url
    config = syncmsg.Config.build(url, tls_ca=nats_tls_certs.ca_file, tls_handshake_first=True)
    assert config.nats_options()["tls_handshake_first"] is True
    assert "tls_handshake_first" not in syncmsg.Config.build(url).nats_options()
    with syncmsg.connect(url, tls_ca=nats_tls_certs.ca_file, tls_handshake_first=True) as client:
        assert _echo(client) == b"ping"
        assert client.jetstream().stream_names() == []  # JetStream works over TLS-first too
    # A client that waits for INFO first gets nothing: it fails within connect_timeout.
    started = time.monotonic()
    with pytest.raises(syncmsg.SyncMsgError):
        syncmsg.connect(url, tls_ca=nats_tls_certs.ca_file, connect_timeout=1.0, connect_retry=ONCE)
    assert time.monotonic() - started < 5.0


def test_tls_handshake_first_by_environment_with_mtls(
    nats_secure_factory: Any, nats_tls_certs: TlsCertificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = nats_secure_factory(tls_handshake_first=True, tls_verify=True)
    monkeypatch.setenv("NATS_URL", server.client_url)
    monkeypatch.setenv("NATS_TLS_HANDSHAKE_FIRST", "true")
    for name, value in nats_tls_certs.environ().items():
        monkeypatch.setenv(name, value)
    assert syncmsg.Config().tls_handshake_first is True
    with syncmsg.connect() as client:
        assert _echo(client) == b"ping"


# --------------------------------------------------------------------------- tenant accounts


def _design_accounts(auth: AccountsConfig | JwtOperator) -> dict[str, Any]:
    """The design's services: AUDIT owns the audit stream, each tenant its own streams."""
    audit = auth.account("AUDIT", jetstream=True)
    audit.export_service("audit.>")
    users: dict[str, Any] = {"compliance": audit.user("compliance")}
    for tenant in ("TENANT_A", "TENANT_B"):
        account = auth.account(tenant, jetstream=True)
        account.import_service(audit, "audit.>")
        # Config-file user names are server-wide, so each tenant's carry its name.
        prefix = tenant.lower().replace("_", "-")
        users[f"{tenant}/api"] = account.user(f"{prefix}-api", permissions=API)
        users[f"{tenant}/dashboard"] = account.user(f"{prefix}-dashboard", permissions=DASHBOARD)
    return users


class _Design:
    def __init__(self, server: NatsServer, users: dict[str, Any]) -> None:
        self.server, self.users = server, users

    def connect(self, who: str, **options: Any) -> syncmsg.Client:
        return syncmsg.connect(
            self.server.client_url,
            timeout=5.0,
            **self.server.connect_options(),
            **self.users[who].connect_options(),
            **options,
        )


@pytest.fixture(params=["config", "jwt"])
def design(
    request: pytest.FixtureRequest, nats_secure_factory: Any, nats_operator: JwtOperator
) -> _Design:
    auth = AccountsConfig() if request.param == "config" else nats_operator
    users = _design_accounts(auth)
    return _Design(nats_secure_factory(auth=auth, tls=True), users)


@pytest.fixture
def tenant_streams(design: _Design) -> None:
    with design.connect("compliance") as audit:
        audit.jetstream().ensure_stream(stream_spec(AUDIT_EVENTS))
    for tenant in ("TENANT_A", "TENANT_B"):
        with design.connect(f"{tenant}/api") as api:
            js = api.jetstream()
            js.ensure_stream(stream_spec(AGENT_EVENTS))
            js.ensure_stream(stream_spec(TASK_EVENTS))


TENANT_A_ID = uuid.UUID("7d0f3c1e-5b7a-4c2e-9f3a-2b1d4e6f8a90")
TENANT_B_ID = uuid.UUID("1c9e8d7f-2a3b-4c5d-8e9f-0a1b2c3d4e5f")


def test_accounts_isolate_tenants(design: _Design, tenant_streams: None) -> None:
    with (
        design.connect("TENANT_A/api") as a,
        design.connect("TENANT_B/api") as b,
        design.connect("TENANT_A/dashboard") as a_dash,
        design.connect("TENANT_B/dashboard") as b_dash,
    ):
        seen_by_a = a_dash.subscribe_sync("task.>")
        seen_by_b = b_dash.subscribe_sync("task.>")
        ack = EventPublisher(a, source="tenant-a-api").publish_task_event(
            TENANT_A_ID, type="task.created", task_id=uuid.uuid4(), task_type="email"
        )
        assert ack.stream == "TASK_EVENTS" and ack.seq == 1
        assert seen_by_a.next_msg(timeout=5).subject == "task.email.task.created"
        b_dash.flush()
        with pytest.raises(syncmsg.TimeoutError):
            seen_by_b.next_msg(timeout=0.3)
        # Same stream names, separate streams: B's TASK_EVENTS never saw A's event.
        assert a.jetstream().stream_info("TASK_EVENTS").state.messages == 1
        assert b.jetstream().stream_info("TASK_EVENTS").state.messages == 0
        # And the tenants have no audit stream of their own to read.
        with pytest.raises(syncmsg.StreamNotFoundError):
            a.jetstream().stream_info("AUDIT_EVENTS")


def test_audit_stream_is_shared_through_exports_and_imports(
    design: _Design, tenant_streams: None
) -> None:
    received: list[AuditEvent] = []
    got_both = threading.Event()

    def on_audit(event: AuditEvent) -> None:
        received.append(event)
        if len(received) == 2:
            got_both.set()

    with (
        design.connect("compliance") as compliance,
        design.connect("TENANT_A/api") as a,
        design.connect("TENANT_B/api") as b,
        design.connect("TENANT_B/dashboard") as b_dash,
    ):
        b_watch = b_dash.subscribe_sync(">")  # B's dashboard sees nothing of A's audit trail
        acks = []
        for client, tenant in ((a, TENANT_A_ID), (b, TENANT_B_ID)):
            acks.append(
                EventPublisher(client, source="api").publish_audit_event(
                    tenant,
                    type="audit.access",
                    action="read",
                    resource_type="invoice",
                    resource_id="inv-1",
                    metadata={"via": "export"},
                )
            )
        # The ack comes back from AUDIT's stream, through the service import.
        assert [(ack.stream, ack.seq) for ack in acks] == [("AUDIT_EVENTS", 1), ("AUDIT_EVENTS", 2)]
        # A retried publish with the same event id is recognised across the account boundary.
        repeat = EventPublisher(a, source="api").publish(acks[0].event)  # type: ignore[arg-type]
        assert repeat.duplicate is True

        subscriber = EventSubscriber(compliance, service="compliance")
        subscriber.on_audit_event("*", on_audit)
        with subscriber:
            assert got_both.wait(10)
        assert {e.tenant_id for e in received} == {TENANT_A_ID, TENANT_B_ID}
        assert all(e.metadata == {"via": "export"} for e in received)
        b_dash.flush()
        with pytest.raises(syncmsg.TimeoutError):
            b_watch.next_msg(timeout=0.3)


def test_permission_violation_is_reported_and_the_connection_keeps_publishing(
    design: _Design, tenant_streams: None
) -> None:
    errors: list[BaseException] = []
    with design.connect("TENANT_A/api", error_callback=lambda e, m: errors.append(e)) as api:
        api.publish("admin.shutdown", b"now")  # not in the API user's publish list
        wait_until(lambda: len(errors) >= 1, timeout=5, what="the publish violation")
        api.subscribe_sync("audit.>")  # not in its subscribe list either
        wait_until(lambda: len(errors) >= 2, timeout=5, what="the subscribe violation")
        text = [str(e).lower() for e in errors]
        assert 'permissions violation for publish to "admin.shutdown"' in text[0]
        assert 'permissions violation for subscription to "audit.>"' in text[1]
        assert all(isinstance(e, syncmsg.SyncMsgError) for e in errors)
        # Not fatal: the same connection stays up and goes on publishing with acks.
        assert api.is_connected and api.health()["ok"]
        publisher = EventPublisher(api, source="tenant-a-api")
        for n in range(20):
            ack = publisher.publish_agent_event(
                TENANT_A_ID,
                type="agent.progress",
                agent_id=uuid.uuid4(),
                agent_type="planner",
                payload={"n": n},
            )
            assert ack.stream == "AGENT_EVENTS"
        assert api.jetstream().stream_info("AGENT_EVENTS").state.messages == 20
        assert len(errors) == 2 and api.is_connected


def test_permission_violation_is_an_authorization_error(nats_secure_factory: Any) -> None:
    accounts = AccountsConfig()
    user = accounts.account("APP").user("app", permissions=Permissions(publish=["ok.>"]))
    server = nats_secure_factory(auth=accounts, jetstream=False)
    errors: list[BaseException] = []
    with syncmsg.connect(
        server.url, error_callback=lambda e, m: errors.append(e), **user.connect_options()
    ) as client:
        client.publish("forbidden", b"x")
        wait_until(lambda: errors, timeout=5, what="the violation")
        assert isinstance(errors[0], syncmsg.AuthorizationError)


def test_a_denied_jetstream_api_call_does_not_hang(design: _Design, tenant_streams: None) -> None:
    with design.connect("TENANT_A/dashboard", error_callback=lambda e, m: None) as dashboard:
        js = dashboard.jetstream()
        started = time.monotonic()
        with pytest.raises(syncmsg.TimeoutError):  # $JS.API.STREAM.CREATE is not allowed
            js.add_stream(syncmsg.StreamSpec(name="ROGUE", subjects=["rogue.>"]), timeout=1.0)
        assert time.monotonic() - started < 15
        assert dashboard.is_connected


# --------------------------------------------------------------------------- the guide's config


def _conf_blocks(text: str) -> list[str]:
    return re.findall(r"```conf\n(.*?)```", text, flags=re.DOTALL)


def test_the_guides_tenant_config_runs(
    nats_tls_certs: TlsCertificates, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """docs/security.md's complete server config, with our test certificates and ports."""
    blocks = [b for b in _conf_blocks(DOCS.read_text()) if "accounts {" in b]
    assert len(blocks) == 1, "the guide has one complete tenant config"
    conf = blocks[0]
    for placeholder, path in {
        "/etc/nats/certs/server-cert.pem": nats_tls_certs.server_cert,
        "/etc/nats/certs/server-key.pem": nats_tls_certs.server_key,
        "/etc/nats/certs/ca.pem": nats_tls_certs.ca_file,
        "/var/lib/nats": tmp_path / "store",
    }.items():
        assert placeholder in conf
        conf = conf.replace(placeholder, str(path))
    conf = re.sub(r"^listen: .*$", "", conf, flags=re.MULTILINE)  # NatsServer picks the port
    passwords = {var: uuid.uuid4().hex for var in set(re.findall(r"\$([A-Z_]+_PASSWORD)", conf))}
    assert len(passwords) >= 5
    for var, value in passwords.items():
        monkeypatch.setenv(var, value)
    server = NatsServer(config_text=conf, jetstream=False, http_port=0)
    try:
        server.start(timeout=15)
        varz = json.loads(
            urllib.request.build_opener(urllib.request.ProxyHandler({}))
            .open(f"{server.monitor_url}/varz", timeout=5)
            .read()
        )
        assert varz["jetstream"]["config"]["sync_always"] is True
        assert varz["tls_required"] is True and varz["tls_verify"] is True

        def connect(user: str, var: str, **options: Any) -> syncmsg.Client:
            return syncmsg.connect(
                server.client_url,
                user=user,
                password=passwords[var],
                timeout=5.0,
                **nats_tls_certs.connect_options(),
                **options,
            )

        with connect("compliance", "AUDIT_COMPLIANCE_PASSWORD") as compliance:
            compliance.jetstream().ensure_stream(stream_spec(AUDIT_EVENTS))
        errors: list[BaseException] = []
        with (
            connect("tenant-a-dashboard", "TENANT_A_DASHBOARD_PASSWORD") as dashboard,
            connect(
                "tenant-a-api",
                "TENANT_A_API_PASSWORD",
                error_callback=lambda e, m: errors.append(e),
            ) as api,
        ):
            watching = dashboard.subscribe_sync("task.>")
            js = api.jetstream()
            js.ensure_stream(stream_spec(TASK_EVENTS))
            publisher = EventPublisher(api, source="aigentflow-api")
            assert (
                publisher.publish_task_event(
                    TENANT_A_ID, type="task.created", task_id=uuid.uuid4(), task_type="email"
                ).stream
                == "TASK_EVENTS"
            )
            ack = publisher.publish_audit_event(
                TENANT_A_ID,
                type="audit.mutation",
                action="update",
                resource_type="task",
                resource_id="t-1",
            )
            assert ack.stream == "AUDIT_EVENTS"
            assert watching.next_msg(timeout=5).subject == "task.email.task.created"
            api.publish("billing.invoice", b"{}")
            wait_until(lambda: errors, timeout=5, what="a permissions violation")
            assert api.is_connected
        with connect("tenant-b-api", "TENANT_B_API_PASSWORD") as b:
            assert b.jetstream().stream_names() == []  # B sees none of A's streams
        with connect("compliance", "AUDIT_COMPLIANCE_PASSWORD") as compliance:
            assert compliance.jetstream().stream_info("AUDIT_EVENTS").state.messages == 1
    finally:
        server.close()


# --------------------------------------------------------------------------- durability


def _varz(server: NatsServer) -> dict[str, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{server.monitor_url}/varz", timeout=5) as response:
        return dict(json.loads(response.read()))


def test_sync_always_is_what_the_server_runs_with(nats_server_factory: Any) -> None:
    default = nats_server_factory(http_port=0)
    config = _varz(default)["jetstream"]["config"]
    assert config["sync_interval"] == 120 * 10**9 and not config.get("sync_always")
    durable = nats_server_factory(http_port=0, config_text="jetstream { sync_interval: always }")
    assert _varz(durable)["jetstream"]["config"]["sync_always"] is True
    with syncmsg.connect(durable.url) as client:
        js = client.jetstream()
        js.add_stream(syncmsg.StreamSpec(name="CRITICAL", subjects=["critical.>"]))
        assert [js.publish("critical.x", str(n)).seq for n in range(5)] == [1, 2, 3, 4, 5]


def test_what_msg_id_dedup_covers(client: syncmsg.Client) -> None:
    js = client.jetstream()
    name = f"DEDUP_{uuid.uuid4().hex[:8]}"
    js.add_stream(
        syncmsg.StreamSpec(
            name=name, subjects=[f"{name.lower()}.>"], duplicate_window=dt.timedelta(seconds=1)
        )
    )
    subject = f"{name.lower()}.order"
    try:
        first = js.publish(subject, b"order-1", msg_id="order-1")
        again = js.publish(subject, b"order-1", msg_id="order-1")
        assert (first.duplicate, again.duplicate, again.seq) == (False, True, first.seq)
        # Not covered: the same content under another id is a new message ...
        assert js.publish(subject, b"order-1", msg_id="order-1-retry").duplicate is False
        # ... and the same id once the duplicate window has passed is stored again.
        wait_until(
            lambda: not js.publish(subject, b"order-1", msg_id="order-1").duplicate,
            timeout=10,
            what="the duplicate window to pass",
        )
        assert js.stream_info(name).state.messages == 3
    finally:
        js.delete_stream(name)


def test_a_shared_import_names_the_requesting_account(nats_secure_factory: Any) -> None:
    accounts = AccountsConfig()
    audit = accounts.account("AUDIT", jetstream=True)
    audit.export_service("audit.>")
    compliance = audit.user("compliance")
    tenant = accounts.account("TENANT_A")
    tenant.import_service(audit, "audit.>", share=True)
    api = tenant.user("tenant-a-api")
    server = nats_secure_factory(auth=accounts)
    with (
        syncmsg.connect(server.url, **compliance.connect_options()) as exporter,
        syncmsg.connect(server.url, **api.connect_options()) as importer,
    ):
        exporter.serve("audit.whoami", lambda msg: msg.headers["Nats-Request-Info"])
        info = json.loads(importer.request("audit.whoami", b"", timeout=5).data)
        assert (info["acc"], info["user"]) == ("TENANT_A", "tenant-a-api")
        # JetStream does not keep the header: the stored message cannot tell its account.
        js = exporter.jetstream()
        js.add_stream(syncmsg.StreamSpec(name="AUDIT_EVENTS", subjects=["audit.stored.>"]))
        importer.jetstream().publish("audit.stored.x", b"{}")
        stored = js.get_msg("AUDIT_EVENTS", 1)
        assert "Nats-Request-Info" not in (stored.headers or {})

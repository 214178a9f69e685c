"""Secured test servers: TLS certificates, accounts with permissions, JWT operator mode.

Threading: everything here runs on the caller's thread and is plain data plus file
writes: build a configuration, pass its :meth:`~AccountsConfig.config_text` to
:class:`~syncmsg.testing.NatsServer` (``config_text=``), and connect with the keyword
arguments a user's :meth:`~PasswordUser.connect_options` returns. The builders are not
meant to be shared between threads while they are still being changed.

* :class:`TlsCertificates`: a throw-away CA, a server certificate for the loopback names
  and a client certificate (for mTLS), written as PEM files (needs ``trustme``).
* :class:`AccountsConfig`: the ``accounts { }`` block of a server config: accounts with
  JetStream, users with passwords or NKeys and their :class:`Permissions`, and the exports
  and imports that connect accounts.
* :class:`JwtOperator`: decentralised (JWT) auth: an operator, its system account, accounts
  and users, all signed here with NKeys (needs ``nkeys``); the server config uses the
  ``MEMORY`` resolver with every account JWT preloaded, and each user gets a ``.creds``
  file.

``trustme`` and ``nkeys`` are imported only when a builder needs them
(``pip install 'syncmsg[testing]'``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import ssl
import tempfile
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from syncmsg._errors import ConfigurationError
from syncmsg.testing._jwt import NKey, encode_jwt, write_creds

__all__ = [
    "AccountsConfig",
    "ConfigAccount",
    "Export",
    "Import",
    "JwtAccount",
    "JwtOperator",
    "JwtUser",
    "NkeyUser",
    "PasswordUser",
    "Permissions",
    "TlsCertificates",
]

ExportKind = Literal["stream", "service"]

_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
_UNLIMITED = -1
# Account and user names become file names (creds/<account>/<user>.creds) and config keys.
_NAME = re.compile(r"[A-Za-z0-9_@+-][A-Za-z0-9_@+.-]{0,63}")


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"{what} {name!r}: use 1 to 64 of A-Z a-z 0-9 _ @ + - . (not first)"
        )
    return name


def _q(value: str) -> str:
    """A quoted string for a nats-server config file."""
    return json.dumps(value)


def _q_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(_q(v) for v in values) + "]"


class _TempDir:
    """A directory of our own, removed by :meth:`cleanup` or when garbage-collected."""

    def __init__(self, directory: str | os.PathLike[str] | None, prefix: str) -> None:
        if directory is None:
            self.path = Path(tempfile.mkdtemp(prefix=prefix))
            self._finalizer: weakref.finalize[Any, Any] | None = weakref.finalize(
                self, shutil.rmtree, str(self.path), ignore_errors=True
            )
        else:
            self.path = Path(directory)
            self.path.mkdir(parents=True, exist_ok=True)
            self._finalizer = None

    def cleanup(self) -> None:
        if self._finalizer is not None:
            self._finalizer()


# --------------------------------------------------------------------------- TLS


class TlsCertificates:
    """A test CA with a server and a client certificate, as PEM files in ``directory``.

    The server certificate is valid for ``hosts`` (default: ``127.0.0.1``, ``localhost``,
    ``::1``), the client certificate for the e-mail identity ``client_name``. Without a
    ``directory`` the files go to a temporary directory that :meth:`cleanup` (or garbage
    collection) removes. Nothing is trusted outside the objects that are given
    :attr:`ca_file`: the CA is new every time. Example::

        certs = TlsCertificates()
        with NatsServer(tls=certs, tls_verify=True) as server:        # mTLS
            client = syncmsg.connect(server.client_url, **certs.connect_options())

    Needs ``trustme`` (``pip install 'syncmsg[testing]'``).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        hosts: Sequence[str] = _LOOPBACK_NAMES,
        client_name: str = "client@syncmsg.test",
    ) -> None:
        try:
            import trustme
        except ImportError as exc:  # pragma: no cover - exercised only without the extra
            raise ConfigurationError(
                "TlsCertificates needs trustme: pip install 'syncmsg[testing]'"
            ) from exc
        if not hosts:
            raise ConfigurationError("the server certificate needs at least one host name")
        self._dir = _TempDir(directory, "syncmsg-tls-")
        self.hosts = tuple(hosts)
        self.client_name = client_name
        ca = trustme.CA(organization_name="syncmsg test CA")
        server = ca.issue_cert(*self.hosts)
        client = ca.issue_cert(client_name, common_name=client_name)
        self.ca_file = self._write("ca.pem", ca.cert_pem.bytes())
        self.server_cert = self._write("server-cert.pem", server.cert_chain_pems[0].bytes())
        self.server_key = self._write("server-key.pem", server.private_key_pem.bytes())
        self.client_cert = self._write("client-cert.pem", client.cert_chain_pems[0].bytes())
        self.client_key = self._write("client-key.pem", client.private_key_pem.bytes())

    @property
    def directory(self) -> Path:
        """Where the PEM files are."""
        return self._dir.path

    def _write(self, name: str, data: bytes) -> Path:
        path = self._dir.path / name
        path.write_bytes(data)
        if name.endswith("-key.pem"):
            path.chmod(0o600)
        return path

    def server_tls_block(
        self, *, verify: bool = False, handshake_first: bool = False, timeout: float = 5.0
    ) -> str:
        """The ``tls { }`` block of a server config using these files.

        ``verify`` requires clients to present a certificate signed by this CA (mTLS);
        ``handshake_first`` makes the server expect the TLS handshake before it sends
        ``INFO`` (nats-server 2.10+; clients must set ``tls_handshake_first``).
        """
        lines = [
            "tls {",
            f"  cert_file: {_q(str(self.server_cert))}",
            f"  key_file: {_q(str(self.server_key))}",
            f"  ca_file: {_q(str(self.ca_file))}",
            f"  timeout: {timeout:g}",
        ]
        if verify:
            lines.append("  verify: true")
        if handshake_first:
            lines.append("  handshake_first: true")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def connect_options(self, *, client_cert: bool = True) -> dict[str, Any]:
        """Keyword arguments for :func:`syncmsg.connect`: trust the CA (and present the
        client certificate unless ``client_cert=False``)."""
        options: dict[str, Any] = {"tls_ca": self.ca_file}
        if client_cert:
            options.update(tls_cert=self.client_cert, tls_key=self.client_key)
        return options

    def environ(self, *, client_cert: bool = True) -> dict[str, str]:
        """The same as ``NATS_TLS_*`` environment variables."""
        return {
            f"NATS_{key.upper()}": str(value)
            for key, value in self.connect_options(client_cert=client_cert).items()
        }

    def ssl_context(self, *, client_cert: bool = True) -> ssl.SSLContext:
        """A client :class:`ssl.SSLContext` trusting the CA (for nats-py or raw sockets)."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if client_cert:
            context.load_cert_chain(str(self.client_cert), str(self.client_key))
        return context

    def cleanup(self) -> None:
        """Remove the files, if this object created their directory."""
        self._dir.cleanup()

    def __repr__(self) -> str:
        return f"<TlsCertificates {', '.join(self.hosts)} in {self.directory}>"


# --------------------------------------------------------------------------- permissions


@dataclass(frozen=True)
class Permissions:
    """What a user may publish and subscribe to.

    ``publish``/``subscribe`` are allow-lists (``None``: everything; an empty list:
    nothing); ``deny_publish``/``deny_subscribe`` are subtracted from them.
    ``allow_responses`` lets the user publish one reply to each request it received, on
    the request's reply subject, without listing reply subjects in ``publish`` (what a
    service responder needs). A refused publish or subscription is not fatal: the server
    reports a *permissions violation* and keeps the connection.
    """

    publish: Sequence[str] | None = None
    subscribe: Sequence[str] | None = None
    deny_publish: Sequence[str] = ()
    deny_subscribe: Sequence[str] = ()
    allow_responses: bool = False

    def _sides(self) -> list[tuple[str, str, Sequence[str] | None, Sequence[str]]]:
        return [
            ("publish", "pub", self.publish, self.deny_publish),
            ("subscribe", "sub", self.subscribe, self.deny_subscribe),
        ]

    def is_empty(self) -> bool:
        return (
            self.publish is None
            and self.subscribe is None
            and not self.deny_publish
            and not self.deny_subscribe
            and not self.allow_responses
        )

    def config_text(self) -> str:
        """The ``permissions: { }`` value of a config-file user."""
        parts = []
        for conf_key, _, allow, deny in self._sides():
            items = []
            if allow is not None:
                items.append(f"allow: {_q_list(allow)}" if allow else 'deny: [">"]')
            if deny and (allow is None or allow):
                items.append(f"deny: {_q_list(deny)}")
            if items:
                parts.append(f"{conf_key}: {{{', '.join(items)}}}")
        if self.allow_responses:
            parts.append("allow_responses: true")
        return "{" + ", ".join(parts) + "}"

    def jwt_claims(self) -> dict[str, Any]:
        """The ``pub``/``sub``/``resp`` claims of a user JWT."""
        claims: dict[str, Any] = {}
        for _, jwt_key, allow, deny in self._sides():
            side: dict[str, list[str]] = {}
            if allow is not None:
                if allow:
                    side["allow"] = list(allow)
                else:
                    side["deny"] = [">"]
            if deny and (allow is None or allow):
                side["deny"] = list(deny)
            claims[jwt_key] = side
        if self.allow_responses:
            claims["resp"] = {"max": 1, "ttl": 0}
        return claims


# --------------------------------------------------------------------------- exports/imports


@dataclass(frozen=True)
class Export:
    """Subjects an account offers to others: a ``stream`` (messages flow out to the
    importers) or a ``service`` (importers send requests in, replies flow back)."""

    subject: str
    kind: ExportKind = "stream"


@dataclass(frozen=True)
class Import:
    """Subjects taken from another account's export.

    ``subject`` is the exporter's subject; ``to`` (default: the same) is the subject in the
    importing account. ``share`` (services only) lets the exporter see who sent each
    request: the server adds a ``Nats-Request-Info`` header naming the importing account.
    """

    account: str
    subject: str
    kind: ExportKind = "stream"
    to: str | None = None
    share: bool = False


class _Account:
    """What config-mode and JWT accounts have in common: JetStream, exports, imports."""

    def __init__(self, name: str, *, jetstream: bool) -> None:
        _check_name(name, "account name")
        self.name = name
        self.jetstream = jetstream
        self.exports: list[Export] = []
        self.imports: list[Import] = []

    def _importable_name(self) -> str:
        return self.name

    def export_stream(self, subject: str) -> None:
        """Let other accounts import the messages published on ``subject``."""
        self.exports.append(Export(subject, "stream"))

    def export_service(self, subject: str) -> None:
        """Let other accounts send requests (and JetStream publishes) to ``subject``."""
        self.exports.append(Export(subject, "service"))

    def import_stream(self, account: _Account, subject: str, *, to: str | None = None) -> None:
        """Receive ``account``'s stream export ``subject`` (on ``to``, default the same)."""
        self.imports.append(Import(account._importable_name(), subject, "stream", to))

    def import_service(
        self, account: _Account, subject: str, *, to: str | None = None, share: bool = False
    ) -> None:
        """Send requests on ``to`` (default ``subject``) to ``account``'s service ``subject``."""
        self.imports.append(Import(account._importable_name(), subject, "service", to, share))


# --------------------------------------------------------------------------- config-file auth


def _user_entry(entry: str, permissions: Permissions) -> str:
    """One ``users: [...]`` item of a config-file account."""
    if not permissions.is_empty():
        entry += f", permissions: {permissions.config_text()}"
    return "{" + entry + "}"


@dataclass(frozen=True)
class PasswordUser:
    """A user/password user of a config-file account."""

    name: str
    password: str = field(repr=False)
    account: str
    permissions: Permissions = Permissions()

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`syncmsg.connect`."""
        return {"user": self.name, "password": self.password}

    def environ(self) -> dict[str, str]:
        """The same as ``NATS_USER``/``NATS_PASSWORD``."""
        return {"NATS_USER": self.name, "NATS_PASSWORD": self.password}

    def _config_entry(self) -> str:
        entry = f"user: {_q(self.name)}, password: {_q(self.password)}"
        return _user_entry(entry, self.permissions)


@dataclass(frozen=True)
class NkeyUser:
    """An NKey user of a config-file account: the server knows only its public key."""

    public_key: str
    seed: str = field(repr=False)
    account: str
    permissions: Permissions = Permissions()

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`syncmsg.connect` (the seed signs the server's nonce)."""
        return {"nkey_seed": self.seed}

    def environ(self) -> dict[str, str]:
        """The same as ``NATS_NKEY_SEED``."""
        return {"NATS_NKEY_SEED": self.seed}

    def _config_entry(self) -> str:
        return _user_entry(f"nkey: {_q(self.public_key)}", self.permissions)


class ConfigAccount(_Account):
    """An account of an :class:`AccountsConfig`; add users with :meth:`user`/:meth:`nkey_user`.

    User names are server-wide in a config file: two accounts cannot both have an ``api``.
    """

    def __init__(self, parent: AccountsConfig, name: str, *, jetstream: bool) -> None:
        super().__init__(name, jetstream=jetstream)
        self._parent = parent
        self.users: list[PasswordUser | NkeyUser] = []

    def user(
        self,
        name: str,
        password: str | None = None,
        *,
        permissions: Permissions | None = None,
    ) -> PasswordUser:
        """Add a user/password user (a random password unless one is given)."""
        _check_name(name, "user name")
        for account in self._parent.accounts.values():
            if any(isinstance(u, PasswordUser) and u.name == name for u in account.users):
                raise ConfigurationError(
                    f"user {name!r} already exists (in account {account.name!r}); "
                    "user names are server-wide"
                )
        user = PasswordUser(
            name,
            password if password is not None else secrets.token_urlsafe(18),
            self.name,
            permissions or Permissions(),
        )
        self.users.append(user)
        return user

    def nkey_user(self, *, permissions: Permissions | None = None) -> NkeyUser:
        """Add a user known by a new NKey (needs ``nkeys``)."""
        key = NKey.generate("user")
        user = NkeyUser(key.public_key, key.seed, self.name, permissions or Permissions())
        self.users.append(user)
        return user

    def _config_block(self) -> str:
        lines = [f"  {_q(self.name)}: {{"]
        if self.jetstream:
            lines.append("    jetstream: enabled")
        if self.users:
            lines.append("    users: [")
            lines += [f"      {user._config_entry()}" for user in self.users]
            lines.append("    ]")
        if self.exports:
            lines.append("    exports: [")
            lines += [f"      {{{e.kind}: {_q(e.subject)}}}" for e in self.exports]
            lines.append("    ]")
        if self.imports:
            lines.append("    imports: [")
            for i in self.imports:
                entry = f"{i.kind}: {{account: {_q(i.account)}, subject: {_q(i.subject)}}}"
                if i.to is not None:
                    entry += f", to: {_q(i.to)}"
                if i.share:
                    entry += ", share: true"
                lines.append(f"      {{{entry}}}")
            lines.append("    ]")
        lines.append("  }")
        return "\n".join(lines)


class AccountsConfig:
    """Accounts, users and permissions written into a nats-server config file.

    Each account is a separate subject space: clients of one account see nothing of
    another's messages or JetStream streams except what is exported and imported.
    Example::

        accounts = AccountsConfig()
        tenant = accounts.account("TENANT_A", jetstream=True)
        api = tenant.user("api", permissions=Permissions(publish=["task.>"]))
        with NatsServer(config_text=accounts.config_text()) as server:
            client = syncmsg.connect(server.url, **api.connect_options())
    """

    def __init__(self) -> None:
        self.accounts: dict[str, ConfigAccount] = {}

    def account(self, name: str, *, jetstream: bool = False) -> ConfigAccount:
        """Add an account (``jetstream=True`` gives it its own JetStream streams)."""
        if name in self.accounts:
            raise ConfigurationError(f"account {name!r} already exists")
        account = ConfigAccount(self, name, jetstream=jetstream)
        self.accounts[name] = account
        return account

    def config_text(self) -> str:
        """The ``accounts { }`` block, for ``NatsServer(config_text=...)``."""
        if not any(account.users for account in self.accounts.values()):
            raise ConfigurationError("no account has a user: nobody could connect")
        blocks = [account._config_block() for account in self.accounts.values()]
        return "accounts {\n" + "\n".join(blocks) + "\n}\n"


# --------------------------------------------------------------------------- JWT auth


@dataclass(frozen=True)
class JwtUser:
    """A user of a :class:`JwtAccount`: its JWT, NKey seed and ``.creds`` file."""

    name: str
    public_key: str
    jwt: str = field(repr=False)
    seed: str = field(repr=False)
    creds_file: Path
    account: str
    # Keeps the operator, and so the directory holding creds_file, alive with the user.
    _operator: JwtOperator | None = field(default=None, repr=False, compare=False)

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`syncmsg.connect`."""
        return {"creds": self.creds_file}

    def environ(self) -> dict[str, str]:
        """The same as ``NATS_CREDS``."""
        return {"NATS_CREDS": str(self.creds_file)}


class JwtAccount(_Account):
    """An account of a :class:`JwtOperator`, with its own NKey; its users are signed by it."""

    def __init__(self, operator: JwtOperator, name: str, *, jetstream: bool) -> None:
        super().__init__(name, jetstream=jetstream)
        self._operator = operator
        self.key = NKey.generate("account")
        self.users: list[JwtUser] = []

    @property
    def public_key(self) -> str:
        """The account's public key (``A…``): its identity in JWTs and server logs."""
        return self.key.public_key

    def _importable_name(self) -> str:
        return self.public_key

    def user(
        self,
        name: str,
        *,
        permissions: Permissions | None = None,
        expires: float | None = None,
        bearer: bool = False,
    ) -> JwtUser:
        """Issue a user JWT signed by this account and write its ``.creds`` file (0600).

        ``expires`` is a Unix time after which the server refuses the user; ``bearer``
        makes the JWT alone enough to connect (no nonce signed with the seed).
        """
        _check_name(name, "user name")
        key = NKey.generate("user")
        claims: dict[str, Any] = {
            "subs": _UNLIMITED,
            "data": _UNLIMITED,
            "payload": _UNLIMITED,
            **(permissions or Permissions()).jwt_claims(),
        }
        if bearer:
            claims["bearer_token"] = True
        token = encode_jwt(
            "user", subject=key.public_key, signer=self.key, name=name, nats=claims, expires=expires
        )
        path = self._operator.directory / "creds" / self.name / f"{name}.creds"
        write_creds(path, token, key.seed)
        user = JwtUser(name, key.public_key, token, key.seed, path, self.name, self._operator)
        self.users.append(user)
        return user

    def jwt(self) -> str:
        """The account JWT, signed by the operator, with the current exports and imports."""
        limits: dict[str, Any] = {
            "subs": _UNLIMITED,
            "data": _UNLIMITED,
            "payload": _UNLIMITED,
            "imports": _UNLIMITED,
            "exports": _UNLIMITED,
            "wildcards": True,
            "conn": _UNLIMITED,
            "leaf": _UNLIMITED,
        }
        if self.jetstream:
            limits.update(mem_storage=_UNLIMITED, disk_storage=_UNLIMITED)
            limits.update(streams=_UNLIMITED, consumer=_UNLIMITED)
        claims: dict[str, Any] = {"limits": limits}
        if self.exports:
            claims["exports"] = [
                {"name": e.subject, "subject": e.subject, "type": e.kind}
                for e in sorted(self.exports, key=lambda e: e.subject)
            ]
        if self.imports:
            claims["imports"] = [self._jwt_import(i) for i in self.imports]
        return encode_jwt(
            "account",
            subject=self.public_key,
            signer=self._operator.key,
            name=self.name,
            nats=claims,
        )

    @staticmethod
    def _jwt_import(i: Import) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": i.subject,
            "subject": i.subject,
            "account": i.account,
            "type": i.kind,
        }
        if i.to is not None:
            entry["local_subject" if i.kind == "stream" else "to"] = i.to
        if i.share:
            entry["share"] = True
        return entry


class JwtOperator:
    """Decentralised auth: an operator with a system account, accounts and users (JWTs).

    Everything is signed here with fresh NKeys; nothing is read from ``nsc``. User
    ``.creds`` files go to ``directory`` (default: a temporary directory removed by
    :meth:`cleanup` or garbage collection). The server config uses the ``MEMORY``
    resolver with every account JWT preloaded, so add all accounts, exports and imports
    *before* calling :meth:`config_text`. Example::

        operator = JwtOperator()
        tenant = operator.account("TENANT_A", jetstream=True)
        api = tenant.user("api")
        with NatsServer(config_text=operator.config_text()) as server:
            client = syncmsg.connect(server.url, **api.connect_options())

    Needs ``nkeys`` (``pip install 'syncmsg[testing]'``).
    """

    def __init__(
        self, name: str = "syncmsg-test", *, directory: str | os.PathLike[str] | None = None
    ) -> None:
        self._dir = _TempDir(directory, "syncmsg-jwt-")
        self.name = name
        self.key = NKey.generate("operator")
        self.accounts: dict[str, JwtAccount] = {}
        self.system_account = self.account("SYS")

    @property
    def directory(self) -> Path:
        """Where the ``.creds`` files are written."""
        return self._dir.path

    @property
    def public_key(self) -> str:
        """The operator's public key (``O…``)."""
        return self.key.public_key

    def account(self, name: str, *, jetstream: bool = False) -> JwtAccount:
        """Add an account signed by this operator (``jetstream=True``: unlimited JetStream)."""
        if name in self.accounts:
            raise ConfigurationError(f"account {name!r} already exists")
        account = JwtAccount(self, name, jetstream=jetstream)
        self.accounts[name] = account
        return account

    def jwt(self) -> str:
        """The self-signed operator JWT, naming the system account."""
        return encode_jwt(
            "operator",
            subject=self.public_key,
            signer=self.key,
            name=self.name,
            nats={"system_account": self.system_account.public_key},
        )

    def config_text(self) -> str:
        """``operator``, ``system_account``, ``resolver: MEMORY`` and ``resolver_preload``."""
        preload = "\n".join(
            f"  {account.public_key}: {_q(account.jwt())}" for account in self.accounts.values()
        )
        return (
            f"operator: {_q(self.jwt())}\n"
            f"system_account: {_q(self.system_account.public_key)}\n"
            "resolver: MEMORY\n"
            f"resolver_preload: {{\n{preload}\n}}\n"
        )

    def cleanup(self) -> None:
        """Remove the ``.creds`` files, if this object created their directory."""
        self._dir.cleanup()

    def __repr__(self) -> str:
        return f"<JwtOperator {self.name} {self.public_key} accounts={list(self.accounts)}>"

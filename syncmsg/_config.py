"""Client configuration, read from arguments and the NATS_* environment.

Threading: a :class:`Config` is immutable once built and may be shared by any threads.

Everything that can be checked without the network is checked when a Config is built, and
raises :class:`~syncmsg.ConfigurationError` at once: server URLs, the NKey seed, the
credentials file, and whether the TLS files can be read. No error message, repr or log line
shows a secret (password, token, seed, or credentials in a URL), not even in part.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from syncmsg._errors import ConfigurationError
from syncmsg._retry import RetryPolicy

__all__ = ["Config", "redact_url"]

_SCHEMES = {"nats", "tls", "ws", "wss"}
_HOST_NAME = re.compile(r"[\w.-]+")  # letters (IDN too), digits, '.', '-', '_'
_WHITESPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
_CREDS_JWT = "BEGIN NATS USER JWT"
_CREDS_SEED = "BEGIN USER NKEY SEED"
_SEED_BYTES = 36  # base32-decoded seed: 2 prefix bytes, the 32-byte key, a 2-byte CRC16


def redact_url(url: str) -> str:
    """Return ``url`` with any password or token in it replaced by ``***``.

    Works on text that does not parse as a URL too: everything before the last ``@`` of
    the part after the scheme is credentials (a password may hold ``/``, ``?`` or ``#``),
    and only a user name before a ``:`` is kept.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    if "@" not in rest:
        return url
    userinfo, _, host = rest.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    hidden = f"{user}:***" if colon else "***"
    return f"{scheme}{separator}{hidden}@{host}"


def _check_server_url(server: str) -> str:
    """``server`` with a scheme, or a ValueError naming it (redacted) and what is wrong."""
    shown = redact_url(server)
    if _WHITESPACE_OR_CONTROL.search(server):
        raise ValueError(f"server URL {shown!r} contains whitespace or a control character")
    url = server if "://" in server else f"nats://{server}"
    try:
        parts = urlsplit(url)
        port = parts.port  # its ValueError text would quote the URL: never shown
    except ValueError:
        raise ValueError(f"server URL {shown!r} cannot be parsed (host or port)") from None
    if parts.scheme not in _SCHEMES:
        raise ValueError(
            f"unsupported scheme {parts.scheme!r} in {shown!r}: use nats://, tls://, ws:// "
            "or wss://"
        )
    host = parts.hostname or ""
    if not host:
        raise ValueError(f"server URL {shown!r} has no host")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise ValueError(f"server URL {shown!r} has an invalid IPv6 address") from None
    elif not _HOST_NAME.fullmatch(host):
        raise ValueError(f"server URL {shown!r} has an invalid host name")
    if port == 0:
        raise ValueError(f"server URL {shown!r} has port 0")
    return url


def _read_file(path: Path, what: str) -> str:
    """The text of ``path``, or a ValueError that names the file (never its contents)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ValueError(f"cannot read the {what} file {str(path)!r}: {reason}") from None


def _seed_problem(seed: str) -> str | None:
    """What is wrong with ``seed`` as a user NKey seed, or None; never quotes the seed.

    The checksum is checked here: nkeys (the Python package) ignores it, so a mistyped
    last character would otherwise pass, and fail only as "Authorization Violation".
    """
    import nkeys

    text = seed.strip().encode("utf-8", "replace")
    try:
        raw = base64.b32decode(text + b"=" * (-len(text) % 8))
    except ValueError:  # binascii.Error
        return "not a valid NKey seed (not base32)"
    if len(raw) != _SEED_BYTES or nkeys.crc16_checksum(raw[:-2]) != raw[-2:]:
        return "not a valid NKey seed (wrong length or checksum)"
    try:
        key_pair = nkeys.from_seed(bytearray(text))
    except Exception:  # nkeys raises ErrInvalidSeed, ErrInvalidPrefixByte, ...
        return "not a valid NKey seed"
    try:
        if not key_pair.public_key.startswith(b"U"):
            return "an NKey seed, but not a user's (user seeds start with SU)"
    finally:
        key_pair.wipe()
    return None


def _line_after(lines: list[str], marker: str) -> str:
    """The line after the one holding ``marker`` ('' if none), as nats-py reads a creds file."""
    for index, line in enumerate(lines[:-1]):
        if marker in line:
            return lines[index + 1].strip()
    return ""


def _seed_path(value: str) -> Path | None:
    """The file ``nkey_seed`` names, or None when it is the seed itself.

    Seeds are base32 (A-Z, 2-7), so a value holding a path separator, a dot or ``~`` is a
    path; so is the name of an existing file.
    """
    text = value.strip()
    if any(mark in text for mark in ("/", "\\", ".", "~")) or Path(text).is_file():
        return Path(text).expanduser()
    return None


def _explain(exc: ValidationError) -> str:
    """One line per problem, without pydantic's input values or documentation URLs."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(part) for part in error["loc"]) or "config"
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}")
    return "; ".join(problems)


class Config(BaseSettings):
    """Everything a :class:`~syncmsg.Client` needs to know, with the environment as fallback.

    Each field can be given as a keyword or as an environment variable ``NATS_<FIELD>``:
    ``NATS_URL`` (a comma-separated list), ``NATS_USER``, ``NATS_PASSWORD``, ``NATS_TOKEN``,
    ``NATS_CREDS``, ``NATS_NKEY_SEED``, ``NATS_TLS_CA``, ``NATS_TLS_CERT``, ``NATS_TLS_KEY``,
    and so on. Secrets are :class:`~pydantic.SecretStr`: they never show in a repr, a log
    line or an error. Durations are in seconds, sizes in bytes.

    ``nkey_seed`` is the seed itself or the path of a file holding it (as the nats CLI's
    ``--nkey``). A bad value raises :class:`~syncmsg.ConfigurationError`, never a pydantic
    error.
    """

    model_config = SettingsConfigDict(
        env_prefix="NATS_",
        extra="forbid",
        frozen=True,
        validate_default=True,
        hide_input_in_errors=True,  # a ValidationError must never quote a secret
    )

    url: str = Field(
        "nats://localhost:4222", description="Server URL, or several separated by commas."
    )
    name: str | None = Field(None, description="Client name shown in the server's monitoring.")
    user: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    creds: Path | None = Field(None, description="A .creds file (JWT and NKey seed).")
    nkey_seed: SecretStr | None = Field(
        None, description="A user NKey seed (SU...), or the path of a file holding it."
    )
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_hostname: str | None = None
    tls_handshake_first: bool = Field(
        False, description="Start TLS before the server's INFO (server tls handshake_first)."
    )

    timeout: float = Field(5.0, gt=0, description="Default timeout of every blocking call.")
    connect_timeout: float = Field(5.0, gt=0, description="Timeout of one connection attempt.")
    connect_retry: RetryPolicy = Field(
        default_factory=lambda: RetryPolicy(attempts=None, deadline=10.0),
        description="How the first connection is retried.",
    )
    request_retry: RetryPolicy | None = Field(
        None, description="Retry policy for request(); None sends each request once."
    )
    reconnect_wait: float = Field(1.0, ge=0)
    max_reconnect_attempts: int = Field(-1, description="-1 reconnects forever.")
    reconnect_buffer_size: int = Field(
        8 * 1024 * 1024, ge=0, description="Bytes buffered while disconnected; 0 disables."
    )
    ping_interval: float = Field(120.0, gt=0)
    max_outstanding_pings: int = Field(2, ge=1)
    no_echo: bool = False
    inbox_prefix: str = "_INBOX"

    workers: int = Field(1, ge=1, description="Worker threads per subscription (1 keeps order).")
    pending_msgs_limit: int = Field(
        65536, ge=1, description="Messages a subscription may hold before it is a slow consumer."
    )
    pending_bytes_limit: int = Field(64 * 1024 * 1024, ge=1)
    drain_timeout: float = Field(30.0, gt=0)
    close_timeout: float = Field(10.0, gt=0)
    atexit_timeout: float = Field(5.0, ge=0, description="Flush deadline at interpreter exit.")
    tracing: bool = Field(
        False,
        description="Trace and measure with OpenTelemetry (the otel extra): the same as "
        "calling syncmsg.otel.instrument(), for the whole process.",
    )

    @field_validator("url", mode="before")
    @classmethod
    def _join_urls(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return ",".join(str(v) for v in value)
        return value

    @field_validator("url")
    @classmethod
    def _check_urls(cls, value: str) -> str:
        servers = [s.strip() for s in value.split(",") if s.strip()]
        if not servers:
            raise ValueError("no server URL given")
        schemes = {urlsplit(_check_server_url(server)).scheme for server in servers}
        if schemes & {"ws", "wss"} and schemes & {"nats", "tls"}:
            raise ValueError("ws:// and wss:// URLs cannot be mixed with nats:// or tls://")
        return ",".join(servers)

    @field_validator("nkey_seed")
    @classmethod
    def _check_nkey_seed(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            path = _seed_path(value.get_secret_value())
            if path is None:
                problem = _seed_problem(value.get_secret_value())
                if problem:
                    raise ValueError(f"{problem}, nor the path of an existing file")
            else:
                problem = _seed_problem(_read_file(path, "nkey_seed"))
                if problem:
                    raise ValueError(f"the seed in {str(path)!r} is {problem}")
        return value

    @field_validator("creds")
    @classmethod
    def _check_creds(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        path = value.expanduser()
        lines = _read_file(path, "creds").splitlines()
        # nats-py would loop forever looking for a JWT that is not there: refuse it here.
        if not _line_after(lines, _CREDS_JWT):
            raise ValueError(f"the creds file {str(path)!r} holds no user JWT")
        seed = _line_after(lines, _CREDS_SEED)
        if not seed:
            raise ValueError(f"the creds file {str(path)!r} holds no NKey seed")
        problem = _seed_problem(seed)
        if problem:
            raise ValueError(f"the seed in the creds file {str(path)!r} is {problem}")
        return path

    @field_validator("tls_ca", "tls_cert", "tls_key")
    @classmethod
    def _check_readable(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        path = value.expanduser()
        _read_file(path, str(info.field_name))
        return path

    @model_validator(mode="after")
    def _check_tls_pair(self) -> Config:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        return self

    def __init__(self, **values: Any) -> None:
        """Validate ``values`` (and the environment); raises ConfigurationError."""
        try:
            super().__init__(**values)
            return
        except ValidationError as exc:
            reason = _explain(exc)
        except SettingsError as exc:  # an environment variable could not be parsed
            reason = str(exc)
        # Raised outside the except block: the pydantic error, which holds the input
        # values, must not even be this error's __context__.
        raise ConfigurationError(f"invalid syncmsg configuration: {reason}")

    def __repr_args__(self) -> Any:
        for key, value in super().__repr_args__():
            yield key, (",".join(self.redacted_servers) if key == "url" else value)

    @property
    def servers(self) -> list[str]:
        """The server URLs, each with a scheme."""
        return [s if "://" in s else f"nats://{s}" for s in self.url.split(",")]

    @property
    def redacted_servers(self) -> list[str]:
        return [redact_url(s) for s in self.servers]

    @classmethod
    def build(cls, servers: str | list[str] | None = None, **options: Any) -> Config:
        """Build a config from explicit values, falling back to the environment.

        Raises :class:`~syncmsg.ConfigurationError` rather than a pydantic error.
        """
        if servers is not None:
            options["url"] = servers
        return cls(**options)

    def merged(self, **options: Any) -> Config:
        """A copy with ``options`` applied and validated again."""
        data = self.model_dump()
        data.update(options)
        return type(self).build(**data)

    def ssl_context(self) -> ssl.SSLContext | None:
        """An SSL context for the TLS settings, or None when no TLS setting is given.

        Raises :class:`~syncmsg.ConfigurationError` naming the file that cannot be loaded.
        """
        uses_tls = any(urlsplit(s).scheme in ("tls", "wss") for s in self.servers)
        if not (uses_tls or self.tls_ca or self.tls_cert):
            return None
        try:
            context = ssl.create_default_context(cafile=str(self.tls_ca) if self.tls_ca else None)
        except OSError as exc:  # ssl.SSLError is an OSError
            raise ConfigurationError(
                f"cannot load tls_ca {str(self.tls_ca)!r}: {_ssl_reason(exc)}"
            ) from None
        if self.tls_cert and self.tls_key:
            try:
                # A password callback, so that an encrypted key fails here instead of
                # OpenSSL prompting on the terminal from the event-loop thread.
                context.load_cert_chain(str(self.tls_cert), str(self.tls_key), _no_password)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                raise ConfigurationError(
                    f"cannot load tls_cert {str(self.tls_cert)!r} with tls_key "
                    f"{str(self.tls_key)!r}: {_ssl_reason(exc)}"
                ) from None
        return context

    def nats_options(self) -> dict[str, Any]:
        """Keyword arguments for nats-py's ``connect`` (used on the loop thread only)."""
        options: dict[str, Any] = {
            "servers": self.servers,
            "name": self.name,
            "connect_timeout": self.connect_timeout,
            "reconnect_time_wait": self.reconnect_wait,
            "max_reconnect_attempts": self.max_reconnect_attempts,
            "ping_interval": self.ping_interval,
            "max_outstanding_pings": self.max_outstanding_pings,
            "no_echo": self.no_echo,
            "inbox_prefix": self.inbox_prefix,
            "pending_size": max(self.reconnect_buffer_size, 1),
            "drain_timeout": self.drain_timeout,
        }
        if self.user:
            options["user"] = self.user
        if self.password:
            options["password"] = self.password.get_secret_value()
        if self.token:
            options["token"] = self.token.get_secret_value()
        if self.creds:
            if not self.creds.is_file():  # checked when built, but it may have gone since
                raise ConfigurationError(f"credentials file not found: {str(self.creds)!r}")
            options["user_credentials"] = str(self.creds)
        if self.nkey_seed:
            seed = self.nkey_seed.get_secret_value()
            path = _seed_path(seed)
            if path is None:
                options["nkeys_seed_str"] = seed.strip()
            else:  # nats-py reads the file at every (re)connect, so a rotated seed is used
                options["nkeys_seed"] = str(path)
        context = self.ssl_context()
        if context is not None:
            options["tls"] = context
            if self.tls_hostname:
                options["tls_hostname"] = self.tls_hostname
        if self.tls_handshake_first:
            options["tls_handshake_first"] = True
        return options


def _no_password() -> bytes:
    raise ValueError("the key is encrypted; give an unencrypted tls_key")


def _ssl_reason(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc)

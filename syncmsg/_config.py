"""Client configuration, read from arguments and the NATS_* environment.

Threading: a :class:`Config` is immutable once built and may be shared by any threads.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from syncmsg._errors import ConfigurationError
from syncmsg._retry import RetryPolicy

__all__ = ["Config", "redact_url"]

_SCHEMES = {"nats", "tls", "ws", "wss"}


def redact_url(url: str) -> str:
    """Return ``url`` with any password or token in it replaced by ``***``."""
    parts = urlsplit(url)
    if not (parts.username or parts.password):
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = "***" if parts.password is None else f"{parts.username}:***"
    return urlunsplit((parts.scheme, f"{user}@{host}", parts.path, parts.query, parts.fragment))


class Config(BaseSettings):
    """Everything a :class:`~syncmsg.Client` needs to know, with the environment as fallback.

    Each field can be given as a keyword or as an environment variable ``NATS_<FIELD>``:
    ``NATS_URL`` (a comma-separated list), ``NATS_USER``, ``NATS_PASSWORD``, ``NATS_TOKEN``,
    ``NATS_CREDS``, ``NATS_NKEY_SEED``, ``NATS_TLS_CA``, ``NATS_TLS_CERT``, ``NATS_TLS_KEY``,
    and so on. Secrets are :class:`~pydantic.SecretStr`: they never show in a repr, a log
    line or an error. Durations are in seconds, sizes in bytes.
    """

    model_config = SettingsConfigDict(
        env_prefix="NATS_", extra="forbid", frozen=True, validate_default=True
    )

    url: str = Field(
        "nats://localhost:4222", description="Server URL, or several separated by commas."
    )
    name: str | None = Field(None, description="Client name shown in the server's monitoring.")
    user: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    creds: Path | None = Field(None, description="A .creds file (JWT and NKey seed).")
    nkey_seed: SecretStr | None = Field(None, description="An NKey seed (SU...).")
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
        for server in servers:
            scheme = urlsplit(server if "://" in server else f"nats://{server}").scheme
            if scheme not in _SCHEMES:
                raise ValueError(f"unsupported scheme in {redact_url(server)!r}")
        return ",".join(servers)

    @model_validator(mode="after")
    def _check_tls_pair(self) -> Config:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        return self

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
        try:
            return cls(**options)
        except ValueError as exc:  # pydantic.ValidationError is a ValueError
            raise ConfigurationError(f"invalid syncmsg configuration: {exc}") from None

    def merged(self, **options: Any) -> Config:
        """A copy with ``options`` applied and validated again."""
        data = self.model_dump()
        data.update(options)
        return type(self).build(**data)

    def ssl_context(self) -> ssl.SSLContext | None:
        """An SSL context for the TLS settings, or None when no TLS setting is given."""
        uses_tls = any(urlsplit(s).scheme in ("tls", "wss") for s in self.servers)
        if not (uses_tls or self.tls_ca or self.tls_cert):
            return None
        try:
            context = ssl.create_default_context(cafile=str(self.tls_ca) if self.tls_ca else None)
            if self.tls_cert and self.tls_key:
                context.load_cert_chain(str(self.tls_cert), str(self.tls_key))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"cannot load TLS files: {exc}") from None
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
            if not self.creds.is_file():
                raise ConfigurationError(f"credentials file not found: {self.creds}")
            options["user_credentials"] = str(self.creds)
        if self.nkey_seed:
            options["nkeys_seed_str"] = self.nkey_seed.get_secret_value()
        context = self.ssl_context()
        if context is not None:
            options["tls"] = context
            if self.tls_hostname:
                options["tls_hostname"] = self.tls_hostname
        if self.tls_handshake_first:
            options["tls_handshake_first"] = True
        return options

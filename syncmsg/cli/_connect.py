"""From the global options to a connected :class:`syncmsg.Client`.

Each setting comes from the first of: the command line's global options; the ``NATS_*``
environment (read by :class:`syncmsg.Config` itself, as for any program using the
library); the context (``--context``, else ``NATS_CONTEXT``, else the selected one); the
library's defaults. A command line gives up on an unreachable server after its
``--timeout`` (default 5 s), not after the library's 10 s of connection retries.

Threading: called on the command's (main) thread.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import syncmsg
from syncmsg.cli._app import Settings
from syncmsg.cli._contexts import ContextStore

__all__ = ["active_context", "build_config", "connected", "server_configured"]

#: Context key -> Config field, for the keys that configure a connection.
_CONTEXT_TO_CONFIG = {
    "url": "url",
    "user": "user",
    "password": "password",
    "token": "token",
    "creds": "creds",
    "nkey": "nkey_seed",
    "cert": "tls_cert",
    "key": "tls_key",
    "ca": "tls_ca",
}


def active_context(state: Settings) -> tuple[str | None, dict[str, str]]:
    """The context in use (its name and values), or ``(None, {})``."""
    store = ContextStore()
    name = state.context or os.environ.get("NATS_CONTEXT") or store.selected()
    if not name:
        return None, {}
    return name, store.load(name)


def _env_sets(field: str) -> bool:
    """Whether a ``NATS_<FIELD>`` variable is set (matched without case, as Config does)."""
    wanted = f"NATS_{field}".upper()
    return any(key.upper() == wanted for key in os.environ)


def server_configured(state: Settings) -> bool:
    """Whether a server was named: by ``--server``, ``NATS_URL`` or the active context."""
    if state.server or _env_sets("url"):
        return True
    return "url" in active_context(state)[1]


def build_config(state: Settings, **overrides: Any) -> syncmsg.Config:
    """The :class:`syncmsg.Config` for the invocation's options, environment and context."""
    options: dict[str, Any] = {}
    for key, value in active_context(state)[1].items():
        field = _CONTEXT_TO_CONFIG.get(key)
        if field is not None and not _env_sets(field):
            options[field] = value
    flags = {
        "url": state.server,
        "user": state.user,
        "password": state.password,
        "token": state.token,
        "creds": state.creds,
        "nkey_seed": state.nkey,  # a seed file's path: Config reads it, as `nats --nkey`
        "tls_cert": state.tlscert,
        "tls_key": state.tlskey,
        "tls_ca": state.tlsca,
        "timeout": state.timeout,
    }
    options.update({key: value for key, value in flags.items() if value is not None})
    options.update(overrides)
    for key in ("creds", "tls_cert", "tls_key", "tls_ca"):
        if isinstance(options.get(key), str):
            options[key] = Path(options[key]).expanduser()
    if not _env_sets("name"):
        options.setdefault("name", "syncmsg-cli")
    config = syncmsg.Config.build(**options)
    retry = syncmsg.RetryPolicy(attempts=None, deadline=config.timeout, initial=0.1, maximum=1.0)
    return config.merged(
        connect_retry=retry, connect_timeout=min(config.connect_timeout, config.timeout)
    )


@contextlib.contextmanager
def connected(state: Settings, **overrides: Any) -> Iterator[syncmsg.Client]:
    """A client connected with :func:`build_config`, closed at the end."""
    config = build_config(state, **overrides)
    client = syncmsg.Client(config)
    try:
        client.connect(config.timeout)
    except BaseException:
        client.close(timeout=1.0)
        raise
    try:
        yield client
    finally:
        client.close(timeout=min(config.close_timeout, 5.0))

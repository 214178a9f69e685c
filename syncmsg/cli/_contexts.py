"""Saved contexts: named server and credential sets, like the ``nats`` CLI's.

Each context is a JSON file ``<config dir>/contexts/<name>.json``, and the selected one's
name is in ``<config dir>/context.txt``; the config directory is the user's, as
platformdirs gives it (``~/.config/syncmsg`` on Linux, or ``$XDG_CONFIG_HOME/syncmsg``).
The files' keys are the ``nats`` CLI's (``url``, ``user``, ``password``, ``token``,
``creds``, ``nkey``, ``cert``, ``key``, ``ca``, ``description``), so a context file of one
works for the other. Files are written atomically, with mode 0600 in a 0700 directory,
because a password or a token may be in them; nothing here prints a secret (see
:func:`masked`).

Threading: called on the command's (main) thread; no state is kept between calls.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

from syncmsg._config import redact_url
from syncmsg.cli._exit import EXIT_NOT_FOUND, EXIT_USAGE, CommandFailed

__all__ = ["FIELDS", "SECRETS", "ContextStore", "masked"]

#: A context's keys: the ``nats`` CLI's names for what the global options set.
FIELDS = ("url", "user", "password", "token", "creds", "nkey", "cert", "key", "ca", "description")
#: Keys whose values are never printed.
SECRETS = frozenset({"password", "token"})
#: What a secret prints as.
MASK = "***"
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_SELECTED_FILE = "context.txt"


def masked(values: Mapping[str, str]) -> dict[str, str]:
    """``values`` safe to print: secrets as ``***``, a password in a URL redacted."""
    shown = {}
    for key, value in values.items():
        if key in SECRETS:
            shown[key] = MASK
        elif key == "url":
            shown[key] = ",".join(redact_url(url.strip()) for url in value.split(","))
        else:
            shown[key] = value
    return shown


class ContextStore:
    """The saved contexts in ``root`` (default: the user's config directory for syncmsg)."""

    def __init__(self, root: Path | None = None) -> None:
        if root is None:
            import platformdirs

            root = Path(platformdirs.user_config_dir("syncmsg", appauthor=False))
        self.root = root
        self.directory = root / "contexts"

    # ------------------------------------------------------------------ reading
    def names(self) -> list[str]:
        """The saved contexts' names, sorted."""
        if not self.directory.is_dir():
            return []
        return sorted(path.stem for path in self.directory.glob("*.json"))

    def path(self, name: str) -> Path:
        if not _NAME.fullmatch(name):
            raise CommandFailed(
                f"invalid context name {name!r}: letters, digits, '_', '.' and '-' only",
                EXIT_USAGE,
            )
        return self.directory / f"{name}.json"

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def load(self, name: str) -> dict[str, str]:
        """The context's values (only the keys of :data:`FIELDS`, as strings)."""
        path = self.path(name)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CommandFailed(
                f"no context named {name!r} (see: syncmsg context ls)", EXIT_NOT_FOUND
            ) from None
        except (OSError, ValueError) as exc:
            raise CommandFailed(
                f"cannot read context {name!r} ({path}): {exc}", EXIT_USAGE
            ) from None
        if not isinstance(data, dict):
            raise CommandFailed(f"context file {path} does not hold an object", EXIT_USAGE)
        return {key: str(value) for key, value in data.items() if key in FIELDS and value}

    def selected(self) -> str | None:
        """The selected context's name, or None."""
        try:
            name = (self.root / _SELECTED_FILE).read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return name or None

    # ------------------------------------------------------------------ writing
    def save(self, name: str, values: Mapping[str, str]) -> Path:
        """Write the context (replacing it), readable by the user only."""
        path = self.path(name)
        unknown = set(values) - set(FIELDS)
        if unknown:  # pragma: no cover - the commands only pass known keys
            raise ValueError(f"unknown context keys: {sorted(unknown)}")
        self._write(path, json.dumps(dict(values), indent=2, sort_keys=True) + "\n")
        return path

    def remove(self, name: str) -> None:
        path = self.path(name)
        try:
            path.unlink()
        except FileNotFoundError:
            raise CommandFailed(f"no context named {name!r}", EXIT_NOT_FOUND) from None
        if self.selected() == name:
            self.select(None)

    def select(self, name: str | None) -> None:
        """Make ``name`` the selected context (None: no context is selected)."""
        if name is not None and not self.exists(name):
            raise CommandFailed(f"no context named {name!r}", EXIT_NOT_FOUND)
        selected = self.root / _SELECTED_FILE
        if name is None:
            selected.unlink(missing_ok=True)
            return
        self._write(selected, name + "\n")

    def _write(self, path: Path, text: str) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkstemp creates the file with mode 0600 before anything is written into it.
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(text)
            os.chmod(temp, 0o600)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

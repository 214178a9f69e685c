"""Helpers for the Django tests: the example project, run as subprocesses."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from syncmsg.testing import wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "django_app"


def example_env(url: str, db: Path, **extra: str) -> dict[str, str]:
    """The environment of an example-project subprocess (manage.py, gunicorn)."""
    env = dict(os.environ)
    env.update(
        NATS_URL=url,
        TASKBOARD_DB=str(db),
        DJANGO_SETTINGS_MODULE="example_site.settings",
        PYTHONPATH=os.pathsep.join([str(EXAMPLE), *filter(None, [env.get("PYTHONPATH")])]),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


TEMPLATE_DB: Path | None = None  # set by conftest: a freshly migrated database


def migrate(db: Path) -> None:
    """A fresh, migrated SQLite file for the example project (a copy of the template the
    session migrated once, or ``manage.py migrate`` when there is none)."""
    if TEMPLATE_DB is not None and TEMPLATE_DB.exists():
        with sqlite3.connect(TEMPLATE_DB) as source, sqlite3.connect(db) as target:
            source.backup(target)
        return
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=EXAMPLE,
        env=example_env("nats://127.0.0.1:1", db),
        check=True,
        timeout=60,
    )


def count_rows(db: Path, sql: str) -> Any:
    """Run one read-only query on the example's SQLite file."""
    with sqlite3.connect(db, timeout=10) as conn:
        return conn.execute(sql).fetchall()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05
) -> None:
    wait_until(predicate, timeout, interval, what)

"""A throwaway PostgreSQL server for the tests: ``initdb`` in a temporary directory and
``postgres`` on a free loopback port, stopped and removed at the end.

The binaries are looked up on ``PATH`` and in ``/usr/lib/postgresql/*/bin`` (Debian's
``postgresql`` package). PostgreSQL refuses to run as root: as root, the server runs as
the ``postgres`` user (or ``nobody``), which gets the directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from _django_helpers import free_port

DATABASE = "syncmsg"
USER = "syncmsg"


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``postgres``, or None."""
    found = shutil.which("postgres")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
    for candidate in candidates:
        if (Path(candidate) / "postgres").exists() and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    return None


def _version(path: str) -> float:
    try:
        return float(Path(path).parent.name)
    except ValueError:
        return 0.0


def missing_reason() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None if they can."""
    if find_bin_dir() is None:
        return "no PostgreSQL server binary (postgres, initdb) on PATH or in /usr/lib/postgresql"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'syncmsg[postgres]')"
    return None


class PostgresServer:
    """``initdb`` + ``postgres -D <tmp> -p <port>``; :meth:`close` stops it and removes it."""

    def __init__(self) -> None:
        bin_dir = find_bin_dir()
        assert bin_dir is not None, missing_reason()
        self.bin_dir = bin_dir
        self.port = free_port()
        self.host = "127.0.0.1"
        self.root = Path(tempfile.mkdtemp(prefix="syncmsg-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self._user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                with contextlib.suppress(KeyError):
                    self._user = pwd.getpwnam(name)
                    break
            assert self._user is not None, "running as root and no postgres/nobody user"
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        self._proc: subprocess.Popen[bytes] | None = None

    def _demote(self) -> None:  # in the child, before exec
        if self._user is not None:
            os.setgid(self._user.pw_gid)
            os.setuid(self._user.pw_uid)

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        if self._user is not None:
            env["HOME"] = str(self.root)
        return env

    def start(self, timeout: float = 60.0) -> None:
        subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "-D", str(self.data), "-U", USER, "--auth=trust", "--encoding=UTF8",
                "--no-sync", "--no-instructions",
            ],
            check=True, capture_output=True, timeout=timeout, env=self._env(),
            preexec_fn=self._demote, cwd=self.root,
        )  # fmt: skip
        log = self.log.open("ab")
        self._proc = subprocess.Popen(
            [
                str(self.bin_dir / "postgres"),
                "-D", str(self.data), "-p", str(self.port), "-h", self.host,
                "-k", str(self.root),
                # A test server: durability is not what is tested here (crashes are of
                # the clients, never of PostgreSQL).
                "-c", "fsync=off", "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off", "-c", "max_connections=200",
            ],
            stdout=log, stderr=subprocess.STDOUT, env=self._env(),
            preexec_fn=self._demote, cwd=self.root,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout
        import psycopg

        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"postgres exited:\n{self.log.read_text()[-3000:]}")
            try:
                with psycopg.connect(self.dsn("postgres"), autocommit=True, connect_timeout=2) as c:
                    c.execute(f"CREATE DATABASE {DATABASE}")
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def dsn(self, database: str = DATABASE) -> str:
        return f"host={self.host} port={self.port} user={USER} dbname={database}"

    def django_settings(self, name: str = DATABASE) -> dict[str, Any]:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": USER,
            "HOST": self.host,
            "PORT": str(self.port),
            "CONN_MAX_AGE": 0,
        }

    def create_database(self, name: str, template: str | None = None) -> None:
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            suffix = f" TEMPLATE {template}" if template else ""
            conn.execute(f"CREATE DATABASE {name}{suffix}")

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # "fast" shutdown: disconnects the clients
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)

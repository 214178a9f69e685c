"""Django for the tests in this folder: the example project's settings, a temporary SQLite.

Django is configured with ``settings.configure()`` from the example project's settings
module (no DJANGO_SETTINGS_MODULE in the environment, so nothing leaks into the other
test folders or their subprocesses). Every test gets a fresh nats-server of its own: the
example uses the shared event streams (TASK_EVENTS …), which other tests use too.

PostgreSQL: the ``postgres`` fixture starts one real server per xdist worker (session
scope, in a temporary directory, see ``_postgres.py``) and migrates a template database;
``pg_database`` makes a fresh database from it for one test, and points the ``"pg"``
database alias at it. Tests that need it are skipped, with the reason, when no
PostgreSQL binary can be found.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _django_helpers
import _postgres
import pytest
from _django_helpers import EXAMPLE

if str(EXAMPLE) not in sys.path:
    sys.path.insert(0, str(EXAMPLE))

import django
from django.conf import settings

_TMP = Path(tempfile.mkdtemp(prefix="syncmsg-django-tests-"))
atexit.register(shutil.rmtree, _TMP, True)
DB_PATH = _TMP / "db.sqlite3"

if not settings.configured:
    import example_site.settings as example

    values = {name: getattr(example, name) for name in dir(example) if name.isupper()}
    database = dict(example.DATABASES["default"])
    database["NAME"] = str(DB_PATH)
    database["CONN_MAX_AGE"] = 0  # Django's default: closed after each request / handler
    values["DATABASES"] = {"default": database}
    if _postgres.missing_reason() is None:
        # Pointed at a real database by the pg_database fixture, before anything connects.
        values["DATABASES"]["pg"] = {"ENGINE": "django.db.backends.postgresql"}
    # Nothing listens here: each test points SYNCMSG at its own server.
    values["SYNCMSG"] = {**example.SYNCMSG, "url": "nats://127.0.0.1:1"}
    settings.configure(**values)
    django.setup()


@pytest.fixture(scope="session", autouse=True)
def _database() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    template = _TMP / "template.sqlite3"
    with sqlite3.connect(DB_PATH) as source, sqlite3.connect(template) as target:
        source.backup(target)
    _django_helpers.TEMPLATE_DB = template


@pytest.fixture(autouse=True)
def _clean_rows() -> Iterator[None]:
    yield
    from taskboard.models import ProcessedMessage, Task

    from syncmsg.django.outbox import OutboxLease, OutboxMessage

    Task.objects.all().delete()
    ProcessedMessage.objects.all().delete()
    OutboxMessage.objects.all().delete()
    OutboxLease.objects.all().delete()
    from django.db import connections

    connections.close_all()


@pytest.fixture
def django_nats(nats_server_factory: Any) -> Iterator[Any]:
    """A private JetStream server, and SYNCMSG pointed at it for this test."""
    from django.test import override_settings

    server = nats_server_factory(jetstream=True)
    syncmsg_settings = {**settings.SYNCMSG, "url": server.url, "timeout": 5.0}
    with override_settings(SYNCMSG=syncmsg_settings):
        yield server


_PG_TEMPLATE = "syncmsg_template"
_pg_databases = iter(range(1, 1_000_000))


@pytest.fixture(scope="session")
def postgres() -> Iterator[_postgres.PostgresServer]:
    """A PostgreSQL server of this xdist worker, with a migrated template database."""
    reason = _postgres.missing_reason()
    if reason is not None:
        pytest.skip(reason)
    server = _postgres.PostgresServer()
    try:
        server.start()
        server.create_database(_PG_TEMPLATE)
        env = {"TASKBOARD_DATABASE_URL": database_url(server, _PG_TEMPLATE)}
        import subprocess

        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=EXAMPLE,
            env=_django_helpers.example_env("nats://127.0.0.1:1", _TMP / "unused.sqlite3", **env),
            check=True,
            timeout=120,
        )
        yield server
    finally:
        server.close()


def database_url(server: _postgres.PostgresServer, name: str) -> str:
    return f"postgres://{_postgres.USER}@{server.host}:{server.port}/{name}"


@pytest.fixture
def pg_database(postgres: _postgres.PostgresServer) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database; also the ``"pg"`` alias for this test.
    Yields its URL (``TASKBOARD_DATABASE_URL`` of the example's subprocesses)."""
    from django.db import connections

    name = f"syncmsg_test_{os.getpid()}_{next(_pg_databases)}"
    server = postgres
    server.create_database(name, template=_PG_TEMPLATE)
    connections["pg"].close()
    # The same dict as connections.settings["pg"] (Django filled in its defaults there).
    settings.DATABASES["pg"].update(server.django_settings(name))
    try:
        yield database_url(server, name)
    finally:
        connections.close_all()

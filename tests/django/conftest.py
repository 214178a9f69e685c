"""Django for the tests in this folder: the example project's settings, a temporary SQLite.

Django is configured with ``settings.configure()`` from the example project's settings
module (no DJANGO_SETTINGS_MODULE in the environment, so nothing leaks into the other
test folders or their subprocesses). Every test gets a fresh nats-server of its own: the
example uses the shared event streams (TASK_EVENTS …), which other tests use too.
"""

from __future__ import annotations

import atexit
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _django_helpers
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

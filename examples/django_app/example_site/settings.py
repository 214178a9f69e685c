"""Settings of the syncmsg example project (a small task board).

Everything that differs between a laptop, the tests and production comes from the
environment: NATS_URL (and the other NATS_* variables syncmsg reads), TASKBOARD_DB (the
SQLite file), DJANGO_SECRET_KEY, DJANGO_DEBUG.
"""

import os
from pathlib import Path
from uuid import UUID

import django

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-example-key-do-not-deploy")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "syncmsg.django",
    "taskboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "example_site.urls"
WSGI_APPLICATION = "example_site.wsgi.application"

_sqlite_options: dict[str, object] = {"timeout": 30}
if django.VERSION >= (5, 1):
    # Write transactions take the lock when they begin, so concurrent writers (gunicorn
    # threads and processes, the worker) queue up instead of failing with "locked"; WAL
    # lets readers run alongside the writer.
    _sqlite_options["transaction_mode"] = "IMMEDIATE"
    _sqlite_options["init_command"] = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("TASKBOARD_DB", str(BASE_DIR / "db.sqlite3")),
        "OPTIONS": _sqlite_options,
        # Keep connections open between requests and handler calls (both close stale
        # ones, as Django does around requests).
        "CONN_MAX_AGE": int(os.environ.get("TASKBOARD_CONN_MAX_AGE", "60")),
    }
}

USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# syncmsg: one process-wide client (syncmsg.django.get_client()). Keys other than the
# Django options below are syncmsg.Config fields; whatever is not given here comes from
# the NATS_* environment.
SYNCMSG = {
    "url": os.environ.get("NATS_URL", "nats://localhost:4222"),
    "timeout": 5.0,
    # Ensured when the process's client first connects (idempotent, safe from every
    # process): the typed event streams (TASK_EVENTS & co.) and our own stream.
    "event_streams": True,
    "streams": [
        {"name": "TASKBOARD", "subjects": ["taskboard.>"], "max_age": 7 * 24 * 3600},
    ],
    # The events' "source", and the durable consumers' prefix: taskboard-task-consumer.
    "service": "taskboard",
    "worker": {"workers": 1, "shutdown_timeout": 20.0},
}

# The single tenant of this example (events carry a tenant id).
TASKBOARD_TENANT_ID = UUID(
    os.environ.get("TASKBOARD_TENANT_ID", "5f0c6f9e-4c1a-4a3b-9d7e-2b8f1e6a9c01")
)
# Simulated work in the event handler, in seconds (the shutdown test stretches it).
TASKBOARD_HANDLER_DELAY = float(os.environ.get("TASKBOARD_HANDLER_DELAY", "0"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "syncmsg": {"handlers": ["console"], "level": os.environ.get("SYNCMSG_LOG", "WARNING")},
    },
}

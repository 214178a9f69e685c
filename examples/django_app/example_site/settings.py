"""Settings of the syncmsg example project (a small task board).

Everything that differs between a laptop, the tests and production comes from the
environment: NATS_URL (and the other NATS_* variables syncmsg reads), TASKBOARD_DB (the
SQLite file) or TASKBOARD_DATABASE_URL (postgres://user@host:port/name, for PostgreSQL),
TASKBOARD_PUBLISH ("outbox", the default, or "on_commit"), DJANGO_SECRET_KEY, DJANGO_DEBUG.
"""

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit
from uuid import UUID

import django

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-example-key-do-not-deploy")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",  # /admin/: the outbox, read-only (syncmsg/django/admin.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "syncmsg.django",
    "taskboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "static/"

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
if os.environ.get("TASKBOARD_DATABASE_URL"):
    _url = urlsplit(os.environ["TASKBOARD_DATABASE_URL"])  # postgres://user:pw@host:port/name
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _url.path.lstrip("/"),
        "USER": unquote(_url.username or ""),
        "PASSWORD": unquote(_url.password or ""),
        "HOST": _url.hostname or "",
        "PORT": str(_url.port or ""),
        "CONN_MAX_AGE": int(os.environ.get("TASKBOARD_CONN_MAX_AGE", "60")),
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
    # The transactional outbox: the views write their events into syncmsg_outbox in the
    # same transaction as the task; `manage.py syncmsg_worker` (or `syncmsg_relay`)
    # publishes them. The health view answers 503 when the oldest unsent event is older
    # than a minute (no relay running, NATS down for long).
    "outbox": {"health_max_age": 60.0},
}
# How the views publish: "outbox" (a row in the transaction, published by the relay) or
# "on_commit" (published by the request thread right after the commit).
TASKBOARD_PUBLISH = os.environ.get("TASKBOARD_PUBLISH", "outbox")

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

"""The ``SYNCMSG`` Django setting, read and checked.

::

    SYNCMSG = {
        "url": "nats://nats:4222",          # any syncmsg.Config field; the rest from NATS_*
        "timeout": 5.0,
        "streams": [StreamSpec(name="ORDERS", subjects=["orders.>"])],   # or dicts
        "event_streams": True,              # AGENT_EVENTS, TASK_EVENTS, AUDIT_EVENTS, DLQ
        "service": "billing",               # event source and consumer names
        "jetstream": {"timeout": 2.0, "publish_retry": RetryPolicy(deadline=10.0)},
        "worker": {"workers": 2, "shutdown_timeout": 25.0},
        "outbox": {"retention": 24 * 3600, "health_max_age": 60.0},   # see OutboxOptions
    }

Every key is optional; without the setting, the client is configured from the ``NATS_*``
environment alone, as :func:`syncmsg.connect` is. Keys that are not Django options are
:class:`syncmsg.Config` fields and win over the environment.

Threading: pure functions over ``django.conf.settings``; call them from any thread.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from syncmsg._config import Config
from syncmsg._errors import ConfigurationError
from syncmsg.jetstream import StreamSpec

__all__ = ["DjangoOptions", "OutboxOptions", "WorkerOptions", "load", "options"]

SETTING = "SYNCMSG"
DEFAULT_SERVICE = "django"

#: Keys of ``SYNCMSG`` that configure the Django integration rather than the client.
DJANGO_KEYS = frozenset(
    {
        "streams",
        "event_streams",
        "service",
        "event_source",
        "health_timeout",
        "worker",
        "jetstream",
        "outbox",
    }
)
_JETSTREAM_KEYS = frozenset(
    {
        "timeout",
        "domain",
        "prefix",
        "publish_retry",
        "api_retry",
        "no_responders_wait",
        "max_pending",
    }
)
_WORKER_KEYS = frozenset(
    {"workers", "prefetch", "shutdown_timeout", "retry", "ack_wait", "max_ack_pending", "handlers"}
)


@dataclasses.dataclass(frozen=True)
class WorkerOptions:
    """``SYNCMSG["worker"]``: how ``manage.py syncmsg_worker`` runs the handlers."""

    workers: int = 1
    prefetch: int | None = None  # messages held per consumer; None: max(16, 4 * workers)
    shutdown_timeout: float = 25.0
    retry: Any = "default"  # an EventRetryPolicy, None (ack failures), or "default"
    ack_wait: float = 30.0
    max_ack_pending: int = 1000
    handlers: str = "handlers"  # the module autodiscovered in each app

    @property
    def effective_prefetch(self) -> int:
        """How many messages each consumer holds at most (queued or in a handler)."""
        return self.prefetch or max(16, 4 * self.workers)


@dataclasses.dataclass(frozen=True)
class OutboxOptions:
    """``SYNCMSG["outbox"]``: the transactional outbox and its relay (docs/django.md#outbox).

    Times are in seconds.
    """

    database: str = "default"  # the alias the outbox table lives in
    batch_size: int = 1000  # rows claimed and published per round
    poll_interval: float = 0.5  # the relay's sleep when nothing is pending
    publish_timeout: float = 5.0  # bounds one round's wait for its acks
    retention: float | None = 24 * 3600.0  # published rows are deleted after this; None: kept
    cleanup_interval: float = 60.0  # how often the relay deletes rows past retention
    mode: str = "auto"  # "concurrent" (row locks, skip locked), "single" (a lease), "auto"
    lease: float = 30.0  # single mode: a relay that stops renewing is replaced after this
    backoff_initial: float = 0.5  # waits while NATS is down, and before a failed row's retry:
    backoff_max: float = 30.0  # doubling from backoff_initial up to backoff_max
    max_payload: int | None = 1024 * 1024  # refused at write time (the server default)
    health_max_backlog: int | None = None  # the health view answers 503 above these
    health_max_age: float | None = None
    run_in_worker: bool = True  # manage.py syncmsg_worker runs a relay too


@dataclasses.dataclass(frozen=True)
class DjangoOptions:
    """Everything ``SYNCMSG`` says, validated."""

    config: Config
    streams: tuple[StreamSpec, ...]
    event_streams: dict[str, Any] | None
    service: str
    event_source: str
    health_timeout: float
    worker: WorkerOptions
    jetstream: dict[str, Any] = dataclasses.field(default_factory=dict)
    outbox: OutboxOptions | None = None  # None: SYNCMSG["outbox"] is not set


def _raw_setting() -> Mapping[str, Any]:
    from django.conf import settings

    raw = getattr(settings, SETTING, None)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"settings.{SETTING} must be a dict, not {type(raw).__name__}")
    return raw


def load(raw: Mapping[str, Any] | None = None) -> DjangoOptions:
    """Read ``settings.SYNCMSG`` (or ``raw``); raises :class:`~syncmsg.ConfigurationError`
    with a one-line reason when something is wrong."""
    raw = _raw_setting() if raw is None else raw
    service = raw.get("service", DEFAULT_SERVICE)
    if not isinstance(service, str) or not service.strip():
        raise ConfigurationError(f"{SETTING}['service'] must be a non-empty string")
    source = raw.get("event_source", service)
    if not isinstance(source, str) or not source.strip():
        raise ConfigurationError(f"{SETTING}['event_source'] must be a non-empty string")
    options = {key: value for key, value in raw.items() if key not in DJANGO_KEYS}
    if "name" not in options and not os.environ.get("NATS_NAME"):
        options["name"] = service
    try:
        config = Config.build(**options)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{SETTING}: {_one_line(exc)}") from None
    health_timeout = raw.get("health_timeout", 2.0)
    if not isinstance(health_timeout, int | float) or health_timeout <= 0:
        raise ConfigurationError(f"{SETTING}['health_timeout'] must be a positive number")
    return DjangoOptions(
        config=config,
        streams=_streams(raw.get("streams", ())),
        event_streams=_event_streams(raw.get("event_streams", False)),
        service=service,
        event_source=source,
        health_timeout=float(health_timeout),
        worker=_worker(raw.get("worker", {})),
        jetstream=_jetstream(raw.get("jetstream", {})),
        outbox=outbox_options(raw.get("outbox")),
    )


_cache_lock = threading.Lock()
_cached: DjangoOptions | None = None


def options() -> DjangoOptions:
    """:func:`load`, read once and kept until the setting changes (see :func:`clear`).

    For the calls that run on every request (the outbox writes) and must not parse the
    settings and the environment each time.
    """
    global _cached
    cached = _cached
    if cached is None:
        with _cache_lock:
            cached = _cached = load()
    return cached


def clear() -> None:
    """Forget what :func:`options` read (``SYNCMSG`` changed: ``override_settings``)."""
    global _cached
    with _cache_lock:
        _cached = None


def _streams(value: Any) -> tuple[StreamSpec, ...]:
    if isinstance(value, StreamSpec | Mapping | str) or not isinstance(value, Sequence):
        raise ConfigurationError(
            f"{SETTING}['streams'] must be a list of StreamSpec objects or dicts"
        )
    specs: list[StreamSpec] = []
    for item in value:
        if isinstance(item, StreamSpec):
            specs.append(item)
            continue
        if not isinstance(item, Mapping):
            raise ConfigurationError(
                f"{SETTING}['streams'] items must be StreamSpec objects or dicts, "
                f"not {type(item).__name__}"
            )
        try:
            specs.append(StreamSpec.model_validate(dict(item)))
        except ValueError as exc:
            raise ConfigurationError(
                f"{SETTING}['streams']: invalid stream {item.get('name')!r}: {_one_line(exc)}"
            ) from None
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"{SETTING}['streams'] names a stream twice")
    return tuple(specs)


def _event_streams(value: Any) -> dict[str, Any] | None:
    if value is False or value is None:
        return None
    if value is True:
        return {}
    if isinstance(value, Mapping) and set(value) <= {"replicas", "dead_letters"}:
        return dict(value)
    raise ConfigurationError(
        f"{SETTING}['event_streams'] must be True, False or a dict with 'replicas' "
        "and/or 'dead_letters'"
    )


def _jetstream(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{SETTING}['jetstream'] must be a dict")
    unknown = set(value) - _JETSTREAM_KEYS
    if unknown:
        raise ConfigurationError(
            f"{SETTING}['jetstream'] has unknown keys {sorted(unknown)}; "
            f"expected some of {sorted(_JETSTREAM_KEYS)}"
        )
    options = dict(value)
    timeout = options.get("timeout")
    if timeout is not None:
        if not _number(timeout) or timeout <= 0:
            raise ConfigurationError(f"{SETTING}['jetstream']['timeout'] must be a positive number")
        if "publish_retry" not in options:
            # The timeout is what a publish may take in all: retries end with it too
            # (otherwise they would go on for DEFAULT_PUBLISH_RETRY's minute).
            from syncmsg.jetstream import DEFAULT_PUBLISH_RETRY

            options["publish_retry"] = DEFAULT_PUBLISH_RETRY.replace(deadline=float(timeout))
    return options


_OUTBOX_MODES = ("auto", "concurrent", "single")
_OUTBOX_KEYS = frozenset(field.name for field in dataclasses.fields(OutboxOptions))


def outbox_options(value: Any) -> OutboxOptions | None:
    """``SYNCMSG["outbox"]`` (a dict, True, or None/False for off), validated."""
    if value is None or value is False:
        return None
    if value is True:
        value = {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{SETTING}['outbox'] must be a dict (or True)")
    unknown = set(value) - _OUTBOX_KEYS
    if unknown:
        raise ConfigurationError(
            f"{SETTING}['outbox'] has unknown keys {sorted(unknown)}; "
            f"expected some of {sorted(_OUTBOX_KEYS)}"
        )
    options = OutboxOptions(**value)
    where = f"{SETTING}['outbox']"
    if not isinstance(options.database, str) or not options.database:
        raise ConfigurationError(f"{where}['database'] must be a database alias")
    if not isinstance(options.batch_size, int) or not 1 <= options.batch_size <= 5000:
        raise ConfigurationError(f"{where}['batch_size'] must be an int from 1 to 5000")
    positive = ("poll_interval", "publish_timeout", "cleanup_interval", "lease")
    for key in (*positive, "backoff_initial", "backoff_max"):
        number = getattr(options, key)
        if not _number(number) or number <= 0:
            raise ConfigurationError(f"{where}[{key!r}] must be a positive number")
    if options.backoff_max < options.backoff_initial:
        raise ConfigurationError(f"{where}['backoff_max'] must be at least 'backoff_initial'")
    for key in ("retention", "health_max_age"):
        number = getattr(options, key)
        if number is not None and (not _number(number) or number < 0):
            raise ConfigurationError(f"{where}[{key!r}] must be a number >= 0, or None")
    for key in ("health_max_backlog", "max_payload"):
        number = getattr(options, key)
        if number is not None and (not isinstance(number, int) or number < 0):
            raise ConfigurationError(f"{where}[{key!r}] must be an int >= 0, or None")
    if options.mode not in _OUTBOX_MODES:
        raise ConfigurationError(f"{where}['mode'] must be one of {list(_OUTBOX_MODES)}")
    if options.lease < 3 * options.publish_timeout:
        # A round must end well inside the lease, or a second relay could take over while
        # the first still sends (harmless inside the duplicate window, but not free).
        raise ConfigurationError(
            f"{where}['lease'] must be at least 3 times 'publish_timeout' "
            f"({options.lease:g} < 3 * {options.publish_timeout:g})"
        )
    if not isinstance(options.run_in_worker, bool):
        raise ConfigurationError(f"{where}['run_in_worker'] must be True or False")
    return options


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _worker(value: Any) -> WorkerOptions:
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{SETTING}['worker'] must be a dict")
    unknown = set(value) - _WORKER_KEYS
    if unknown:
        raise ConfigurationError(
            f"{SETTING}['worker'] has unknown keys {sorted(unknown)}; "
            f"expected some of {sorted(_WORKER_KEYS)}"
        )
    options = WorkerOptions(**value)
    if not isinstance(options.workers, int) or options.workers < 1:
        raise ConfigurationError(f"{SETTING}['worker']['workers'] must be a positive int")
    if options.prefetch is not None and (
        not isinstance(options.prefetch, int) or options.prefetch < 1
    ):
        raise ConfigurationError(f"{SETTING}['worker']['prefetch'] must be a positive int")
    for key in ("shutdown_timeout", "ack_wait"):
        number = getattr(options, key)
        if not isinstance(number, int | float) or number <= 0:
            raise ConfigurationError(f"{SETTING}['worker'][{key!r}] must be a positive number")
    if not isinstance(options.max_ack_pending, int) or options.max_ack_pending < 1:
        raise ConfigurationError(f"{SETTING}['worker']['max_ack_pending'] must be a positive int")
    if options.retry != "default" and options.retry is not None:
        from syncmsg.events import EventRetryPolicy

        if not isinstance(options.retry, EventRetryPolicy):
            raise ConfigurationError(
                f"{SETTING}['worker']['retry'] must be an EventRetryPolicy or None"
            )
    return options


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())

"""The process-wide client of a Django project.

Threading and processes:

* :func:`get_client` may be called from any thread. The first call in a process creates
  and connects the client, and ensures the streams named in ``SYNCMSG``, under a lock:
  threads racing to it wait for that one connection instead of opening their own.
* After ``fork()`` (gunicorn, uWSGI, Celery prefork, multiprocessing) the first call in the
  child sees a new pid and creates the child's own client. The parent's client object is
  left untouched (never closed from the child: its socket belongs to the parent). The lock
  is replaced in the child by an ``os.register_at_fork`` hook, in case another thread of
  the parent held it at fork time; the pid check does not depend on that hook, so uWSGI
  without ``lazy-apps`` is covered too.
* Streams are ensured once per process tree: a child forked after the parent ensured them
  (gunicorn ``--preload``) does not ensure them again.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from syncmsg._client import Client
from syncmsg._errors import SyncMsgError
from syncmsg.django import conf

if TYPE_CHECKING:
    from syncmsg.events import EventPublisher
    from syncmsg.jetstream import JetStream

__all__ = ["close_client", "get_client", "get_jetstream", "get_publisher"]

log = logging.getLogger("syncmsg.django")


@dataclasses.dataclass
class _Current:
    pid: int
    client: Client
    options: conf.DjangoOptions
    js: JetStream
    publisher: EventPublisher | None = None


_lock = threading.Lock()
_current: _Current | None = None
_ensured: set[str] = set()  # inherited by forked children on purpose


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _usable(current: _Current | None) -> _Current | None:
    if current is None or current.pid != os.getpid() or current.client.is_closed:
        return None
    return current


def get_client(*, timeout: float | None = None) -> Client:
    """The process's connected :class:`syncmsg.Client`, created on first use.

    The first call connects with ``SYNCMSG``'s configuration (falling back to the
    ``NATS_*`` environment) and ensures the streams it lists; ``timeout`` bounds that
    connection (default: the configuration's ``connect_retry``, 10 s). Later calls return
    the same client, from any thread; a new one is made after ``fork()`` or when the
    previous one was closed. Raises :class:`syncmsg.NoServersError` (and the like) when no
    server can be reached: the next call tries again.
    """
    current = _usable(_current)
    if current is not None:
        return current.client
    return _create(timeout).client


def _create(timeout: float | None) -> _Current:
    global _current
    deadline = None if timeout is None else time.monotonic() + timeout
    acquired = _lock.acquire(timeout=-1 if timeout is None else timeout)
    if not acquired:
        from syncmsg._errors import TimeoutError

        raise TimeoutError(f"another thread is still connecting after {timeout:g}s")
    try:
        current = _usable(_current)
        if current is not None:
            return current
        options = conf.load()
        client = Client(options.config)
        left = None if deadline is None else max(deadline - time.monotonic(), 0.001)
        client.connect(left)
        try:
            js = client.jetstream(**options.jetstream)
            _ensure_streams(js, options)
        except BaseException:
            client.close(1.0)
            raise
        _current = _Current(os.getpid(), client, options, js)
        log.info("syncmsg: connected the Django process client (pid %d)", os.getpid())
        return _current
    finally:
        _lock.release()


def _ensure_streams(js: JetStream, options: conf.DjangoOptions) -> None:
    client = js.client
    for spec in options.streams:
        key = f"stream:{spec.model_dump_json()}"
        if key in _ensured:
            continue
        info = js.ensure_stream(spec)
        log.info("syncmsg: stream %s %s", spec.name, info.action)
        _ensured.add(key)
    if options.event_streams is not None:
        key = f"events:{sorted(options.event_streams.items())}"
        if key not in _ensured:
            from syncmsg.events import ensure_event_streams

            for info in ensure_event_streams(client, js=js, **options.event_streams):
                log.info("syncmsg: stream %s %s", info.config.name, info.action)
            _ensured.add(key)


def get_options() -> conf.DjangoOptions:
    """The options of the current client, or freshly read from the settings."""
    current = _usable(_current)
    return current.options if current is not None else conf.load()


def get_jetstream(**options: Any) -> JetStream:
    """The process's JetStream context, configured by ``SYNCMSG["jetstream"]`` (with
    ``options``: a new context, ``get_client().jetstream(**options)``)."""
    client = get_client()
    current = _current
    if options or current is None or current.client is not client:
        return client.jetstream(**options)
    return current.js


def get_publisher() -> EventPublisher:
    """A process-wide :class:`syncmsg.events.EventPublisher` on :func:`get_client`, with
    ``SYNCMSG["event_source"]`` (default: the ``service``) as the events' ``source``."""
    from syncmsg.events import EventPublisher

    client = get_client()
    current = _current
    if current is None or current.client is not client:  # pragma: no cover - a race with close
        return EventPublisher(client, conf.load().event_source)
    if current.publisher is None:
        current.publisher = EventPublisher(client, current.options.event_source, js=current.js)
    return current.publisher


def close_client(timeout: float | None = None) -> None:
    """Close the process's client (if this process made one) and forget it; the next
    :func:`get_client` creates a new one. Also forgets which streams were ensured.

    Called when ``settings.SYNCMSG`` changes (``override_settings`` in tests).
    """
    global _current
    with _lock:
        current, _current = _current, None
        _ensured.clear()
    if current is not None and current.pid == os.getpid():
        try:
            current.client.close(timeout)
        except SyncMsgError as exc:  # pragma: no cover - close logs rather than raises
            log.warning("syncmsg: closing the Django client: %s", exc)


def current_client() -> Client | None:
    """The process's client if it exists and is open, without creating one."""
    current = _usable(_current)
    return current.client if current is not None else None

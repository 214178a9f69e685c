"""The relay: publishes committed outbox rows to JetStream, each exactly once, in order.

Threading: :meth:`Relay.start` runs the loop on its own thread, ``syncmsg-outbox-relay``,
which owns that thread's database connection; :meth:`Relay.run_once` and
:meth:`Relay.publish_pending` run a round on the caller's thread instead. Acks resolve on
the JetStream context's ``syncmsg-js-acks-N`` thread, whose done-callbacks only put the
finished future into a queue that the round's thread reads.

A round:

1. **Claim** up to ``batch_size`` due rows (pending, ``available`` reached) in ``id``
   order. In *concurrent* mode (PostgreSQL, MySQL, Oracle) inside a transaction with
   ``SELECT ... FOR UPDATE SKIP LOCKED``, so that several relays take different rows and
   none waits for another. In *single* mode (SQLite) only the holder of the lease (a row of
   ``syncmsg_outbox_lease``, renewed every ``lease / 3`` seconds) claims anything.
2. **Keep the order of each key**: a claimed row whose key has an earlier pending row that
   this round did not claim (another relay holds it, or it waits for a retry) is left for
   a later round.
3. **Publish** with ``publish_async`` and ``Nats-Msg-Id`` = the row's ``msg_id``. Rows
   without a key are pipelined all at once; of each key one row is in flight at a time,
   the next sent when its predecessor's ack came, so that a retried publish can never land
   after its successor.
4. **Mark** the acknowledged rows published; a row that failed for its own reason (no
   stream captures its subject, too large, ...) gets ``attempts + 1``, ``last_error`` and a
   later ``available`` (exponential backoff), and blocks the rest of its key until then.
   When NATS itself is unavailable (not connected, timeouts), what was acked is marked,
   the rest is left pending, and the loop backs off with tenacity.

A relay that dies after JetStream stored a message but before it marked the row re-sends
that row later: JetStream drops the copy (``PubAck.duplicate``) if it arrives within the
stream's duplicate window. A row older than that window is still sent, with a warning and
the ``past_dedup_window`` counter, since a copy can no longer be recognised.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import math
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import tenacity

from syncmsg import _instrumentation
from syncmsg._errors import ConfigurationError, NatsConnectionError, SyncMsgError, TimeoutError
from syncmsg._retry import RetryPolicy
from syncmsg.django import conf

if TYPE_CHECKING:
    from syncmsg._client import Client
    from syncmsg.jetstream import JetStream, PubAck

__all__ = ["Relay"]

log = logging.getLogger("syncmsg.django.outbox")

LEASE_NAME = "relay"
#: Rows younger than this are not checked against their stream's duplicate window (no
#: window is that short; it saves a lookup for every row of a healthy relay).
_WINDOW_CHECK_AGE = 1.0
_WINDOW_CACHE_SECONDS = 60.0
_MARK_CHUNK = 500  # ids per UPDATE ... WHERE id IN (...)
_DELETE_CHUNK = 1000


def _transient(exc: BaseException) -> bool:
    """NATS or the database is unavailable: wait and try again, nothing is wrong with a row."""
    from django.db import DatabaseError

    return isinstance(exc, NatsConnectionError | TimeoutError | DatabaseError)


class _Row:
    """The columns of a pending row that a round needs."""

    __slots__ = ("attempts", "headers", "id", "key", "msg_id", "payload", "subject")
    COLUMNS = ("id", "subject", "payload", "headers", "msg_id", "key", "attempts")  # __init__'s

    def __init__(
        self,
        id: int,
        subject: str,
        payload: bytes,
        headers: dict[str, Any] | None,
        msg_id: str,
        key: str | None,
        attempts: int,
    ) -> None:
        self.id = id
        self.subject = subject
        self.payload = payload
        self.headers = headers
        self.msg_id = msg_id
        self.key = key
        self.attempts = attempts


class _EventOfRow:
    """What the tracing hooks read of a typed event (its correlation and type), taken from
    the JSON of a row that ``publish_event`` wrote: its ``id`` is the row's ``msg_id``.
    Other rows give neither, so a plain JSON payload with a ``type`` field is not taken
    for an event. Read only while tracing is on."""

    __slots__ = ("correlation_id", "type")

    def __init__(self, row: _Row) -> None:
        try:
            fields = json.loads(row.payload)
        except ValueError:
            fields = None
        if not isinstance(fields, dict) or fields.get("id") != row.msg_id:
            fields = {}
        self.correlation_id = fields.get("correlationId")
        self.type = fields.get("type")


@dataclasses.dataclass
class _Outcome:
    acked: list[tuple[_Row, PubAck]] = dataclasses.field(default_factory=list)
    failed: list[tuple[_Row, BaseException]] = dataclasses.field(default_factory=list)
    unavailable: BaseException | None = None


class Relay:
    """Publishes the outbox's rows; run it with :meth:`start`/:meth:`stop`, or call
    :meth:`run_once`/:meth:`publish_pending` from a thread of your own.

    ``options`` default to ``SYNCMSG["outbox"]`` (which must be set); ``client`` to the
    process client (:func:`~syncmsg.django.get_client`, made again if it is closed).
    ``name`` identifies this relay in the lease and the logs (default: host, pid and a
    random suffix).
    """

    def __init__(
        self,
        *,
        options: conf.OutboxOptions | None = None,
        client: Client | None = None,
        name: str | None = None,
    ) -> None:
        settings = conf.options()
        resolved = options or settings.outbox
        if resolved is None:
            raise SyncMsgError(f"the outbox is not enabled: set {conf.SETTING}['outbox']")
        self.options: conf.OutboxOptions = resolved
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._jetstream_options = {
            key: value
            for key, value in settings.jetstream.items()
            if key in ("domain", "prefix", "no_responders_wait")
        }
        self._client = client
        self._js: JetStream | None = None
        self._js_client: Client | None = None
        self._backoff = RetryPolicy(
            attempts=1,
            deadline=None,
            initial=resolved.backoff_initial,
            maximum=resolved.backoff_max,
            jitter=resolved.backoff_initial / 2,
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stats: collections.Counter[str] = collections.Counter()
        self._windows: dict[str, tuple[float | None, float]] = {}
        self._holding = False
        # Single mode: (monotonic) until when the lease this relay wrote is surely its own;
        # sending stops there, before another relay may take over.
        self._lease_until = 0.0
        self._next_cleanup = 0.0
        self._mode: str | None = None

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<syncmsg.django.outbox.Relay {self.name} {state}>"

    # ------------------------------------------------------------------ lifecycle
    @property
    def is_running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def mode(self) -> str:
        """``"concurrent"`` or ``"single"``: what ``mode="auto"`` chose for the database."""
        if self._mode is None:
            from django.db import connections

            skip_locked = connections[self.options.database].features
            skip_locked = skip_locked.has_select_for_update_skip_locked
            mode = self.options.mode
            if mode == "auto":
                mode = "concurrent" if skip_locked else "single"
            elif mode == "concurrent" and not skip_locked:
                # Django would drop the FOR UPDATE silently: relays would send rows twice.
                raise ConfigurationError(
                    f"{conf.SETTING}['outbox']['mode'] is 'concurrent', but database "
                    f"{self.options.database!r} has no SELECT ... FOR UPDATE SKIP LOCKED; "
                    "use 'single' (or 'auto')"
                )
            self._mode = mode
        return self._mode

    def start(self) -> None:
        """Run the relay on the ``syncmsg-outbox-relay`` thread until :meth:`stop`.

        Raises :class:`~syncmsg.ConfigurationError` if ``mode="concurrent"`` was asked of
        a database without ``SKIP LOCKED``.
        """
        mode = self.mode  # a mode the database cannot do fails here, not in the thread
        with self._lock:
            if self.is_running:
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="syncmsg-outbox-relay", daemon=True
            )
            self._thread.start()
        log.info("syncmsg: outbox relay %s started (%s mode)", self.name, mode)

    def stop(self, timeout: float | None = None) -> bool:
        """Stop after the current round (which ends within ``publish_timeout``) and give up
        the single-mode lease, so that a standby relay takes over at once; returns False if
        the thread was still running after ``timeout`` seconds."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(self.options.publish_timeout + 5.0 if timeout is None else timeout)
            if thread.is_alive():
                return False
        self._thread = None
        try:
            self._release_lease()  # after run_once() on this thread (the loop's was released)
        except Exception as exc:  # the lease then expires by itself
            log.warning("syncmsg: outbox relay %s: releasing the lease: %s", self.name, exc)
        return True

    def stats(self) -> dict[str, Any]:
        """Counters since start: ``published``, ``duplicates`` (re-sends JetStream had
        already stored), ``failed`` (row errors), ``past_dedup_window``, ``rounds``,
        ``unavailable`` (rounds that found NATS or the database down), ``deleted``; and
        ``mode`` and ``lease`` (``"held"``/``"standby"`` in single mode)."""
        stats: dict[str, Any] = {
            key: self._stats.get(key, 0)
            for key in (
                "published",
                "duplicates",
                "failed",
                "past_dedup_window",
                "rounds",
                "unavailable",
                "deleted",
            )
        }
        stats["mode"] = self._mode
        if self._mode == "single":
            stats["lease"] = "held" if self._holding else "standby"
        return stats

    # ------------------------------------------------------------------ the loop
    def _run(self) -> None:
        from django.db import connections

        try:
            while not self._stop.is_set():
                published = self._round_with_backoff()
                self._maybe_clean_up()
                if published < self.options.batch_size:
                    self._stop.wait(self.options.poll_interval)
        finally:
            with contextlib.suppress(Exception):
                self._release_lease()
            connections.close_all()  # this thread's connections
            log.info("syncmsg: outbox relay %s stopped: %s", self.name, self.stats())

    def _round_with_backoff(self) -> int:
        """One round; while it fails, wait (tenacity, ``backoff_initial`` doubling up to
        ``backoff_max``, cut short by :meth:`stop`) and try again."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(Exception),
            wait=self._backoff.waits(),
            stop=tenacity.stop_when_event_set(self._stop),
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            published = retrying(self.run_once)
        except Exception:  # only after stop(): the backoff ended early
            return 0
        attempts = int(retrying.statistics.get("attempt_number", 1))
        if attempts > 1:
            log.warning(
                "syncmsg: outbox relay %s: publishing again after %d attempts",
                self.name,
                attempts,
            )
        return published

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)  # stop() cuts the backoff short

    def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        if exc is not None and _transient(exc):
            from django.db import DatabaseError, connections

            if isinstance(exc, DatabaseError):
                connections[self.options.database].close()  # reconnect on the next round
            # One warning per outage and every 10th attempt; the rest at debug level.
            level = logging.WARNING if state.attempt_number % 10 == 1 else logging.DEBUG
            log.log(
                level,
                "syncmsg: outbox relay %s: %s unavailable (%s); attempt %d, next in %.1fs",
                self.name,
                "database" if isinstance(exc, DatabaseError) else "NATS",
                " ".join(str(exc).split()) or type(exc).__name__,
                state.attempt_number,
                wait,
            )
        else:
            log.error(
                "syncmsg: outbox relay %s: round failed; next in %.1fs",
                self.name,
                wait,
                exc_info=exc,
            )

    # ------------------------------------------------------------------ a round
    def run_once(self) -> int:
        """One round on the calling thread; returns how many rows it published (0 when
        nothing is due, or another relay holds the single-mode lease).

        Raises :class:`~syncmsg.NatsConnectionError` or :class:`~syncmsg.TimeoutError`
        when NATS is unavailable, and :class:`django.db.DatabaseError` when the database
        is, after marking what was acknowledged.
        """
        if self._stop.is_set() and threading.current_thread() is self._thread:
            return 0
        try:
            return self._round()
        except Exception as exc:
            if _transient(exc):
                self._stats["unavailable"] += 1
            raise

    def _round(self) -> int:
        from django.db import transaction

        js = self._jetstream()
        if not js.client.is_connected:
            raise NatsConnectionError("not connected to NATS")
        self._stats["rounds"] += 1
        alias = self.options.database
        if self.mode == "single":
            if not self._hold_lease():
                return 0
            rows = self._claim(locking=False)
            outcome = self._publish(js, rows)
            with transaction.atomic(using=alias):
                self._mark(outcome)
        else:
            with transaction.atomic(using=alias):
                rows = self._claim(locking=True)
                outcome = self._publish(js, rows)
                self._mark(outcome)
        if outcome.unavailable is not None:
            raise outcome.unavailable
        return len(outcome.acked)

    def publish_pending(self, timeout: float | None = None) -> int:
        """Rounds until one publishes nothing (or ``timeout`` runs out); returns how many
        rows were published. Errors are raised as by :meth:`run_once`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        total = 0
        while deadline is None or time.monotonic() < deadline:
            published = self.run_once()
            total += published
            if published == 0:
                break
        return total

    def _jetstream(self) -> JetStream:
        client = self._client
        if client is None:
            from syncmsg.django._process import get_client

            client = get_client(timeout=self.options.publish_timeout)
        if self._js is None or self._js_client is not client:
            timeout = self.options.publish_timeout
            self._js = client.jetstream(
                **self._jetstream_options,
                timeout=timeout,
                # One round waits publish_timeout for its acks; retries end with it.
                publish_retry=RetryPolicy(
                    attempts=None, deadline=timeout, initial=0.1, maximum=1.0
                ),
                api_retry=RetryPolicy.never(),
                max_pending=max(4096, self.options.batch_size),
            )
            self._js_client = client
        return self._js

    def _pending(self) -> Any:
        from syncmsg.django.outbox._models import OutboxMessage

        return OutboxMessage.objects.using(self.options.database).filter(published__isnull=True)

    def _claim(self, *, locking: bool) -> list[_Row]:
        from django.utils import timezone

        due = self._pending().filter(available__lte=timezone.now()).order_by("id")
        if locking:
            due = due.select_for_update(skip_locked=True)
        # Tuples, not model instances: a round reads thousands of rows.
        rows = [
            _Row(*values) for values in due.values_list(*_Row.COLUMNS)[: self.options.batch_size]
        ]
        if not rows:
            return rows
        top = rows[-1].id
        if self._pending().filter(id__lte=top).count() == len(rows):
            return rows  # no earlier row is held elsewhere or waiting: every key is free
        mine = {row.id for row in rows}
        first_elsewhere: dict[str, int] = {}
        earlier = self._pending().filter(id__lte=top, key__isnull=False).order_by("id")
        for ident, key in earlier.values_list("id", "key"):
            if ident not in mine:
                first_elsewhere.setdefault(key, ident)
        return [
            row for row in rows if row.key is None or first_elsewhere.get(row.key, top) >= row.id
        ]

    def _publish(self, js: JetStream, rows: Sequence[_Row]) -> _Outcome:
        """Send ``rows``, one in flight per key, and wait (``publish_timeout``) for acks.

        Rows without a successor in this round are only collected at the end; the others
        get a done-callback, so that their successor goes out as soon as the ack is in.
        """
        outcome = _Outcome()
        if not rows:
            return outcome
        stale = self._past_window(js, rows)
        chains: dict[str, collections.deque[_Row]] = {}
        heads: list[_Row] = []
        for row in rows:
            if row.key is None:
                heads.append(row)
            elif row.key in chains:
                chains[row.key].append(row)
            else:
                chains[row.key] = collections.deque()
                heads.append(row)
        done: queue.SimpleQueue[tuple[_Row, concurrent.futures.Future[PubAck]]]
        done = queue.SimpleQueue()
        sent: list[tuple[_Row, concurrent.futures.Future[PubAck]]] = []
        chained = 0  # futures whose callback will put them into `done`

        def failed(row: _Row, exc: BaseException) -> None:
            if row.key is not None:
                chains[row.key].clear()  # the rest of the key waits for this row
            if not _transient(exc):
                outcome.failed.append((row, exc))
            elif outcome.unavailable is None:
                outcome.unavailable = exc

        lease_until = self._lease_until if self.mode == "single" else math.inf

        def send(row: _Row) -> None:
            nonlocal chained
            if time.monotonic() >= lease_until:  # a stalled round: another relay may be on
                outcome.unavailable = outcome.unavailable or TimeoutError("the lease ran out")
                return
            if row.id in stale:
                self._warn_past_window(row, *stale[row.id])
            tracing = _instrumentation.active is not None  # the event's correlation on its span
            scope = (
                _instrumentation.event_scope(_EventOfRow(row), handling=False)
                if tracing
                else contextlib.nullcontext()
            )
            try:
                with scope:
                    future = js.publish_async(
                        row.subject, bytes(row.payload), msg_id=row.msg_id, headers=row.headers
                    )
            except Exception as exc:
                failed(row, exc)
                return
            if row.key is not None and chains[row.key]:
                chained += 1
                future.add_done_callback(lambda f, row=row: done.put((row, f)))  # type: ignore[misc]
            else:
                sent.append((row, future))

        for row in heads:
            if outcome.unavailable is not None:
                break
            send(row)
        deadline = time.monotonic() + self.options.publish_timeout + 1.0
        while chained:
            try:
                row, future = done.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                break
            chained -= 1
            exc = future.exception()
            if exc is not None:
                failed(row, exc)
                continue
            outcome.acked.append((row, future.result()))
            successors = chains[row.key]  # type: ignore[index]
            if successors and outcome.unavailable is None:
                send(successors.popleft())
        missing = chained  # callbacks that never came
        for row, future in sent:
            try:
                # exception(), not result(): a publish that failed with syncmsg's
                # TimeoutError must not look like a wait that ran out.
                exc = future.exception(max(deadline - time.monotonic(), 0.0))
            except concurrent.futures.TimeoutError:
                missing += 1
                continue
            if exc is not None:
                failed(row, exc)
            else:
                outcome.acked.append((row, future.result()))
        if missing and outcome.unavailable is None:
            # Left pending: re-sent by a later round, and deduplicated if it got in.
            outcome.unavailable = TimeoutError(
                f"{missing} publishes had no ack after {self.options.publish_timeout:g}s"
            )
        return outcome

    def _mark(self, outcome: _Outcome) -> None:
        from django.db.models import F
        from django.utils import timezone

        now = timezone.now()
        pending = self._pending()
        ids = [row.id for row, _ in outcome.acked]
        for chunk in _chunks(ids, _MARK_CHUNK):
            pending.filter(id__in=chunk).update(published=now, attempts=F("attempts") + 1)
        duplicates = sum(1 for _, ack in outcome.acked if ack.duplicate)
        self._stats["published"] += len(ids)
        self._stats["duplicates"] += duplicates
        for row, exc in outcome.failed:
            attempts = row.attempts + 1
            delay = self._retry_delay(attempts)
            error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:2000]
            log.warning(
                "syncmsg: outbox row %d (%s, msg id %s) failed, attempt %d, retried in %.0fs: %s",
                row.id,
                row.subject,
                row.msg_id,
                attempts,
                delay,
                error,
            )
            pending.filter(id=row.id).update(
                attempts=attempts,
                last_error=error,
                available=now + dt.timedelta(seconds=delay),
            )
        self._stats["failed"] += len(outcome.failed)

    def _retry_delay(self, attempts: int) -> float:
        state = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
        state.attempt_number = attempts
        return float(self._backoff.waits()(state))

    # ------------------------------------------------------------------ dedup window
    def _past_window(self, js: JetStream, rows: Sequence[_Row]) -> dict[int, tuple[float, float]]:
        """The rows of this round older than their stream's duplicate window: ``{id: (age,
        window)}``. Usually one aggregate query says none is (a relay that keeps up)."""
        from django.db.models import Min
        from django.utils import timezone

        now = timezone.now()
        in_round = self._pending().filter(id__gte=rows[0].id, id__lte=rows[-1].id)
        oldest = in_round.aggregate(oldest=Min("created"))["oldest"]
        if oldest is None or (now - oldest).total_seconds() < _WINDOW_CHECK_AGE:
            return {}
        windows = {subject: self._window(js, subject) for subject in {r.subject for r in rows}}
        known = [window for window in windows.values() if window is not None]
        if not known or (now - oldest).total_seconds() <= min(known):
            return {}
        cutoff = now - dt.timedelta(seconds=min(known))
        subjects = {row.id: row.subject for row in rows}
        stale: dict[int, tuple[float, float]] = {}
        for ident, created in in_round.filter(created__lt=cutoff).values_list("id", "created"):
            window = windows.get(subjects.get(ident, ""))
            age = (now - created).total_seconds()
            if window is not None and age > window:
                stale[ident] = (age, window)
        return stale

    def _warn_past_window(self, row: _Row, age: float, window: float) -> None:
        self._stats["past_dedup_window"] += 1
        log.warning(
            "syncmsg: outbox row %d (%s, msg id %s) is %.0fs old, past its stream's "
            "duplicate window of %.0fs: sent, but JetStream can no longer drop a copy "
            "an earlier attempt may have stored",
            row.id,
            row.subject,
            row.msg_id,
            age,
            window,
        )

    def _window(self, js: JetStream, subject: str) -> float | None:
        """The duplicate window of the stream that captures ``subject`` (cached a minute;
        None if it cannot be found out now)."""
        cached = self._windows.get(subject)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        window: float | None = None
        try:
            info = js.stream_info(js.find_stream(subject, timeout=1.0), timeout=1.0)
        except SyncMsgError as exc:
            log.debug("syncmsg: outbox relay: no duplicate window for %r: %s", subject, exc)
        else:
            duplicate_window = info.config.duplicate_window
            window = duplicate_window.total_seconds() if duplicate_window else None
        if len(self._windows) > 4096:
            self._windows.clear()
        self._windows[subject] = (window, now + _WINDOW_CACHE_SECONDS)
        return window

    # ------------------------------------------------------------------ single mode
    def _hold_lease(self) -> bool:
        """Single mode: whether this relay holds the lease (taking or renewing it)."""
        from django.db import IntegrityError, transaction
        from django.utils import timezone

        from syncmsg.django.outbox._models import OutboxLease

        if self._holding and self._lease_until - time.monotonic() > self._round_budget:
            return True
        alias = self.options.database
        leases = OutboxLease.objects.using(alias)
        started = time.monotonic()
        now = timezone.now()
        expires = now + dt.timedelta(seconds=self.options.lease)
        current = leases.filter(name=LEASE_NAME).first()
        if current is None:
            try:
                with transaction.atomic(using=alias):
                    leases.create(name=LEASE_NAME, owner=self.name, expires=expires)
            except IntegrityError:
                return self._lost_lease()
        elif current.owner != self.name and current.expires > now:
            return self._lost_lease()
        else:
            taken = leases.filter(
                name=LEASE_NAME, owner=current.owner, expires=current.expires
            ).update(owner=self.name, expires=expires)
            if not taken:
                return self._lost_lease()
        if not self._holding:
            log.info("syncmsg: outbox relay %s holds the lease (single mode)", self.name)
        self._holding = True
        self._lease_until = started + self.options.lease
        return True

    @property
    def _round_budget(self) -> float:
        """How long a round may take: the wait for its acks, and a second for the rest."""
        return self.options.publish_timeout + 2.0

    def _lost_lease(self) -> bool:
        if self._holding:
            log.warning("syncmsg: outbox relay %s lost the lease to another relay", self.name)
        self._holding = False
        self._lease_until = 0.0
        return False

    def _release_lease(self) -> None:
        if not self._holding:
            return
        from django.utils import timezone

        from syncmsg.django.outbox._models import OutboxLease

        OutboxLease.objects.using(self.options.database).filter(
            name=LEASE_NAME, owner=self.name
        ).update(expires=timezone.now())
        self._holding = False
        self._lease_until = 0.0

    # ------------------------------------------------------------------ retention
    def _maybe_clean_up(self) -> None:
        now = time.monotonic()
        if now < self._next_cleanup:
            return
        self._next_cleanup = now + self.options.cleanup_interval
        if self.mode == "single" and not self._holding:
            return
        try:
            self.clean_up()
        except Exception as exc:  # the next interval tries again
            log.warning("syncmsg: outbox relay %s: deleting old rows failed: %s", self.name, exc)

    def clean_up(self) -> int:
        """Delete published rows older than ``retention``; returns how many."""
        from django.utils import timezone

        from syncmsg.django.outbox._models import OutboxMessage

        retention = self.options.retention
        if retention is None:
            return 0
        rows = OutboxMessage.objects.using(self.options.database)
        old = rows.filter(published__lt=timezone.now() - dt.timedelta(seconds=retention))
        deleted = 0
        while True:
            ids = list(old.order_by("id").values_list("id", flat=True)[:_DELETE_CHUNK])
            if not ids:
                break
            count, _ = rows.filter(id__in=ids).delete()
            deleted += count
            if len(ids) < _DELETE_CHUNK:
                break
        self._stats["deleted"] += deleted
        if deleted:
            log.info("syncmsg: outbox relay %s deleted %d published rows", self.name, deleted)
        return deleted


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

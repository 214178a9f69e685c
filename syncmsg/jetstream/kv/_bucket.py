"""A key-value bucket: reads, writes, compare-and-set, history, keys, watches.

Threading: every method runs on the calling thread (any thread but the event loop's) as one
or a few JetStream calls, each bounded by ``timeout`` (default: the JetStream context's).
Reads are direct gets when the bucket allows them (any replica answers); writes are
JetStream publishes, with their retries and exactly-once message ids. Listing keys and
history reads an ordered consumer on the calling thread. A watch with a callback runs it on
the watch's worker thread ``syncmsg-js-<sid>-0`` (see :mod:`syncmsg.jetstream._watcher`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from syncmsg._codec import Data
from syncmsg._deadline import check_timeout
from syncmsg._errors import (
    ApiErrorCode,
    BucketNotFoundError,
    JetStreamError,
    KeyDeletedError,
    KeyExistsError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NoRespondersError,
    TimeoutError,
    map_store_error,
)
from syncmsg._types import ErrorCallback
from syncmsg.jetstream._models import Duration, PubAck, StreamInfo, to_nanos
from syncmsg.jetstream._watcher import Watcher, start_watcher
from syncmsg.jetstream.kv._config import (
    KV_OPERATION,
    bucket_of,
    check_value_ttl,
    key_subject,
    key_subjects,
)
from syncmsg.jetstream.kv._entry import (
    Entry,
    KeyValueStatus,
    Operation,
    entry_from_msg,
    entry_from_stored,
)

if TYPE_CHECKING:
    from syncmsg.jetstream._context import JetStream
    from syncmsg.jetstream._message import JsMsg

__all__ = ["KeyValue", "KeyWatcher"]

_ROLLUP = "Nats-Rollup"
#: Delete markers younger than this are kept by ``purge_deletes`` (nats.go's default).
DEFAULT_PURGE_DELETES_OLDER_THAN = dt.timedelta(minutes=30)


class KeyWatcher(Watcher[Entry]):
    """A watch of a bucket's keys (see :class:`~syncmsg.jetstream.Watcher`): ``updates()``
    and iteration give :class:`Entry` values, and ``None`` once after the initial ones."""


class KeyValue:
    """One key-value bucket; get it with ``js.create_key_value(bucket=...)`` or
    ``js.key_value(bucket)``.

    Values are what ``publish`` takes: bytes, str, a dict or list (JSON), a pydantic model;
    read them back with ``entry.value``, ``entry.text()``, ``entry.json()`` or
    ``entry.parse(Model)``. Keys are ``[-/_=.a-zA-Z0-9]+`` (``config.db.url``,
    ``users/42``); anything else raises :class:`~syncmsg.InvalidKeyError` before it
    reaches the wire.
    """

    def __init__(self, js: JetStream, *, bucket: str, info: StreamInfo) -> None:
        self.bucket = bucket
        self.stream = info.config.name
        self._js = js
        self._info = info
        mirror = info.config.mirror
        origin = bucket
        if mirror is not None:  # a read-only copy: its keys are the origin's subjects
            origin = bucket_of(mirror.name)
        #: The subject prefix of the keys, in this bucket's stream.
        self.prefix = f"$KV.{origin}."
        self._put_prefix = self.prefix
        if mirror is not None and mirror.external is not None and mirror.external.api:
            # Writes go to the origin, through its domain's prefix (as nats.go does).
            self._put_prefix = f"{mirror.external.api}.$KV.{origin}."
        self._direct = bool(info.config.allow_direct or info.config.mirror_direct)

    def __repr__(self) -> str:
        return f"<syncmsg.KeyValue {self.bucket!r}>"

    # ================================================================ reads
    def get(self, key: str, *, revision: int | None = None, timeout: float | None = None) -> Entry:
        """The key's latest entry, or the one at ``revision``.

        Raises :class:`~syncmsg.KeyNotFoundError` (a :class:`KeyError` too) when the key
        has no value (or ``revision`` is not one of its entries), and
        :class:`~syncmsg.KeyDeletedError`, a KeyNotFoundError, when its latest entry (or
        that revision) is a delete or a purge; ``error.entry`` is the marker.
        """
        subject = key_subject(self.prefix, key)
        if revision is not None and (
            isinstance(revision, bool) or not isinstance(revision, int) or revision < 1
        ):
            raise ValueError("revision must be a positive integer")
        try:
            if revision is None:
                stored = self._js.get_last_msg(
                    self.stream, subject, direct=self._direct, timeout=timeout
                )
            else:
                stored = self._js.get_msg(
                    self.stream, revision, direct=self._direct, timeout=timeout
                )
        except JetStreamError as exc:
            raise map_store_error(exc, "kv", bucket=self.bucket, key=key) from None
        except NoRespondersError:
            if not self._direct:
                raise
            # Direct gets are answered by the bucket's stream (and mirrors): nobody answers
            # when it is gone.
            raise BucketNotFoundError(
                f"bucket {self.bucket!r} not found (no direct get answers)", stream=self.stream
            ) from None
        entry = entry_from_stored(self.bucket, key, stored)
        if stored.subject != subject or entry is None:
            raise KeyNotFoundError(
                f"key not found at revision {revision}" if revision else "",
                bucket=self.bucket,
                key=key,
            )
        if entry.operation is not Operation.PUT:
            raise KeyDeletedError(
                f"key {'deleted' if entry.operation is Operation.DEL else 'purged'} "
                f"at revision {entry.revision}",
                entry=entry,
                bucket=self.bucket,
                key=key,
            )
        return entry

    # ================================================================ writes
    def put(self, key: str, value: Data, *, timeout: float | None = None) -> int:
        """Store ``value`` under ``key``; returns its revision."""
        return self._publish(key, value, timeout=timeout).seq

    def create(
        self,
        key: str,
        value: Data,
        *,
        ttl: Duration | None = None,
        timeout: float | None = None,
    ) -> int:
        """Store ``value`` only if ``key`` has none (never had one, or its latest entry is
        a delete or purge); returns its revision.

        Raises :class:`~syncmsg.KeyExistsError` (a KeyWrongLastSequenceError) when the key
        has a value. ``ttl`` (seconds or a timedelta, at least 1 s) makes the server remove
        the key after that long, leaving a marker; the bucket needs ``limit_marker_ttl``.
        """
        check_value_ttl(ttl)
        try:
            return self._publish(key, value, last=0, ttl=ttl, timeout=timeout).seq
        except KeyWrongLastSequenceError:
            pass
        try:  # the key may hold a delete marker: then it is created over it
            current = self.get(key, timeout=timeout)
        except KeyDeletedError as deleted:
            try:
                return self._publish(
                    key, value, last=deleted.revision or 0, ttl=ttl, timeout=timeout
                ).seq
            except KeyWrongLastSequenceError as exc:
                raise KeyExistsError(bucket=self.bucket, key=key) from exc
        except KeyNotFoundError:  # it was purged away meanwhile: one more try
            return self._publish(key, value, last=0, ttl=ttl, timeout=timeout).seq
        raise KeyExistsError(
            f"key exists at revision {current.revision}", bucket=self.bucket, key=key
        )

    def update(self, key: str, value: Data, last: int, *, timeout: float | None = None) -> int:
        """Store ``value`` only if the key's latest revision is ``last`` (a compare-and-set);
        returns the new revision.

        Raises :class:`~syncmsg.KeyWrongLastSequenceError` when another write came first:
        read the key again and decide.
        """
        _revision(last, "last", zero=True)
        return self._publish(key, value, last=last, timeout=timeout).seq

    def delete(self, key: str, *, last: int | None = None, timeout: float | None = None) -> int:
        """Mark ``key`` deleted (its history is kept, as the bucket's ``history`` allows);
        returns the marker's revision.

        With ``last``, only if the key's latest revision is that
        (:class:`~syncmsg.KeyWrongLastSequenceError` otherwise).
        """
        if last is not None:
            _revision(last, "last")
        headers = {KV_OPERATION: "DEL"}
        return self._publish(key, None, headers=headers, last=last, timeout=timeout).seq

    def purge(self, key: str, *, ttl: Duration | None = None, timeout: float | None = None) -> int:
        """Remove every entry of ``key``, leaving one purge marker; returns its revision.

        ``ttl`` (at least 1 s) makes the marker itself go after that long; the bucket needs
        ``limit_marker_ttl``.
        """
        check_value_ttl(ttl)
        headers = {KV_OPERATION: "PURGE", _ROLLUP: "sub"}
        return self._publish(key, None, headers=headers, ttl=ttl, timeout=timeout).seq

    def purge_deletes(
        self,
        *,
        older_than: Duration = DEFAULT_PURGE_DELETES_OLDER_THAN,
        timeout: float | None = None,
    ) -> int:
        """Remove the keys whose latest entry is a delete or purge marker, with their
        history; returns how many there were.

        Markers written less than ``older_than`` ago (30 minutes by default; 0: none) are
        kept, without the history before them, so that watchers still see them.
        """
        keep_after = dt.datetime.now(dt.timezone.utc) - dt.timedelta(
            microseconds=to_nanos(older_than) / 1_000
        )
        markers = [
            entry
            for entry in self._initial(">", meta_only=True, timeout=timeout)
            if entry.operation is not Operation.PUT
        ]
        for entry in markers:
            recent = to_nanos(older_than) > 0 and (entry.created or keep_after) > keep_after
            self._js.purge_stream(
                self.stream,
                subject=self.prefix + entry.key,
                keep=1 if recent else None,
                timeout=timeout,
            )
        return len(markers)

    def _publish(
        self,
        key: str,
        value: Data,
        *,
        headers: dict[str, str] | None = None,
        last: int | None = None,
        ttl: Duration | None = None,
        timeout: float | None = None,
    ) -> PubAck:
        key_subject(self.prefix, key)  # the key checked (the put prefix may differ)
        subject = self._put_prefix + key
        try:
            return self._js.publish(
                subject,
                value,
                headers=headers,
                expected_last_subject_seq=last,
                ttl=ttl,
                timeout=timeout,
            )
        except JetStreamError as exc:
            if exc.err_code == ApiErrorCode.MESSAGE_TTL_DISABLED:
                raise JetStreamError(
                    f"bucket {self.bucket!r} has no per-key TTLs: create it with "
                    "limit_marker_ttl (nats-server 2.11 or newer)",
                    code=exc.code,
                    err_code=exc.err_code,
                    stream=self.stream,
                ) from None
            raise map_store_error(exc, "kv", bucket=self.bucket, key=key) from None
        except NoRespondersError:
            raise NoRespondersError(
                f"no stream takes the writes of bucket {self.bucket!r}: it does not exist, "
                "or JetStream is unavailable"
            ) from None

    # ================================================================ listing
    def keys(
        self, filters: str | Sequence[str] | None = None, *, timeout: float | None = None
    ) -> list[str]:
        """The keys that have a value (not those whose latest entry is a delete), sorted;
        ``filters`` are key patterns (``"config.*"``, ``["users.>", "groups.>"]``).

        ``timeout`` bounds each wait for the next key.
        """
        entries = self._initial(
            filters or ">", meta_only=True, ignore_deletes=True, timeout=timeout
        )
        return sorted({entry.key for entry in entries})

    def history(self, key: str, *, timeout: float | None = None) -> list[Entry]:
        """Every entry the bucket keeps for ``key``, oldest first (markers included).

        Raises :class:`~syncmsg.KeyNotFoundError` when it has none.
        """
        key_subject(self.prefix, key)
        entries = self._initial(key, include_history=True, timeout=timeout)
        if not entries:
            raise KeyNotFoundError(bucket=self.bucket, key=key)
        return entries

    def _initial(
        self, keys: str | Sequence[str], *, timeout: float | None, **options: Any
    ) -> list[Entry]:
        """The initial entries of a watch of ``keys``, read on this thread."""
        wait = check_timeout(timeout, self._js.timeout)
        entries: list[Entry] = []
        with self.watch(keys, timeout=wait, **options) as watcher:
            while True:
                try:
                    entry = watcher.updates(timeout=wait)
                except TimeoutError:
                    raise TimeoutError(
                        f"bucket {self.bucket!r}: no entry for {wait:g}s while reading"
                    ) from None
                if entry is None:
                    return entries
                entries.append(entry)

    # ================================================================ watching
    def watch(
        self,
        keys: str | Sequence[str] = ">",
        callback: Callable[[Entry], Any] | None = None,
        *,
        include_history: bool = False,
        ignore_deletes: bool = False,
        meta_only: bool = False,
        updates_only: bool = False,
        error_callback: ErrorCallback | None = None,
        timeout: float | None = None,
    ) -> KeyWatcher:
        """Watch ``keys`` (a key, a pattern such as ``"config.>"``, or a list of them).

        First come the latest entry of each key (every entry the bucket keeps with
        ``include_history``; none with ``updates_only``), then every change as it happens,
        each once, in revision order, across reconnects and server restarts.

        * With ``callback``, ``callback(entry)`` runs on the watch's worker thread, one
          entry at a time; an exception it raises goes to ``error_callback`` (and the log)
          and the watch goes on. ``watcher.wait_caught_up(timeout)`` waits until it has
          seen the initial entries.
        * Without one, read entries with ``watcher.updates(timeout=)`` or by iterating;
          ``None`` comes once, right after the initial entries (first, with
          ``updates_only``).

        ``ignore_deletes`` leaves out delete and purge markers; ``meta_only`` leaves out
        the values (``entry.value`` is empty). ``watcher.stop()`` (or a ``with`` block)
        ends it.
        """
        subjects = key_subjects(self.prefix, keys)
        if updates_only and include_history:
            raise ValueError("a watch takes updates_only or include_history, not both")
        policy = "new" if updates_only else "all" if include_history else "last_per_subject"
        bucket, prefix = self.bucket, self.prefix

        def convert(msg: JsMsg) -> Entry | None:
            entry = entry_from_msg(bucket, prefix, msg)
            if entry is None or (ignore_deletes and entry.operation is not Operation.PUT):
                return None
            return entry

        watcher = start_watcher(
            self._js,
            KeyWatcher,
            stream=self.stream,
            subjects=subjects,
            convert=convert,
            callback=callback,
            deliver_policy=policy,
            headers_only=meta_only,
            error_callback=error_callback,
            timeout=timeout,
            what=f"bucket {bucket!r} keys {', '.join(s[len(prefix) :] for s in subjects)}",
        )
        assert isinstance(watcher, KeyWatcher)
        return watcher

    def watchall(
        self, callback: Callable[[Entry], Any] | None = None, **options: Any
    ) -> KeyWatcher:
        """:meth:`watch` of every key of the bucket."""
        return self.watch(">", callback, **options)

    # ================================================================ the bucket
    def status(self, *, timeout: float | None = None) -> KeyValueStatus:
        """The bucket's configuration and state (entries, bytes, history, TTL ...)."""
        try:
            info = self._js.stream_info(self.stream, timeout=timeout)
        except JetStreamError as exc:
            raise map_store_error(exc, "kv", bucket=self.bucket) from None
        return KeyValueStatus(self.bucket, info)


def _revision(value: object, what: str, *, zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero else 1):
        raise ValueError(f"{what} must be a {'non-negative' if zero else 'positive'} revision")
    return value

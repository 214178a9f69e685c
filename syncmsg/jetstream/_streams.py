"""Streams and their messages: ensure, inspect, purge, read and delete.

Threading: every method runs on the calling thread (any thread but the event loop's; the
client's request path refuses that), as one or a few JetStream API requests.

:class:`StreamManager` is the stream half of :class:`~syncmsg.jetstream.JetStream`. What a
stream should be is a :class:`~syncmsg.jetstream.StreamSpec`; :meth:`~StreamManager.ensure_stream`
makes it so, comparing with :func:`drift` only the fields the spec sends, so defaults the
server fills in on its own (``max_consumers``, ``allow_direct``, its ``_nats.*`` metadata …)
never count as drift.

Messages are read back as :class:`~syncmsg.jetstream.RawStreamMsg`: through the stream's
leader (``STREAM.MSG.GET``, JSON with base64 payloads) or, with ``direct=True``, from any
replica (``DIRECT.GET``: the reply *is* the message, with ``Nats-*`` headers saying where it
is stored).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from syncmsg._errors import (
    ApiErrorCode,
    JetStreamError,
    MessageNotFoundError,
    NoRespondersError,
    StreamNotFoundError,
)
from syncmsg._subjects import check_publish_subject, check_subscribe_subject, check_token
from syncmsg.jetstream._api import ApiClient, is_retryable
from syncmsg.jetstream._models import (
    AccountInfo,
    RawStreamMsg,
    StreamInfo,
    StreamSource,
    StreamSpec,
    format_time,
    iter_items,
)

if TYPE_CHECKING:
    from syncmsg._client import Client
    from syncmsg._msg import Msg

__all__ = ["StreamManager", "drift"]

log = logging.getLogger("syncmsg.jetstream")

#: Fields the server decides for itself whatever is sent: never drift.
SERVER_DECIDES = frozenset({"mirror_direct"})  # follows the origin's allow_direct
_STATUS = "Status"


def drift(wanted: dict[str, Any], actual: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The fields of ``wanted`` (an API config) whose value differs on the server.

    Returns ``{field: (wanted, actual)}``; empty when the stream is as wanted. The server's
    configuration is read as a :class:`StreamSpec` and written back first, so fields it
    leaves out (Go's ``omitempty``) and its ways of writing times compare as the values they
    stand for. Subjects and sources are compared as sets; ``metadata`` only on the keys
    ``wanted`` has; fields ``wanted`` does not send are never compared.
    """
    try:
        normal = {**actual, **StreamSpec.from_api(actual).to_api()}
    except ValueError:  # a configuration this version cannot read: compare as sent
        normal = dict(actual)
    changed: dict[str, tuple[Any, Any]] = {}
    for key, want in wanted.items():
        if key == "name" or key in SERVER_DECIDES:
            continue
        have = normal.get(key)
        if key == "subjects":
            same = sorted(want or ()) == sorted(have or ())
        elif key == "sources":
            same = _as_set(want) == _as_set(have)
        elif key == "metadata":
            have_map = have or {}
            same = all(have_map.get(k) == v for k, v in (want or {}).items())
        elif key == "mirror":
            same = _canonical(want) == _canonical(have)
        else:
            same = want == have
        if not same:
            changed[key] = (want, actual.get(key))
    return changed


def _canonical(source: Any) -> str:
    if isinstance(source, dict):
        with contextlib.suppress(ValueError):  # compared as sent
            source = StreamSource.from_api(source).to_api()
    return json.dumps(source, sort_keys=True)


def _as_set(sources: Any) -> set[str]:
    return {_canonical(source) for source in sources or ()}


class StreamManager:
    """The stream and message calls of a JetStream context (a base of
    :class:`~syncmsg.jetstream.JetStream`)."""

    client: Client
    _api: ApiClient

    # ================================================================ streams
    def ensure_stream(self, spec: StreamSpec, *, timeout: float | None = None) -> StreamInfo:
        """Make the stream exist as ``spec`` says: create it, or update it if it drifted.

        Idempotent, and safe when many processes run it at once: creating an identical
        stream succeeds, and an update to the same configuration is a no-op. Only the
        fields the spec sets are compared (see :func:`~syncmsg.jetstream.drift`).
        ``StreamInfo.action`` tells ``"created"``, ``"updated"`` or ``"unchanged"``
        (processes racing to create may each see ``"created"``). Raises
        :class:`~syncmsg.JetStreamError` when the server refuses the change (e.g. a
        different storage type).
        """
        if not isinstance(spec, StreamSpec):
            raise TypeError("ensure_stream() needs a syncmsg.StreamSpec")
        wanted = spec.to_api()
        try:
            data = self._api.request(f"STREAM.CREATE.{spec.name}", wanted, timeout=timeout)
            return StreamInfo.from_api(data).with_action("created")
        except JetStreamError as exc:
            if exc.err_code != ApiErrorCode.STREAM_NAME_IN_USE:
                raise
        current = self.stream_info(spec.name, timeout=timeout)
        server_config = current.raw.get("config") or {}
        changes = drift(wanted, server_config)
        if not changes:
            return current.with_action("unchanged")
        log.info(
            "syncmsg: stream %s drifted, updating: %s",
            spec.name,
            ", ".join(f"{k}: {have!r} -> {want!r}" for k, (want, have) in changes.items()),
        )
        config = dict(server_config)
        config.update(wanted)
        if "metadata" in wanted:
            config["metadata"] = {**(server_config.get("metadata") or {}), **wanted["metadata"]}
        data = self._api.request(f"STREAM.UPDATE.{spec.name}", config, timeout=timeout)
        return StreamInfo.from_api(data).with_action("updated")

    def add_stream(self, spec: StreamSpec, *, timeout: float | None = None) -> StreamInfo:
        """Create a stream; raises :class:`~syncmsg.JetStreamError` if one with a different
        configuration exists."""
        data = self._api.request(f"STREAM.CREATE.{spec.name}", spec.to_api(), timeout=timeout)
        return StreamInfo.from_api(data).with_action("created")

    def update_stream(self, spec: StreamSpec, *, timeout: float | None = None) -> StreamInfo:
        """Replace a stream's configuration with ``spec`` (fields it does not set are reset
        to their defaults; see :meth:`ensure_stream` to change only what drifted)."""
        data = self._api.request(f"STREAM.UPDATE.{spec.name}", spec.to_api(), timeout=timeout)
        return StreamInfo.from_api(data).with_action("updated")

    def stream_info(
        self,
        name: str,
        *,
        subjects_filter: str | None = None,
        timeout: float | None = None,
    ) -> StreamInfo:
        """The stream's configuration and state; raises :class:`~syncmsg.StreamNotFoundError`.

        With ``subjects_filter`` (``">"`` for all), ``state.subjects`` counts the messages of
        each subject matching it.
        """
        check_token(name, "stream name")
        body: dict[str, Any] | None = None
        if subjects_filter is not None:
            check_subscribe_subject(subjects_filter)
            body = {"subjects_filter": subjects_filter}
        data = self._api.request(f"STREAM.INFO.{name}", body, timeout=timeout)
        if subjects_filter is not None:
            data = self._all_subjects(name, body or {}, data, timeout)
        return StreamInfo.from_api(data)

    def _all_subjects(
        self, name: str, body: dict[str, Any], data: dict[str, Any], timeout: float | None
    ) -> dict[str, Any]:
        """Follow the pages of a stream's subject counts (the server sends 100k a page)."""
        state = data.get("state") or {}
        subjects = dict(state.get("subjects") or {})
        total = int(data.get("total", 0) or 0)
        while total > len(subjects):
            page = self._api.request(
                f"STREAM.INFO.{name}", {**body, "offset": len(subjects)}, timeout=timeout
            )
            more = (page.get("state") or {}).get("subjects") or {}
            if not more:
                break
            subjects.update(more)
        return {**data, "state": {**state, "subjects": subjects}}

    def streams(
        self, subject: str | None = None, *, timeout: float | None = None
    ) -> list[StreamInfo]:
        """Every stream's information (those capturing ``subject``, if given)."""
        infos: list[StreamInfo] = []
        for page in self._pages("STREAM.LIST", "streams", subject, timeout):
            infos.extend(StreamInfo.from_api(item) for item in page)
        return infos

    def delete_stream(self, name: str, *, timeout: float | None = None) -> None:
        """Delete the stream and its messages; raises :class:`~syncmsg.StreamNotFoundError`."""
        check_token(name, "stream name")
        self._api.request(f"STREAM.DELETE.{name}", None, timeout=timeout, idempotent=False)

    def purge_stream(
        self,
        name: str,
        *,
        subject: str | None = None,
        seq: int | None = None,
        keep: int | None = None,
        timeout: float | None = None,
    ) -> int:
        """Remove the stream's messages and return how many went.

        ``subject`` limits the purge to the messages on that subject (wildcards allowed);
        ``seq`` removes those below that sequence; ``keep`` keeps that many of the newest
        (per the filter). ``seq`` and ``keep`` cannot be combined.
        """
        check_token(name, "stream name")
        if seq is not None and keep is not None:
            raise ValueError("purge_stream() takes seq or keep, not both")
        body: dict[str, Any] = {}
        if subject:
            check_subscribe_subject(subject)
            body["filter"] = subject
        if seq is not None:
            body["seq"] = _positive(seq, "seq")
        if keep is not None:
            body["keep"] = _positive(keep, "keep", zero=True)
        data = self._api.request(
            f"STREAM.PURGE.{name}", body or None, timeout=timeout, idempotent=False
        )
        return int(data.get("purged", 0))

    def stream_names(
        self, subject: str | None = None, *, timeout: float | None = None
    ) -> list[str]:
        """Names of all streams, or of those capturing ``subject``."""
        names: list[str] = []
        for page in self._pages("STREAM.NAMES", "streams", subject, timeout):
            names.extend(page)
        return names

    def _pages(
        self, suffix: str, key: str, subject: str | None, timeout: float | None
    ) -> list[list[Any]]:
        """Every page of a listing API (``{"offset": n}`` → ``{key: [...], "total": t}``)."""
        pages: list[list[Any]] = []
        offset = 0
        while True:
            body: dict[str, Any] = {"offset": offset}
            if subject:
                body["subject"] = subject
            data = self._api.request(suffix, body, timeout=timeout)
            page = data.get(key) or []
            pages.append(page)
            offset += len(page)
            if not page or offset >= int(data.get("total", 0)):
                return pages

    def find_stream(self, subject: str, *, timeout: float | None = None) -> str:
        """The stream that captures ``subject``; raises :class:`~syncmsg.StreamNotFoundError`."""
        names = self.stream_names(subject, timeout=timeout)
        if not names:
            raise StreamNotFoundError(f"no stream captures {subject!r}")
        if len(names) > 1:
            raise JetStreamError(f"several streams capture {subject!r}: {names}; pass stream=")
        return names[0]

    def account_info(self, *, timeout: float | None = None) -> AccountInfo:
        """The account's JetStream usage and limits, and the server's API level
        (``.api.level``: 1 for nats-server 2.11, 2 for 2.12 ...)."""
        return AccountInfo.from_api(self._api.request("INFO", None, timeout=timeout))

    # ================================================================ messages
    def get_msg(
        self,
        stream: str,
        seq: int | None = None,
        *,
        subject: str | None = None,
        next: bool = False,
        start_time: dt.datetime | None = None,
        direct: bool = False,
        timeout: float | None = None,
    ) -> RawStreamMsg:
        """The message stored at ``seq`` in ``stream``.

        With ``next=True`` and ``subject``: the first message on ``subject`` (wildcards
        allowed) at or after ``seq`` (default 1). With ``start_time`` (instead of ``seq``;
        a naive datetime is UTC): the first message stored at or after that time (on
        ``subject``, if given). ``direct=True`` reads it with a direct
        get, from any replica (the stream needs ``allow_direct``; a mirror with
        ``mirror_direct`` answers too), which is faster and spreads the load, but may lag
        the leader by a moment. Raises :class:`~syncmsg.MessageNotFoundError` when there is
        no such message.
        """
        check_token(stream, "stream name")
        if start_time is not None:
            if seq is not None:
                raise ValueError("get_msg() takes seq or start_time, not both")
            if not isinstance(start_time, dt.datetime):
                raise TypeError("start_time must be a datetime")
            body: dict[str, Any] = {"start_time": format_time(start_time)}
            if subject is not None:
                check_subscribe_subject(subject)
                body["next_by_subj"] = subject
        elif next:
            if subject is None:
                raise ValueError("get_msg(next=True) needs the subject to look for")
            check_subscribe_subject(subject)
            body = {"seq": 1 if seq is None else _positive(seq, "seq")}
            body["next_by_subj"] = subject
        elif subject is not None:
            raise ValueError("get_msg() takes a seq; use get_last_msg() for a subject's last")
        elif seq is None:
            raise ValueError("get_msg() needs a seq")
        else:
            body = {"seq": _positive(seq, "seq")}
        if direct:
            return self._direct_get(stream, body, None, timeout)
        return self._stored(stream, body, timeout)

    def get_last_msg(
        self,
        stream: str,
        subject: str,
        *,
        direct: bool = False,
        timeout: float | None = None,
    ) -> RawStreamMsg:
        """The last message stored on ``subject`` in ``stream`` (the latest state of a key).

        ``direct=True`` reads it with a direct get (see :meth:`get_msg`). Raises
        :class:`~syncmsg.MessageNotFoundError` when the subject has no message.
        """
        check_token(stream, "stream name")
        if direct:
            check_publish_subject(subject)  # it goes into the request subject
            return self._direct_get(stream, None, subject, timeout)
        check_subscribe_subject(subject)
        return self._stored(stream, {"last_by_subj": subject}, timeout)

    def delete_msg(
        self, stream: str, seq: int, *, erase: bool = False, timeout: float | None = None
    ) -> None:
        """Delete the message at ``seq`` from ``stream``.

        ``erase=True`` also overwrites it with random data on disk (slower). Raises
        :class:`~syncmsg.MessageNotFoundError` when there is no message at ``seq``.
        """
        check_token(stream, "stream name")
        body = {"seq": _positive(seq, "seq"), "no_erase": not erase}
        self._api.request(f"STREAM.MSG.DELETE.{stream}", body, timeout=timeout, idempotent=False)

    def _stored(self, stream: str, body: dict[str, Any], timeout: float | None) -> RawStreamMsg:
        data = self._api.request(f"STREAM.MSG.GET.{stream}", body, timeout=timeout)
        return RawStreamMsg.from_api(stream, data.get("message") or {})

    def _direct_get(
        self,
        stream: str,
        body: dict[str, Any] | None,
        last_of: str | None,
        timeout: float | None,
    ) -> RawStreamMsg:
        suffix = f"DIRECT.GET.{stream}" + (f".{last_of}" if last_of else "")
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        try:
            return self._api.call(
                suffix,
                payload,
                _direct_reply(stream),
                timeout=timeout,
                should_retry=_retry_direct,
            )
        except NoRespondersError:
            raise NoRespondersError(
                f"no direct get answers for stream {stream!r}: it does not exist, or does "
                "not allow direct gets (StreamSpec(allow_direct=True))"
            ) from None


def _retry_direct(exc: BaseException) -> bool:
    # No responders for a direct get means a missing stream or allow_direct off, not a
    # leader election (any replica answers).
    return is_retryable(exc) and not isinstance(exc, NoRespondersError)


def _direct_reply(stream: str) -> Callable[[Msg], RawStreamMsg]:
    def read(msg: Msg) -> RawStreamMsg:
        headers = dict(iter_items(msg.headers))
        status = headers.get(_STATUS)
        if status is not None and not msg.data:
            description = headers.get("Description", "") or f"status {status}"
            if status == "404":
                raise MessageNotFoundError(description.lower(), code=404, stream=stream)
            code = int(status) if status.isdigit() else None
            raise JetStreamError(description, code=code, stream=stream)
        return RawStreamMsg.from_direct(msg.data, headers)

    return read


def _positive(value: int, what: str, *, zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero else 1):
        raise ValueError(f"{what} must be a {'non-negative' if zero else 'positive'} integer")
    return value

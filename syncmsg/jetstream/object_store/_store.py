"""An object store: objects of any size in chunks, their infos, links, watches, sealing.

Threading: every method runs on the calling thread (any thread but the event loop's), as
JetStream calls bounded by ``timeout`` (default: the JetStream context's); ``put`` and
``get`` stream the bytes on that thread too (see :mod:`~syncmsg.jetstream.object_store._chunks`
for the acks and keeper threads they use). A watch with a callback runs it on the watch's
worker thread ``syncmsg-js-<sid>-0`` (see :mod:`syncmsg.jetstream._watcher`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import os
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Union

from syncmsg._errors import (
    BadObjectMetaError,
    BucketNotFoundError,
    JetStreamError,
    NoRespondersError,
    ObjectAlreadyExistsError,
    ObjectNotFoundError,
    ObjectStoreError,
    map_store_error,
)
from syncmsg._types import ErrorCallback
from syncmsg.jetstream._models import RawStreamMsg, StreamInfo
from syncmsg.jetstream._watcher import Watcher, start_watcher
from syncmsg.jetstream.object_store._chunks import Progress, download, upload
from syncmsg.jetstream.object_store._models import (
    DEFAULT_CHUNK_SIZE,
    ObjectInfo,
    ObjectLink,
    ObjectMeta,
    ObjectMetaOptions,
    ObjectResult,
    ObjectStoreStatus,
    chunk_subject,
    header_lists,
    meta_subject,
    new_nuid,
)

if TYPE_CHECKING:
    from syncmsg.jetstream._context import JetStream
    from syncmsg.jetstream._message import JsMsg

__all__ = ["ObjectStore", "ObjectWatcher", "Source"]

log = logging.getLogger("syncmsg.jetstream")

_ROLLUP = {"Nats-Rollup": "sub"}
#: What ``put`` takes: the bytes themselves (a str is encoded as UTF-8), a path, or a
#: binary file object.
Source = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", IO[bytes]]
#: Where ``get(into=)`` writes: a binary file object, or a path (a str is a path here).
Target = Union[str, "os.PathLike[str]", IO[bytes]]


class ObjectWatcher(Watcher[ObjectInfo]):
    """A watch of a store's objects (see :class:`~syncmsg.jetstream.Watcher`): ``updates()``
    and iteration give :class:`ObjectInfo` values, and ``None`` once after the initial ones."""


class ObjectStore:
    """One object store; get it with ``js.create_object_store(bucket=...)`` or
    ``js.object_store(bucket)``.

    Objects are named by any non-empty string (``reports/2024-05.pdf``). ``put`` takes
    bytes, a str, a :class:`~pathlib.Path` or a binary file object and sends it in chunks;
    ``get`` returns the bytes, or streams them into a file. Either way the SHA-256 digest is
    checked, and :class:`~syncmsg.ObjectDigestError` is raised rather than wrong bytes
    returned.
    """

    def __init__(self, js: JetStream, *, bucket: str, info: StreamInfo) -> None:
        self.bucket = bucket
        self.stream = info.config.name
        self._js = js
        self._direct = bool(info.config.allow_direct)

    def __repr__(self) -> str:
        return f"<syncmsg.ObjectStore {self.bucket!r}>"

    # ================================================================ infos
    def info(
        self, name: str, *, show_deleted: bool = False, timeout: float | None = None
    ) -> ObjectInfo:
        """The object's info (size, chunks, digest, mtime, headers ...).

        Raises :class:`~syncmsg.ObjectNotFoundError` when there is no such object, or it
        was deleted (unless ``show_deleted``).
        """
        stored = self._meta(_name(name), timeout)
        info = self._read_info(stored, name)
        if info.deleted and not show_deleted:
            raise ObjectNotFoundError("object deleted", bucket=self.bucket, key=name)
        return info

    def _meta(self, name: str, timeout: float | None) -> RawStreamMsg:
        try:
            return self._js.get_last_msg(
                self.stream, meta_subject(self.bucket, name), direct=self._direct, timeout=timeout
            )
        except JetStreamError as exc:
            raise map_store_error(exc, "object", bucket=self.bucket, key=name) from None
        except NoRespondersError:
            if not self._direct:
                raise
            raise BucketNotFoundError(  # the store's stream answers its direct gets
                f"object store {self.bucket!r} not found (no direct get answers)",
                stream=self.stream,
            ) from None

    def _read_info(self, stored: RawStreamMsg, name: str) -> ObjectInfo:
        try:
            return ObjectInfo.from_json(stored.data, stored.time)
        except ValueError as exc:
            raise BadObjectMetaError(str(exc), bucket=self.bucket, key=name) from None

    def _existing(self, name: str, timeout: float | None) -> ObjectInfo | None:
        try:
            return self.info(name, show_deleted=True, timeout=timeout)
        except ObjectNotFoundError:
            return None

    def list(self, *, show_deleted: bool = False, timeout: float | None = None) -> list[ObjectInfo]:
        """Every object's info, in the order their metas were written (deleted ones too
        with ``show_deleted``); ``timeout`` bounds each wait for the next one."""
        infos: list[ObjectInfo] = []
        with self.watch(ignore_deletes=not show_deleted, timeout=timeout) as watcher:
            wait = timeout if timeout is not None else self._js.timeout
            while (info := watcher.updates(timeout=wait)) is not None:
                infos.append(info)
        return infos

    # ================================================================ bytes
    def put(
        self,
        name: str,
        data: Source,
        *,
        description: str | None = None,
        headers: Mapping[str, str | Sequence[str]] | None = None,
        metadata: Mapping[str, str] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        progress: Progress | None = None,
        timeout: float | None = None,
    ) -> ObjectInfo:
        """Store ``data`` as object ``name`` (replacing any object of that name) and return
        its info.

        ``data`` is bytes, a str (stored as UTF-8), a path (:class:`~pathlib.Path` or any
        ``os.PathLike``; a plain str is the content, not a file name) or a file object
        opened in binary mode, read ``chunk_size`` bytes at a time (128 KiB by default):
        memory stays bounded whatever the size. ``progress(n)`` is called with each chunk's
        size as it goes. The previous version's chunks are removed once the new one is
        complete; if the write fails, the new chunks are removed and the old version stays.
        """
        name = _name(name)
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError("chunk_size must be a positive number of bytes")
        existing = self._existing(name, timeout)
        nuid = new_nuid()
        with _opened(data) as source:
            sent = upload(
                self._js,
                bucket=self.bucket,
                stream=self.stream,
                nuid=nuid,
                source=source,
                chunk_size=chunk_size,
                progress=progress,
                timeout=timeout,
            )
        info = ObjectInfo(
            name=name,
            description=description,
            headers=header_lists(headers),
            metadata=dict(metadata) if metadata else None,
            options=ObjectMetaOptions(max_chunk_size=chunk_size),
            bucket=self.bucket,
            nuid=nuid,
            size=sent.size,
            chunks=sent.chunks,
            digest=sent.digest,
        )
        try:
            info = self._publish_meta(info, timeout)
        except BaseException:
            self._purge(chunk_subject(self.bucket, nuid))
            raise
        if existing is not None and not existing.deleted and existing.nuid != nuid:
            self._purge(chunk_subject(self.bucket, existing.nuid))
        return info

    def get(
        self,
        name: str,
        *,
        into: Target | None = None,
        show_deleted: bool = False,
        progress: Progress | None = None,
        timeout: float | None = None,
    ) -> ObjectResult:
        """Read object ``name``: its info and its bytes (``result.data``), checked against
        its size and SHA-256 digest. A link is followed to the object it names.

        With ``into`` the bytes are written there instead, as they come, and
        ``result.data`` is empty: a path (written to a temporary file beside it, renamed
        into place once the digest matched) or a binary file object (if the read fails,
        with :class:`~syncmsg.ObjectDigestError` or a timeout, a seekable file is cut back
        to where it was; discard what another kind of file received). ``progress(n)`` is
        called with each chunk's size. ``timeout`` bounds each wait for the next chunk.
        """
        info = self.info(name, show_deleted=show_deleted, timeout=timeout)
        if info.is_link:
            return self._follow(info, into=into, progress=progress, timeout=timeout)
        if into is None:
            buffer = bytearray()
            download(
                self._js,
                stream=self.stream,
                info=info,
                sink=buffer.extend,
                progress=progress,
                timeout=timeout,
            )
            return ObjectResult(info, bytes(buffer))
        with _target(into) as file:
            download(
                self._js,
                stream=self.stream,
                info=info,
                sink=file.write,
                progress=progress,
                timeout=timeout,
            )
        return ObjectResult(info)

    def _follow(
        self,
        link: ObjectInfo,
        *,
        into: Target | None,
        progress: Progress | None,
        timeout: float | None,
    ) -> ObjectResult:
        target = link.link
        assert target is not None
        if not target.name:
            raise ObjectStoreError(
                f"a link to the whole store {target.bucket!r}: get its objects from it",
                bucket=self.bucket,
                key=link.name,
            )
        store = self if target.bucket == self.bucket else self._js.object_store(target.bucket)
        return store.get(target.name, into=into, progress=progress, timeout=timeout)

    # ================================================================ changes
    def delete(self, name: str, *, timeout: float | None = None) -> ObjectInfo:
        """Delete object ``name`` (its chunks are removed; a meta marked deleted stays, so
        that watchers see it go) and return that meta. Deleting a deleted object does
        nothing; raises :class:`~syncmsg.ObjectNotFoundError` when there never was one."""
        info = self.info(name, show_deleted=True, timeout=timeout)
        if info.deleted:
            return info
        gone = info.model_copy(update={"deleted": True, "size": 0, "chunks": 0, "digest": None})
        gone = self._publish_meta(gone, timeout)
        self._purge(chunk_subject(self.bucket, info.nuid), timeout=timeout, quiet=False)
        return gone

    def update_meta(
        self,
        name: str,
        meta: ObjectMeta | None = None,
        *,
        new_name: str | None = None,
        description: str | None = None,
        headers: Mapping[str, str | Sequence[str]] | None = None,
        metadata: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> ObjectInfo:
        """Change an object's name, description, headers or metadata (not its bytes) and
        return its new info.

        ``meta`` replaces all four, as in the other NATS clients; the keywords change only
        what they give (``description=""`` clears it). Renaming onto an object that exists
        raises :class:`~syncmsg.ObjectAlreadyExistsError`; a deleted object raises
        :class:`~syncmsg.ObjectNotFoundError`.
        """
        info = self.info(name, timeout=timeout)
        changes: dict[str, Any] = {}
        if meta is not None:
            changes.update(
                name=meta.name,
                description=meta.description,
                headers=meta.headers,
                metadata=meta.metadata,
            )
        if new_name is not None:
            changes["name"] = _name(new_name)
        if description is not None:
            changes["description"] = description or None
        if headers is not None:
            changes["headers"] = header_lists(headers)
        if metadata is not None:
            changes["metadata"] = dict(metadata) or None
        renamed = str(changes.get("name", name))
        if renamed != name:
            other = self._existing(renamed, timeout)
            if other is not None and not other.deleted:
                raise ObjectAlreadyExistsError(
                    f"cannot rename {name!r}: an object of that name exists",
                    bucket=self.bucket,
                    key=renamed,
                )
        updated = self._publish_meta(info.model_copy(update=changes), timeout)
        if renamed != name:
            self._purge(meta_subject(self.bucket, name), timeout=timeout, quiet=False)
        return updated

    def add_link(
        self, name: str, target: ObjectInfo, *, timeout: float | None = None
    ) -> ObjectInfo:
        """Add ``name``, a link to the object ``target`` (an info from this store or
        another); ``get(name)`` then reads the target. A link cannot name a deleted object
        or another link, nor replace an object (it may replace a link)."""
        if not isinstance(target, ObjectInfo):
            raise TypeError("add_link() links to an ObjectInfo (obs.info(name))")
        if target.deleted:
            raise ObjectStoreError(
                "cannot link to a deleted object", bucket=target.bucket, key=target.name
            )
        if target.is_link:
            raise ObjectStoreError("cannot link to a link", bucket=target.bucket, key=target.name)
        return self._put_link(name, ObjectLink(bucket=target.bucket, name=target.name), timeout)

    def add_bucket_link(
        self, name: str, store: ObjectStore | str, *, timeout: float | None = None
    ) -> ObjectInfo:
        """Add ``name``, a link to the whole object store ``store``."""
        bucket = store.bucket if isinstance(store, ObjectStore) else store
        return self._put_link(name, ObjectLink(bucket=bucket), timeout)

    def _put_link(self, name: str, link: ObjectLink, timeout: float | None) -> ObjectInfo:
        name = _name(name)
        existing = self._existing(name, timeout)
        if existing is not None and not existing.deleted and not existing.is_link:
            raise ObjectAlreadyExistsError(
                "an object of that name exists", bucket=self.bucket, key=name
            )
        info = ObjectInfo(
            name=name,
            options=ObjectMetaOptions(link=link),
            bucket=self.bucket,
            nuid=new_nuid(),
        )
        return self._publish_meta(info, timeout)

    def _publish_meta(self, info: ObjectInfo, timeout: float | None) -> ObjectInfo:
        subject = meta_subject(self.bucket, info.name)
        try:
            self._js.publish(subject, info.to_json(), headers=_ROLLUP, timeout=timeout)
        except JetStreamError as exc:
            raise map_store_error(exc, "object", bucket=self.bucket, key=info.name) from None
        # The server's time of the meta is not in the ack: the client's is the next best.
        return info.model_copy(update={"mtime": dt.datetime.now(dt.timezone.utc)})

    def _purge(self, subject: str, *, timeout: float | None = None, quiet: bool = True) -> None:
        try:
            self._js.purge_stream(self.stream, subject=subject, timeout=timeout)
        except JetStreamError:
            if not quiet:
                raise
            log.warning("syncmsg: object store %s: could not purge %s", self.bucket, subject)

    # ================================================================ watching
    def watch(
        self,
        callback: Callable[[ObjectInfo], Any] | None = None,
        *,
        include_history: bool = False,
        ignore_deletes: bool = False,
        updates_only: bool = False,
        error_callback: ErrorCallback | None = None,
        timeout: float | None = None,
    ) -> ObjectWatcher:
        """Watch the store's objects: first each object's latest info (every meta the
        store keeps with ``include_history``; none with ``updates_only``), then every
        change (a put, a delete, a new meta, a link) as it happens, in order.

        With ``callback``, ``callback(info)`` runs on the watch's worker thread; without,
        read the watcher with ``updates(timeout=)`` or by iterating (``None`` once after
        the initial infos). ``ignore_deletes`` leaves out deleted objects.
        """
        if updates_only and include_history:
            raise ValueError("a watch takes updates_only or include_history, not both")
        policy = "new" if updates_only else "all" if include_history else "last_per_subject"
        bucket = self.bucket

        def convert(msg: JsMsg) -> ObjectInfo | None:
            try:
                info = ObjectInfo.from_json(msg.data, msg.metadata.timestamp)
            except ValueError as exc:
                log.warning(
                    "syncmsg: object store %s: unreadable meta on %s: %s", bucket, msg.subject, exc
                )
                return None
            return None if ignore_deletes and info.deleted else info

        watcher = start_watcher(
            self._js,
            ObjectWatcher,
            stream=self.stream,
            subjects=(f"$O.{bucket}.M.>",),
            convert=convert,
            callback=callback,
            deliver_policy=policy,
            error_callback=error_callback,
            timeout=timeout,
            what=f"object store {bucket!r}",
        )
        assert isinstance(watcher, ObjectWatcher)
        return watcher

    # ================================================================ the store
    def status(self, *, timeout: float | None = None) -> ObjectStoreStatus:
        """The store's configuration and state (size, TTL, sealed ...)."""
        try:
            info = self._js.stream_info(self.stream, timeout=timeout)
        except JetStreamError as exc:
            raise map_store_error(exc, "object", bucket=self.bucket) from None
        return ObjectStoreStatus(self.bucket, info)

    def seal(self, *, timeout: float | None = None) -> ObjectStoreStatus:
        """Seal the store: from now on nothing can be put, changed or deleted (the server
        refuses with a :class:`~syncmsg.JetStreamError`, ``ApiErrorCode.STREAM_SEALED``)."""
        spec = self.status(timeout=timeout).stream_info.config
        sealed = spec.model_copy(update={"extra": {**spec.extra, "sealed": True}})
        return ObjectStoreStatus(self.bucket, self._js.update_stream(sealed, timeout=timeout))


def _name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError("an object's name must be a non-empty string")
    return name


@contextlib.contextmanager
def _opened(data: Source) -> Iterator[IO[bytes]]:
    """``put``'s data as a binary file to read from (a path is opened, and closed after)."""
    if isinstance(data, bytes | bytearray | memoryview):
        yield io.BytesIO(data)
    elif isinstance(data, str):
        yield io.BytesIO(data.encode())
    elif isinstance(data, os.PathLike):
        with open(data, "rb") as file:
            yield file
    elif callable(getattr(data, "read", None)):
        yield data
    else:
        raise TypeError(
            f"cannot store a {type(data).__name__}: pass bytes, str, a path or a binary file"
        )


@contextlib.contextmanager
def _target(into: Target) -> Iterator[IO[bytes]]:
    """Where ``get`` writes: a path gets the bytes only once they are checked (a temporary
    file renamed into place); a seekable file is cut back if the read fails."""
    if isinstance(into, str | os.PathLike):
        path = Path(into)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        # Not mkstemp: its 0600 would outlive the rename; os.open's 0666 gets the umask, so
        # the file ends up as any file the user writes (an existing file keeps its mode).
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            with os.fdopen(fd, "wb") as file:
                yield file
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        return
    if not callable(getattr(into, "write", None)):
        raise TypeError("into must be a path or a file object opened for binary writing")
    start: int | None = None
    with contextlib.suppress(OSError, ValueError, AttributeError):
        if into.seekable():
            start = into.tell()
    try:
        yield into
    except BaseException:  # a digest error, a timeout: no partial or wrong bytes kept
        if start is not None:
            into.seek(start)
            into.truncate()
        raise

"""An object's bytes, streamed in chunks both ways, with the SHA-256 digest written and
checked.

Writing: the caller's thread reads ``chunk_size`` bytes at a time from the source, hashes
them and sends each chunk with ``js.publish_async``, keeping at most :data:`WINDOW` chunks
in flight (their acks resolve on the context's acks thread ``syncmsg-js-acks-N``), so a file
of any size goes out in bounded memory: about ``WINDOW * chunk_size``. If anything fails the
chunks sent so far are purged.

Reading: an ordered consumer on the object's chunk subject, pulled :data:`PREFETCH` chunks
ahead (its keeper thread ``syncmsg-js-<sid>-keeper`` re-makes it after a reconnect); the
caller's thread takes each chunk with ``next_msg``, hashes it and hands it on (to memory or
to a file). The object's size, chunk count and digest are checked at the end: a missing,
extra or corrupt chunk raises :class:`~syncmsg.ObjectDigestError`.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import hashlib
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from syncmsg._deadline import check_timeout
from syncmsg._errors import (
    BadObjectMetaError,
    ObjectDigestError,
    SyncMsgError,
    TimeoutError,
)
from syncmsg.jetstream._models import PubAck
from syncmsg.jetstream.object_store._models import (
    ObjectInfo,
    chunk_subject,
    digest_bytes,
    digest_value,
)

if TYPE_CHECKING:
    from syncmsg.jetstream._context import JetStream

__all__ = ["PREFETCH", "WINDOW", "Progress", "download", "upload"]

#: Chunks in flight while writing (sent, not yet acknowledged).
WINDOW = 16
#: Chunks pulled ahead while reading.
PREFETCH = 16
#: Bytes a chunk's message needs besides its data (its id header), so that the chunk size
#: can be checked against the server's max_payload before anything is sent.
_HEADER_ROOM = 256
#: A chunk's ack is waited for at most this long: the publish retries (a minute by default)
#: end before it; it only guards against a wedged client.
_ACK_WAIT = 120.0
#: Deleting what a failed write left behind is worth this much time.
_CLEANUP_TIMEOUT = 5.0

#: Told how many more bytes are done, on the caller's thread (a progress bar).
Progress = Callable[[int], Any]


class Upload:
    """The outcome of :func:`upload`: what the chunks add up to."""

    __slots__ = ("chunks", "digest", "size")

    def __init__(self, size: int, chunks: int, digest: str) -> None:
        self.size = size
        self.chunks = chunks
        self.digest = digest


def upload(
    js: JetStream,
    *,
    bucket: str,
    stream: str,
    nuid: str,
    source: IO[bytes],
    chunk_size: int,
    progress: Progress | None,
    timeout: float | None,
) -> Upload:
    """Send ``source``'s bytes as the chunks of object ``nuid`` (the caller's thread)."""
    if chunk_size + _HEADER_ROOM > js.client.max_payload:
        raise ValueError(
            f"chunk_size {chunk_size} does not fit the server's max_payload "
            f"({js.client.max_payload} bytes, less {_HEADER_ROOM} for headers)"
        )
    subject = chunk_subject(bucket, nuid)
    sha = hashlib.sha256()
    in_flight: collections.deque[concurrent.futures.Future[PubAck]] = collections.deque()
    size = chunks = 0
    try:
        while True:
            data = source.read(chunk_size)
            if not data:
                break
            if not isinstance(data, bytes | bytearray):
                raise TypeError("the object's file must be opened in binary mode ('rb')")
            sha.update(data)
            in_flight.append(js.publish_async(subject, bytes(data), timeout=timeout))
            size += len(data)
            chunks += 1
            while len(in_flight) >= WINDOW:
                _settle(in_flight.popleft())
            if progress is not None:
                progress(len(data))
        while in_flight:
            _settle(in_flight.popleft())
    except BaseException:
        _abandon(js, stream, subject, in_flight)
        raise
    return Upload(size, chunks, digest_value(sha.digest()))


def _settle(future: concurrent.futures.Future[PubAck]) -> None:
    try:
        future.result(timeout=_ACK_WAIT)
    except concurrent.futures.TimeoutError:
        raise TimeoutError(f"no ack for a chunk within {_ACK_WAIT:g}s") from None


def _abandon(
    js: JetStream,
    stream: str,
    subject: str,
    in_flight: collections.deque[concurrent.futures.Future[PubAck]],
) -> None:
    """A write failed: wait (briefly) for the chunks still in flight, then purge them all."""
    if in_flight:
        concurrent.futures.wait(list(in_flight), timeout=_CLEANUP_TIMEOUT)
    # If this fails too, the stream keeps orphan chunks: no meta names them, no reader
    # ever sees them.
    with contextlib.suppress(SyncMsgError):
        js.purge_stream(stream, subject=subject, timeout=_CLEANUP_TIMEOUT)


def download(
    js: JetStream,
    *,
    stream: str,
    info: ObjectInfo,
    sink: Callable[[bytes], Any],
    progress: Progress | None,
    timeout: float | None,
) -> None:
    """Read object ``info``'s chunks in order and hand each to ``sink``; raise
    :class:`~syncmsg.ObjectDigestError` when they do not add up (the caller's thread)."""
    expected = digest_bytes(info.digest or "")
    if expected is None:
        raise BadObjectMetaError(
            f"unreadable digest {info.digest!r}", bucket=info.bucket, key=info.name
        )
    if info.size == 0:
        _check(info, expected, hashlib.sha256(), 0, 0)
        return
    wait = check_timeout(timeout, js.timeout)
    sha = hashlib.sha256()
    size = chunks = 0
    reader = js.subscribe_sync(
        chunk_subject(info.bucket, info.nuid),
        ordered_consumer=True,
        stream=stream,
        prefetch=PREFETCH,
        timeout=wait,
    )
    try:
        while not reader.caught_up:  # every chunk stored when the read began
            try:
                data = reader.next_msg(timeout=wait).data
            except TimeoutError:
                raise TimeoutError(
                    f"object {info.name!r}: no chunk for {wait:g}s ({size} of {info.size} "
                    "bytes read)"
                ) from None
            size += len(data)
            chunks += 1
            if size > info.size:
                break  # more bytes than the object has: none of them goes out
            sha.update(data)
            sink(data)
            if progress is not None:
                progress(len(data))
    finally:
        reader.unsubscribe()
    _check(info, expected, sha, size, chunks)


def _check(info: ObjectInfo, expected: bytes, sha: Any, size: int, chunks: int) -> None:
    # The size and the digest decide; the chunk count is only reported (it says nothing
    # the two do not).
    if size != info.size:
        raise ObjectDigestError(
            f"{chunks} chunks of {size} bytes where {info.chunks} of {info.size} were "
            "written: a chunk is missing or corrupt",
            bucket=info.bucket,
            key=info.name,
        )
    if sha.digest() != expected:
        raise ObjectDigestError(
            f"the SHA-256 of the bytes read is not the object's digest {info.digest}",
            bucket=info.bucket,
            key=info.name,
        )

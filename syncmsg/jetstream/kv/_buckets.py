"""Making, finding and deleting key-value buckets: what ``js.create_key_value``,
``js.key_value``, ``js.delete_key_value`` and ``js.key_value_buckets`` do.

Threading: every function runs on the calling thread (any thread but the event loop's), as
one or a few JetStream API requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from syncmsg._errors import ApiErrorCode, JetStreamError, map_store_error
from syncmsg.jetstream._models import StreamInfo
from syncmsg.jetstream.kv._bucket import KeyValue
from syncmsg.jetstream.kv._config import (
    KeyValueConfig,
    check_bucket,
    key_prefix,
    stream_name,
)
from syncmsg.jetstream.kv._entry import KeyValueStatus

if TYPE_CHECKING:
    from syncmsg.jetstream._context import JetStream

__all__ = ["bind", "create", "delete", "statuses"]


def create(js: JetStream, config: KeyValueConfig, *, timeout: float | None = None) -> KeyValue:
    """Create the bucket (creating one identical to an existing bucket succeeds)."""
    if config.limit_marker_ttl is not None:
        level = js.account_info(timeout=timeout).api.level
        if level < 1:
            raise JetStreamError(
                "limit_marker_ttl needs nats-server 2.11 or newer (JetStream API level 1; "
                f"this server has level {level})"
            )
    spec = config.to_stream_spec()
    try:
        info = js.add_stream(spec, timeout=timeout)
    except JetStreamError as exc:
        if exc.err_code == ApiErrorCode.STREAM_NAME_IN_USE:
            raise JetStreamError(
                f"bucket {config.bucket!r} exists with another configuration",
                code=exc.code,
                err_code=exc.err_code,
                stream=spec.name,
            ) from None
        raise
    return KeyValue(js, bucket=config.bucket, info=info)


def bind(js: JetStream, bucket: str, *, timeout: float | None = None) -> KeyValue:
    """The existing bucket; :class:`~syncmsg.BucketNotFoundError` when there is none."""
    info = _info(js, check_bucket(bucket), timeout)
    if not info.config.max_msgs_per_subject or info.config.max_msgs_per_subject < 1:
        raise JetStreamError(
            f"stream {info.config.name!r} is not a key-value bucket (no max_msgs_per_subject)",
            stream=info.config.name,
        )
    return KeyValue(js, bucket=bucket, info=info)


def delete(js: JetStream, bucket: str, *, timeout: float | None = None) -> None:
    """Delete the bucket and every key in it."""
    try:
        js.delete_stream(stream_name(check_bucket(bucket)), timeout=timeout)
    except JetStreamError as exc:
        raise map_store_error(exc, "kv", bucket=bucket) from None


def statuses(js: JetStream, *, timeout: float | None = None) -> list[KeyValueStatus]:
    """Every bucket's status, by name (streams ``KV_*`` capturing ``$KV.*.>``)."""
    found = js.streams(f"{key_prefix('*')}>", timeout=timeout)
    buckets = [
        KeyValueStatus(info.config.name[3:], info)
        for info in found
        if info.config.name.startswith("KV_")
    ]
    return sorted(buckets, key=lambda status: status.bucket)


def _info(js: JetStream, bucket: str, timeout: float | None) -> StreamInfo:
    try:
        return js.stream_info(stream_name(bucket), timeout=timeout)
    except JetStreamError as exc:
        raise map_store_error(exc, "kv", bucket=bucket) from None

"""Key-value buckets as a kind of store (``KV_<bucket>`` streams), and what making and
finding one asks beyond what :mod:`syncmsg.jetstream._store_buckets` does for every store:
``js.create_key_value`` checks that the server has what the configuration needs,
``js.key_value`` that the stream is a bucket.

Threading: every function runs on the calling thread (any thread but the event loop's), as
one or a few JetStream API requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from syncmsg._errors import JetStreamError
from syncmsg.jetstream._store_buckets import StoreKind
from syncmsg.jetstream.kv._bucket import KeyValue
from syncmsg.jetstream.kv._config import STREAM_PREFIX, KeyValueConfig, check_bucket, key_prefix
from syncmsg.jetstream.kv._entry import KeyValueStatus

if TYPE_CHECKING:
    from syncmsg.jetstream._context import JetStream

__all__ = ["KEY_VALUE", "bind", "create"]

#: Key-value buckets: the streams ``KV_*`` capturing ``$KV.*.>``.
KEY_VALUE: StoreKind[KeyValue, KeyValueStatus] = StoreKind(
    prefix=STREAM_PREFIX,
    noun="bucket",
    errors="kv",
    listed_by=f"{key_prefix('*')}>",
    check_name=check_bucket,
    status=KeyValueStatus,
    store=KeyValue,
)


def create(js: JetStream, config: KeyValueConfig, *, timeout: float | None = None) -> KeyValue:
    """Create the bucket (creating one identical to an existing bucket succeeds)."""
    if config.limit_marker_ttl is not None:
        level = js.account_info(timeout=timeout).api.level
        if level < 1:
            raise JetStreamError(
                "limit_marker_ttl needs nats-server 2.11 or newer (JetStream API level 1; "
                f"this server has level {level})"
            )
    return KEY_VALUE.create(js, config, timeout)


def bind(js: JetStream, bucket: str, *, timeout: float | None = None) -> KeyValue:
    """The existing bucket; :class:`~syncmsg.BucketNotFoundError` when there is none."""
    info = KEY_VALUE.stream_info(js, bucket, timeout)
    if not info.config.max_msgs_per_subject or info.config.max_msgs_per_subject < 1:
        raise JetStreamError(
            f"stream {info.config.name!r} is not a key-value bucket (no max_msgs_per_subject)",
            stream=info.config.name,
        )
    return KeyValue(js, bucket=bucket, info=info)

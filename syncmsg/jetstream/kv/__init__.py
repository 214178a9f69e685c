"""Key-value buckets on JetStream, for threaded code (the standard layout: ADR-8).

::

    import syncmsg

    client = syncmsg.connect("nats://localhost:4222")
    js = client.jetstream()
    kv = js.create_key_value(bucket="config", history=5)
    revision = kv.put("db.url", "postgres://db/app")
    entry = kv.get("db.url")                        # Entry: key, value, revision, ...
    kv.update("db.url", "postgres://db2/app", last=entry.revision)   # compare-and-set
    watcher = kv.watch("db.>", lambda entry: print(entry.key, entry.operation))

Names follow nats-py (``create_key_value``, ``key_value``, ``get``, ``put``, ``create``,
``update``, ``delete``, ``purge``, ``keys``, ``history``, ``watch``, ``watchall``,
``Entry``, ``KeyWatcher``); buckets are the same streams and subjects as in every NATS
client and the ``nats`` CLI, so they read what syncmsg writes and the reverse.

Threading: every call blocks its caller only, with a timeout; watch callbacks run on a
worker thread, in revision order, never on the event loop. The modules, each naming its
threads: ``_config`` (the configuration and the layout), ``_entry`` (entries and the
status), ``_bucket`` (:class:`KeyValue`), ``_buckets`` (buckets as a kind of store, and
what making and finding one asks beyond the shared lifecycle); the watcher is
:mod:`syncmsg.jetstream._watcher`. See docs/kv.md.
"""

import sys

from syncmsg import _exports
from syncmsg.jetstream.kv._bucket import DEFAULT_PURGE_DELETES_OLDER_THAN, KeyValue, KeyWatcher
from syncmsg.jetstream.kv._config import (
    KV_MARKER_REASON,
    KV_OPERATION,
    MAX_HISTORY,
    KeyValueConfig,
    check_bucket,
    check_key,
    check_key_filter,
)
from syncmsg.jetstream.kv._entry import Entry, KeyValueStatus, Operation

__all__ = [
    "DEFAULT_PURGE_DELETES_OLDER_THAN",
    "KV_MARKER_REASON",
    "KV_OPERATION",
    "MAX_HISTORY",
    "Entry",
    "KeyValue",
    "KeyValueConfig",
    "KeyValueStatus",
    "KeyWatcher",
    "Operation",
    "check_bucket",
    "check_key",
    "check_key_filter",
]

_exports.present_as_public(sys.modules[__name__])

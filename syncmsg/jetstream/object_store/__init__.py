"""Object stores on JetStream, for threaded code: files of any size, in chunks, with their
SHA-256 digest checked (the standard layout: ADR-20).

::

    from pathlib import Path
    import syncmsg

    client = syncmsg.connect("nats://localhost:4222")
    js = client.jetstream()
    obs = js.create_object_store(bucket="reports")
    info = obs.put("2024/05.pdf", Path("05.pdf"))      # streamed, 128 KiB chunks
    obs.get("2024/05.pdf", into=Path("copy.pdf"))       # streamed, digest checked
    data = obs.get("2024/05.pdf").data                  # or in memory
    obs.watch(lambda info: print(info.name, info.size, info.deleted))

Names follow nats-py (``create_object_store``, ``object_store``, ``put``, ``get``, ``info``
(nats-py's ``get_info``), ``list``, ``delete``, ``update_meta``, ``add_link``,
``add_bucket_link``, ``watch``, ``seal``, ``ObjectInfo``, ``ObjectResult``); stores are the
same streams, subjects and meta JSON as in every NATS client and the ``nats`` CLI.

Threading: every call blocks its caller only, with timeouts; watch callbacks run on a
worker thread, never on the event loop. The modules, each naming its threads: ``_models``
(the configuration, the meta JSON, the values handed back), ``_chunks`` (streaming the
bytes both ways), ``_store`` (:class:`ObjectStore`), ``_buckets`` (object stores as a
kind of store, for the shared bucket lifecycle). See docs/object-store.md.
"""

import sys

from syncmsg import _exports
from syncmsg.jetstream.object_store._chunks import PREFETCH, WINDOW
from syncmsg.jetstream.object_store._models import (
    DEFAULT_CHUNK_SIZE,
    DIGEST_PREFIX,
    ObjectInfo,
    ObjectLink,
    ObjectMeta,
    ObjectMetaOptions,
    ObjectResult,
    ObjectStoreConfig,
    ObjectStoreStatus,
)
from syncmsg.jetstream.object_store._store import ObjectStore, ObjectWatcher

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DIGEST_PREFIX",
    "PREFETCH",
    "WINDOW",
    "ObjectInfo",
    "ObjectLink",
    "ObjectMeta",
    "ObjectMetaOptions",
    "ObjectResult",
    "ObjectStore",
    "ObjectStoreConfig",
    "ObjectStoreStatus",
    "ObjectWatcher",
]

_exports.present_as_public(sys.modules[__name__])

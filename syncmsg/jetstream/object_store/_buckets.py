"""Object stores as a kind of store (``OBJ_<bucket>`` streams): what
:mod:`syncmsg.jetstream._store_buckets` needs to make, find, delete and list them for
``js.create_object_store``, ``js.object_store``, ``js.delete_object_store`` and
``js.object_store_buckets``.

Threading: a constant; the calls that use it run on the calling thread (any thread but the
event loop's).
"""

from __future__ import annotations

from syncmsg.jetstream._store_buckets import StoreKind
from syncmsg.jetstream.object_store._models import (
    STREAM_PREFIX,
    ObjectStoreStatus,
    check_store_name,
)
from syncmsg.jetstream.object_store._store import ObjectStore

__all__ = ["OBJECT_STORE"]

#: Object stores: the streams ``OBJ_*`` capturing ``$O.*.C.>``.
OBJECT_STORE: StoreKind[ObjectStore, ObjectStoreStatus] = StoreKind(
    prefix=STREAM_PREFIX,
    noun="object store",
    errors="object",
    listed_by="$O.*.C.>",
    check_name=check_store_name,
    status=ObjectStoreStatus,
    store=ObjectStore,
)

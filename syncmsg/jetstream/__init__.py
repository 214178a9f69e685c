"""JetStream for threaded code: streams, exactly-once publishing, consumers.

::

    import syncmsg
    from syncmsg.jetstream import StreamSpec

    client = syncmsg.connect("nats://localhost:4222")
    js = client.jetstream()
    js.ensure_stream(StreamSpec(name="ORDERS", subjects=["orders.>"]))
    ack = js.publish("orders.new", {"id": 1})          # PubAck(stream, seq, duplicate)
    js.subscribe("orders.>", handle, durable="billing", dead_letter="dlq.orders")
    js.subscribe("orders.>", replay, ordered_consumer=True)   # in order, each once

See docs/jetstream.md. Threading: every public call blocks only its caller, with a timeout;
handlers run on worker threads; nothing runs user code on the event-loop thread.

The modules, each naming its threads: ``_models`` (the API's values), ``_api`` (requests),
``_streams`` (streams and stored messages), ``_publish`` and ``_publish_async``
(publishing), ``_pull`` (pull requests, ``fetch``), ``_flow`` (flow control), ``_leaser``
(leases), ``_options`` (subscribe's arguments as consumer configurations), ``_consumer``
(continuously pulling subscriptions and the ack policy),
``_deadletter`` (dead letters), ``_ordered`` (ordered consumers), ``_message`` (``JsMsg``),
``_features`` (the server's API level and what it has), ``_consumer_admin`` (pause, resume,
unpin, reset), ``_batch`` (atomic batches), ``_counters`` (counter values),
``_watcher`` (watchers of key-value and object stores), ``_stores`` (their calls on the
facade), ``_store_buckets`` (making, finding, deleting and listing their buckets),
``_store_config`` and ``_store_status`` (what their configurations and statuses share),
``_context`` (the ``JetStream`` facade).
Key-value buckets are :mod:`syncmsg.jetstream.kv`, object stores
:mod:`syncmsg.jetstream.object_store`.
"""

from syncmsg._errors import ApiErrorCode
from syncmsg.jetstream._batch import BatchMessage
from syncmsg.jetstream._consumer import (
    JetStreamSubscription,
    JetStreamSyncSubscription,
)
from syncmsg.jetstream._context import DEFAULT_PUBLISH_RETRY, JetStream
from syncmsg.jetstream._deadletter import (
    CONSUMER as DEAD_LETTER_CONSUMER,
)
from syncmsg.jetstream._deadletter import (
    DELIVERY_COUNT as DEAD_LETTER_DELIVERY_COUNT,
)
from syncmsg.jetstream._deadletter import (
    LAST_ERROR as DEAD_LETTER_LAST_ERROR,
)
from syncmsg.jetstream._deadletter import (
    ORIGINAL_SUBJECT as DEAD_LETTER_ORIGINAL_SUBJECT,
)
from syncmsg.jetstream._deadletter import (
    STREAM as DEAD_LETTER_STREAM,
)
from syncmsg.jetstream._deadletter import (
    STREAM_SEQUENCE as DEAD_LETTER_STREAM_SEQUENCE,
)
from syncmsg.jetstream._message import JsMsg, dead_letter
from syncmsg.jetstream._models import (
    AccountInfo,
    AckPolicy,
    ClusterInfo,
    Compression,
    ConsumerConfig,
    ConsumerInfo,
    ConsumerPause,
    ConsumerReset,
    DeliverPolicy,
    DiscardPolicy,
    ExternalStream,
    PeerInfo,
    Placement,
    PriorityGroupState,
    PriorityPolicy,
    PubAck,
    RawStreamMsg,
    ReplayPolicy,
    Republish,
    RetentionPolicy,
    SequenceInfo,
    StorageType,
    StreamInfo,
    StreamSource,
    StreamSourceInfo,
    StreamSpec,
    StreamState,
    SubjectTransform,
)
from syncmsg.jetstream._ordered import OrderedSubscription, OrderedSyncSubscription
from syncmsg.jetstream._publish import MSG_ID as MSG_ID_HEADER
from syncmsg.jetstream._publish import TTL as TTL_HEADER
from syncmsg.jetstream._publish import new_msg_id
from syncmsg.jetstream._pull import PullSubscription
from syncmsg.jetstream._streams import drift
from syncmsg.jetstream._watcher import Watcher

__all__ = [
    "DEAD_LETTER_CONSUMER",
    "DEAD_LETTER_DELIVERY_COUNT",
    "DEAD_LETTER_LAST_ERROR",
    "DEAD_LETTER_ORIGINAL_SUBJECT",
    "DEAD_LETTER_STREAM",
    "DEAD_LETTER_STREAM_SEQUENCE",
    "DEFAULT_PUBLISH_RETRY",
    "MSG_ID_HEADER",
    "TTL_HEADER",
    "AccountInfo",
    "AckPolicy",
    "ApiErrorCode",
    "BatchMessage",
    "ClusterInfo",
    "Compression",
    "ConsumerConfig",
    "ConsumerInfo",
    "ConsumerPause",
    "ConsumerReset",
    "DeliverPolicy",
    "DiscardPolicy",
    "ExternalStream",
    "JetStream",
    "JetStreamSubscription",
    "JetStreamSyncSubscription",
    "JsMsg",
    "OrderedSubscription",
    "OrderedSyncSubscription",
    "PeerInfo",
    "Placement",
    "PriorityGroupState",
    "PriorityPolicy",
    "PubAck",
    "PullSubscription",
    "RawStreamMsg",
    "ReplayPolicy",
    "Republish",
    "RetentionPolicy",
    "SequenceInfo",
    "StorageType",
    "StreamInfo",
    "StreamSource",
    "StreamSourceInfo",
    "StreamSpec",
    "StreamState",
    "SubjectTransform",
    "Watcher",
    "dead_letter",
    "drift",
    "new_msg_id",
]

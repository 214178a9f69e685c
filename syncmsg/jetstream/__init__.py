"""JetStream for threaded code: streams, exactly-once publishing, durable consumers.

::

    import syncmsg
    from syncmsg.jetstream import StreamSpec

    client = syncmsg.connect("nats://localhost:4222")
    js = client.jetstream()
    js.ensure_stream(StreamSpec(name="ORDERS", subjects=["orders.>"]))
    ack = js.publish("orders.new", {"id": 1})          # PubAck(stream, seq, duplicate)
    js.subscribe("orders.>", handle, durable="billing", dead_letter="dlq.orders")

See docs/jetstream.md. Threading: every public call blocks only its caller, with a timeout;
handlers run on worker threads; nothing runs user code on the event-loop thread.
"""

from syncmsg.jetstream._consumer import (
    ConsumerInfo,
    DeliverPolicy,
    JetStreamSubscription,
    PullSubscription,
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
from syncmsg.jetstream._publish import MSG_ID as MSG_ID_HEADER
from syncmsg.jetstream._publish import PubAck, new_msg_id
from syncmsg.jetstream._streams import (
    Compression,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamInfo,
    StreamSpec,
    StreamState,
    drift,
)

__all__ = [
    "DEAD_LETTER_CONSUMER",
    "DEAD_LETTER_DELIVERY_COUNT",
    "DEAD_LETTER_LAST_ERROR",
    "DEAD_LETTER_ORIGINAL_SUBJECT",
    "DEAD_LETTER_STREAM",
    "DEAD_LETTER_STREAM_SEQUENCE",
    "DEFAULT_PUBLISH_RETRY",
    "MSG_ID_HEADER",
    "Compression",
    "ConsumerInfo",
    "DeliverPolicy",
    "DiscardPolicy",
    "JetStream",
    "JetStreamSubscription",
    "JsMsg",
    "PubAck",
    "PullSubscription",
    "RetentionPolicy",
    "StorageType",
    "StreamInfo",
    "StreamSpec",
    "StreamState",
    "dead_letter",
    "drift",
    "new_msg_id",
]

"""syncmsg: a synchronous, thread-safe client for NATS and JetStream.

::

    import syncmsg

    with syncmsg.connect("nats://localhost:4222") as client:
        client.subscribe("greet.*", lambda msg: print(msg.subject, msg.text()))
        client.publish("greet.joe", "hello")
        reply = client.request("time.now", timeout=2.0)

A background thread owns an asyncio loop running nats-py; every method here blocks the
calling thread only, with a timeout, and may be called from any thread.
"""

import sys

from syncmsg import _exports
from syncmsg._client import Client, ClientState, connect
from syncmsg._config import Config
from syncmsg._errors import (
    ApiErrorCode,
    AuthorizationError,
    BadObjectMetaError,
    BucketNotFoundError,
    BufferFullError,
    ConfigurationError,
    ConnectionClosedError,
    ConsumerNotFoundError,
    DeadLetterError,
    InvalidBucketNameError,
    InvalidHeaderError,
    InvalidKeyError,
    InvalidSubjectError,
    JetStreamError,
    KeyDeletedError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValueError,
    KeyWrongLastSequenceError,
    LoopThreadError,
    MessageNotFoundError,
    NatsConnectionError,
    NoRespondersError,
    NoServersError,
    NotSupportedError,
    ObjectAlreadyExistsError,
    ObjectDigestError,
    ObjectNotFoundError,
    ObjectStoreError,
    PayloadError,
    PayloadTooLargeError,
    RemoteError,
    SlowConsumerError,
    StreamNotFoundError,
    SyncMsgError,
    TimeoutError,
    TLSError,
    WrongLastSequenceError,
)
from syncmsg._msg import Msg, MsgMetadata
from syncmsg._retry import RetryPolicy
from syncmsg._subjects import check_token
from syncmsg._subscription import Subscription, SyncSubscription
from syncmsg.jetstream import JetStream, PubAck, StreamSpec

__version__ = "0.1.0"  # the only place: pyproject.toml reads it ([tool.hatch.version])

__all__ = [
    "ApiErrorCode",
    "AuthorizationError",
    "BadObjectMetaError",
    "BucketNotFoundError",
    "BufferFullError",
    "Client",
    "ClientState",
    "Config",
    "ConfigurationError",
    "ConnectionClosedError",
    "ConsumerNotFoundError",
    "DeadLetterError",
    "InvalidBucketNameError",
    "InvalidHeaderError",
    "InvalidKeyError",
    "InvalidSubjectError",
    "JetStream",
    "JetStreamError",
    "KeyDeletedError",
    "KeyExistsError",
    "KeyNotFoundError",
    "KeyValueError",
    "KeyWrongLastSequenceError",
    "LoopThreadError",
    "MessageNotFoundError",
    "Msg",
    "MsgMetadata",
    "NatsConnectionError",
    "NoRespondersError",
    "NoServersError",
    "NotSupportedError",
    "ObjectAlreadyExistsError",
    "ObjectDigestError",
    "ObjectNotFoundError",
    "ObjectStoreError",
    "PayloadError",
    "PayloadTooLargeError",
    "PubAck",
    "RemoteError",
    "RetryPolicy",
    "SlowConsumerError",
    "StreamNotFoundError",
    "StreamSpec",
    "Subscription",
    "SyncMsgError",
    "SyncSubscription",
    "TLSError",
    "TimeoutError",
    "WrongLastSequenceError",
    "__version__",
    "check_token",
    "connect",
]

# Tracebacks and reprs say syncmsg.RemoteError, not syncmsg._errors.RemoteError (as httpx).
_exports.present_as_public(sys.modules[__name__])
_exports.present_as_public(sys.modules["syncmsg.jetstream"])  # imported above, for JetStream

"""The syncmsg exception tree, and the one place that maps nats-py errors onto it.

Threading: pure functions and classes; :func:`map_error` and :func:`explain_connect_failure`
run on whichever thread observed the nats-py exception (usually the loop thread, re-raised
on the caller's).

::

    SyncMsgError
    ├── ConfigurationError(ValueError)        bad settings, missing key, bad URL, bad seed
    ├── InvalidSubjectError(ValueError)       empty token, space, CR/LF, misplaced wildcard,
    │   │                                     longer than the server's control line
    │   ├── InvalidKeyError                   a key-value key (or key filter) that is not
    │   │                                     ``[-/_=.a-zA-Z0-9]+``, or starts or ends with ``.``
    │   └── InvalidBucketNameError            a bucket name that is not ``[a-zA-Z0-9_-]+``
    ├── InvalidHeaderError(ValueError)        header key or value not allowed on the wire
    ├── PayloadError(ValueError)              data cannot be encoded or decoded (NaN, ...)
    │   └── PayloadTooLargeError              larger than the server's max_payload
    ├── TimeoutError(builtins.TimeoutError)   a blocking call ran out of time
    ├── NoRespondersError                     nobody listens on a request subject
    ├── RemoteError                           a serve() handler raised; carries its message
    ├── LoopThreadError(RuntimeError)         blocking call made from the event-loop thread
    ├── NatsServerError(RuntimeError)         an embedded/test nats-server did not start
    │                                         (defined in syncmsg.testing)
    ├── SlowConsumerError                     a subscription fell behind; messages were dropped
    ├── NatsConnectionError(ConnectionError)
    │   ├── NoServersError                    no server could be reached (refused, DNS, ...)
    │   ├── ConnectionClosedError             used after close(), or closed while waiting
    │   ├── BufferFullError                   reconnect buffer is full while disconnected
    │   ├── AuthorizationError(PermissionError)   credentials or a permission refused
    │   └── TLSError                          certificate not trusted or not for this host,
    │                                         or the server wants a client certificate
    └── JetStreamError                        the JetStream API said no (code, err_code)
        ├── StreamNotFoundError
        │   └── BucketNotFoundError           no such key-value bucket or object store
        ├── ConsumerNotFoundError
        ├── MessageNotFoundError              no message at that sequence / for that subject
        ├── WrongLastSequenceError            a publish expectation (expected_*) failed
        │   └── KeyWrongLastSequenceError     a key's last revision was not the one given:
        │       │                             a lost compare-and-set (also a KeyValueError)
        │       └── KeyExistsError            kv.create(): the key has a value already
        ├── DeadLetterError                   a dead-letter publish failed
        ├── NotSupportedError                 the server's JetStream API level is too low
        │                                     for this feature (consumer reset: 2.14)
        ├── KeyValueError                     a key-value bucket said no
        │   └── KeyNotFoundError(KeyError)    no such key, or not at that revision
        │       └── KeyDeletedError           the key's latest entry is a delete or a purge
        └── ObjectStoreError                  an object store said no
            ├── ObjectNotFoundError           no such object (or it was deleted)
            ├── ObjectAlreadyExistsError      a link or a rename onto an existing object
            ├── BadObjectMetaError            an object's meta message cannot be read
            └── ObjectDigestError             a chunk is missing or corrupt: the bytes read do
                                              not match the object's size or SHA-256 digest

JetStream API errors are mapped through one table, :class:`ApiErrorCode`: the error codes of
nats-server's ``errors.json`` that syncmsg handles, each with its syncmsg class, and the
class it stands for when the call was about a key-value bucket or an object store
(:func:`map_store_error`: "no message" there is "no such key" or "no such object").

nats-py exceptions never reach users: every bridge re-raises through :func:`map_error`, and
a failed first connection through :func:`explain_connect_failure`. A *definite refusal*
(:func:`is_definite_refusal`: bad credentials, a certificate failure, a bad URL or seed)
is never retried; anything else about connecting may be transient and is.
"""

from __future__ import annotations

import asyncio
import builtins
import enum
import functools
import socket
import ssl
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias

__all__ = [
    "ApiErrorCode",
    "AuthorizationError",
    "BadObjectMetaError",
    "BucketNotFoundError",
    "BufferFullError",
    "ConfigurationError",
    "ConnectionClosedError",
    "ConsumerNotFoundError",
    "DeadLetterError",
    "InvalidBucketNameError",
    "InvalidHeaderError",
    "InvalidKeyError",
    "InvalidSubjectError",
    "JetStreamError",
    "KeyDeletedError",
    "KeyExistsError",
    "KeyNotFoundError",
    "KeyValueError",
    "KeyWrongLastSequenceError",
    "LoopThreadError",
    "MessageNotFoundError",
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
    "RemoteError",
    "SlowConsumerError",
    "StreamNotFoundError",
    "SyncMsgError",
    "TLSError",
    "TimeoutError",
    "WrongLastSequenceError",
    "describe_remote_exception",
    "explain_connect_failure",
    "is_definite_refusal",
    "map_api_error",
    "map_error",
    "map_store_error",
]


class SyncMsgError(Exception):
    """Base class of every error syncmsg raises."""


class ConfigurationError(SyncMsgError, ValueError):
    """The configuration cannot work (bad URL, unreadable credentials, bad option)."""


class InvalidSubjectError(SyncMsgError, ValueError):
    """A subject, queue group or subject token is not valid for this operation."""


class InvalidKeyError(InvalidSubjectError):
    """A key-value key (or a key filter of a watch) that cannot be used: keys are
    ``[-/_=.a-zA-Z0-9]+`` and neither start nor end with ``.`` (as in every NATS client)."""


class InvalidBucketNameError(InvalidSubjectError):
    """A key-value bucket or object store name that is not ``[a-zA-Z0-9_-]+``."""


class InvalidHeaderError(SyncMsgError, ValueError):
    """A header key or value cannot be sent on the wire."""


class PayloadError(SyncMsgError, ValueError):
    """Data could not be encoded to bytes, or a message could not be decoded."""


class PayloadTooLargeError(PayloadError):
    """The encoded message is larger than the server's ``max_payload``."""


class TimeoutError(SyncMsgError, builtins.TimeoutError):
    """A blocking call did not complete within its timeout."""


class NoRespondersError(SyncMsgError):
    """A request was sent to a subject that has no subscribers."""


class RemoteError(SyncMsgError):
    """The responder's handler raised; ``code`` and ``description`` come from its reply."""

    def __init__(self, description: str, *, code: str = "500", subject: str = "") -> None:
        super().__init__(f"{subject}: {description}" if subject else description)
        self.code = code
        self.description = description
        self.subject = subject


class LoopThreadError(SyncMsgError, RuntimeError):
    """A blocking call was made from the client's own event-loop thread.

    It would wait for the loop it is blocking, so it is refused instead of deadlocking.
    """


class SlowConsumerError(SyncMsgError):
    """A subscription could not keep up and messages were dropped."""

    def __init__(self, message: str, *, subject: str = "", dropped: int = 0) -> None:
        super().__init__(message)
        self.subject = subject
        self.dropped = dropped


class NatsConnectionError(SyncMsgError, builtins.ConnectionError):
    """The connection to NATS failed or is unusable."""


class NoServersError(NatsConnectionError):
    """No server in the list could be reached."""


class ConnectionClosedError(NatsConnectionError):
    """The client is closed (or closing) and cannot do this any more."""


class BufferFullError(NatsConnectionError):
    """The outbound buffer is full while disconnected; the message was not accepted."""


class AuthorizationError(NatsConnectionError, PermissionError):
    """The server refused the credentials or the permission for a subject."""


class TLSError(NatsConnectionError):
    """TLS could not be set up with the server, and trying again will not help.

    The server's certificate is not signed by a trusted CA (``tls_ca``) or not valid for the
    host name (``tls_hostname``), or the server requires a client certificate (``tls_cert``,
    ``tls_key``) that was not given or that it does not trust.
    """


class JetStreamError(SyncMsgError):
    """The JetStream API returned an error.

    ``stream`` and ``consumer`` name what the failed call was about, when the caller said.
    """

    def __init__(
        self,
        description: str = "",
        *,
        code: int | None = None,
        err_code: int | None = None,
        stream: str | None = None,
        consumer: str | None = None,
    ) -> None:
        text = description or self.__class__.__doc__ or "JetStream error"
        named = (("stream", stream), ("consumer", consumer))
        names = [f"{what} {name!r}" for what, name in named if name]
        super().__init__(f"{text} ({', '.join(names)})" if names else text)
        self.description = description
        self.code = code
        self.err_code = err_code
        self.stream = stream
        self.consumer = consumer


class StreamNotFoundError(JetStreamError):
    """The stream does not exist."""


class ConsumerNotFoundError(JetStreamError):
    """The consumer does not exist."""


class MessageNotFoundError(JetStreamError):
    """The stream has no message at that sequence, or none for that subject."""


class WrongLastSequenceError(JetStreamError):
    """A publish expectation did not hold: the stream's (or the subject's) last sequence, the
    last message id, or the target stream was not what the publish expected."""


class DeadLetterError(JetStreamError):
    """A message could not be moved to its dead-letter subject."""


class NotSupportedError(JetStreamError):
    """The server does not support this feature: its JetStream API level is lower than the
    feature needs (``js.account_info().api.level``; nats-server 2.11 is level 1, 2.12 is
    2, 2.14 is 4), or the server refused a request that requires a higher level.

    ``feature`` names what was asked for, ``required_level`` the API level it needs and
    ``server_level`` the level the server reported (None when unknown).
    """

    def __init__(
        self,
        description: str = "",
        *,
        feature: str = "",
        required_level: int | None = None,
        server_level: int | None = None,
        **api: Any,
    ) -> None:
        super().__init__(description, **api)
        self.feature = feature
        self.required_level = required_level
        self.server_level = server_level


class BucketNotFoundError(StreamNotFoundError):
    """The key-value bucket or object store does not exist (its stream does not)."""


class _StoreError(JetStreamError):
    """An error about a key-value bucket or an object store, which names them: ``bucket``,
    and ``key`` (a key-value key or an object's name) when there is one."""

    def __init__(
        self,
        description: str = "",
        *,
        bucket: str | None = None,
        key: str | None = None,
        code: int | None = None,
        err_code: int | None = None,
        stream: str | None = None,
        consumer: str | None = None,
    ) -> None:
        text = description or self._default
        named = (("bucket", bucket), (self._key_word, key))
        names = [f"{what} {name!r}" for what, name in named if name is not None]
        SyncMsgError.__init__(self, f"{text} ({', '.join(names)})" if names else text)
        self.description = description
        self.code = code
        self.err_code = err_code
        self.stream = stream
        self.consumer = consumer
        self.bucket = bucket
        self.key = key

    _key_word = "key"  # what ``key`` is called in the message
    _default = "refused"  # the message without a description

    def __str__(self) -> str:
        return Exception.__str__(self)  # not KeyError's quoted form


class KeyValueError(_StoreError):
    """A key-value bucket refused an operation."""

    _default = "key-value operation refused"


class KeyNotFoundError(KeyValueError, KeyError):
    """The key has no value (never had one, or not at that revision).

    Also a :class:`KeyError`, so that ``except KeyError`` reads naturally around ``kv.get``.
    """

    _default = "key not found"


class KeyDeletedError(KeyNotFoundError):
    """The key's latest entry is a delete or a purge marker: ``entry`` is that marker
    (``entry.operation`` is ``"DEL"`` or ``"PURGE"``, ``entry.revision`` its revision)."""

    _default = "key deleted"

    def __init__(self, description: str = "", *, entry: Any = None, **about: Any) -> None:
        super().__init__(description, **about)
        self.entry = entry

    @property
    def operation(self) -> str | None:
        return None if self.entry is None else str(self.entry.operation)

    @property
    def revision(self) -> int | None:
        return None if self.entry is None else int(self.entry.revision)


class KeyWrongLastSequenceError(WrongLastSequenceError, KeyValueError):
    """The key's latest revision was not the one given (``kv.update(..., last=)``,
    ``kv.delete(..., last=)``): another writer got there first. The error a compare-and-set
    loop (a leader lease, a counter) catches before it reads the key again."""

    _default = "wrong last revision"


class KeyExistsError(KeyWrongLastSequenceError):
    """``kv.create()``: the key has a value already (its latest entry is not a delete)."""

    _default = "key exists"


class ObjectStoreError(_StoreError):
    """An object store refused an operation."""

    _key_word = "object"
    _default = "object store operation refused"


class ObjectNotFoundError(ObjectStoreError):
    """No such object in the store (or it was deleted)."""

    _default = "object not found"


class ObjectAlreadyExistsError(ObjectStoreError):
    """A link or a rename would replace an object that exists (and is not a link)."""

    _default = "object exists"


class BadObjectMetaError(ObjectStoreError):
    """An object's meta message is not the object info JSON every NATS client writes."""

    _default = "unreadable object meta"


class ObjectDigestError(ObjectStoreError):
    """The object's chunks do not add up: one is missing or corrupt, so their size or their
    SHA-256 digest differs from the object's info. No wrong bytes are returned."""

    _default = "object digest mismatch"


# ===================================================================== JetStream API errors


class ApiErrorCode(int, enum.Enum):
    """The JetStream API error codes syncmsg handles (``err_code`` in nats-server's
    ``errors.json``), each with the syncmsg class it raises: the one table of them.

    Compare an error's ``err_code`` with a member by name::

        except JetStreamError as exc:
            if exc.err_code == ApiErrorCode.STREAM_NAME_IN_USE: ...
    """

    error_class: type[JetStreamError]
    #: The class raised instead when the call was about a key-value bucket (None: the same).
    kv_class: type[JetStreamError] | None
    #: The class raised instead when the call was about an object store (None: the same).
    object_class: type[JetStreamError] | None

    def __new__(
        cls,
        code: int,
        error_class: type[JetStreamError],
        kv_class: type[JetStreamError] | None = None,
        object_class: type[JetStreamError] | None = None,
    ) -> ApiErrorCode:
        member = int.__new__(cls, code)
        member._value_ = code
        member.error_class = error_class
        member.kv_class = kv_class
        member.object_class = object_class
        return member

    #: 404 no such consumer.
    CONSUMER_NOT_FOUND = 10014, ConsumerNotFoundError
    #: 404 no message at that sequence, or for that subject: no such key, no such object.
    NO_MESSAGE_FOUND = 10037, MessageNotFoundError, KeyNotFoundError, ObjectNotFoundError
    #: 400 ``sequence N not found`` (deleting a message that is not there).
    SEQUENCE_NOT_FOUND = 10043, MessageNotFoundError, KeyNotFoundError, ObjectNotFoundError
    #: 400 a stream of that name exists with another configuration (a bucket, too).
    STREAM_NAME_IN_USE = 10058, JetStreamError
    #: 404 no such stream: no such bucket.
    STREAM_NOT_FOUND = 10059, StreamNotFoundError, BucketNotFoundError, BucketNotFoundError
    #: 400 ``Nats-Expected-Stream`` did not match.
    EXPECTED_STREAM_MISMATCH = 10060, WrongLastSequenceError
    #: 400 ``Nats-Expected-Last-Msg-Id`` did not match.
    WRONG_LAST_MSG_ID = 10070, WrongLastSequenceError
    #: 400 ``Nats-Expected-Last-Sequence`` or ``Nats-Expected-Last-Subject-Sequence`` did
    #: not match: for a key, a lost compare-and-set.
    WRONG_LAST_SEQUENCE = 10071, WrongLastSequenceError, KeyWrongLastSequenceError
    #: 400 a write to a sealed stream (a sealed object store).
    STREAM_SEALED = 10109, JetStreamError
    #: 400 a consumer of that name exists with another configuration (create only).
    CONSUMER_ALREADY_EXISTS = 10148, JetStreamError
    #: 400 the consumer to update does not exist (update only).
    CONSUMER_DOES_NOT_EXIST = 10149, ConsumerNotFoundError
    #: 400 the wrong last sequence, without the number (replicated streams).
    WRONG_LAST_SEQUENCE_CONSTANT = 10164, WrongLastSequenceError, KeyWrongLastSequenceError
    #: 400 a ``Nats-TTL`` header the server cannot read (less than a second, say).
    MESSAGE_TTL_INVALID = 10165, JetStreamError
    #: 400 a ``Nats-TTL`` header on a stream without ``allow_msg_ttl``.
    MESSAGE_TTL_DISABLED = 10166, JetStreamError
    #: 429 the stream's ingest queue is full (a rate limit): worth another try, later.
    TOO_MANY_REQUESTS = 10167, JetStreamError
    # -- priority groups (nats-server 2.11) ----------------------------------------------
    #: 400 a priority policy without a priority group.
    PRIORITY_POLICY_WITHOUT_GROUP = 10159, JetStreamError
    #: 400 the priority group is not one of the consumer's (a pull request, an unpin).
    INVALID_PRIORITY_GROUP = 10160, JetStreamError
    #: 400 a priority group name the server refuses (A-Z a-z 0-9 ``-_/=)+``, at most 16).
    INVALID_GROUP_NAME = 10162, JetStreamError
    # -- counters (nats-server 2.12) -------------------------------------------------------
    #: 400 a ``Nats-Incr`` header on a stream without ``allow_msg_counter``.
    COUNTER_DISABLED = 10168, JetStreamError
    #: 400 a message without ``Nats-Incr`` on a counter stream.
    COUNTER_INCREMENT_MISSING = 10169, JetStreamError
    #: 400 an increment with a payload.
    COUNTER_HAS_PAYLOAD = 10170, JetStreamError
    #: 400 an increment that is not an integer (or combined with a header it cannot be).
    COUNTER_INCREMENT_INVALID = 10171, JetStreamError
    #: 400 the subject's last message is not a counter value.
    COUNTER_BROKEN = 10172, JetStreamError
    # -- atomic batches (nats-server 2.12) -------------------------------------------------
    #: 400 a batch to a stream without ``allow_atomic``.
    ATOMIC_PUBLISH_DISABLED = 10174, JetStreamError
    #: 400 a batch message without its ``Nats-Batch-Sequence``.
    ATOMIC_PUBLISH_MISSING_SEQ = 10175, JetStreamError
    #: 400 the batch has a gap (a message was lost) or was abandoned: nothing was stored.
    ATOMIC_PUBLISH_INCOMPLETE = 10176, JetStreamError
    #: 400 a header a batch cannot carry (``Nats-Expected-Last-Msg-Id``).
    ATOMIC_PUBLISH_UNSUPPORTED_HEADER = 10177, JetStreamError
    #: 400 a batch id longer than 64 characters.
    ATOMIC_PUBLISH_INVALID_BATCH_ID = 10179, JetStreamError
    #: 412 the request needs a higher JetStream API level than the server's.
    REQUIRED_API_LEVEL = 10185, NotSupportedError
    #: 400 more messages in a batch than the server allows (1000 by default).
    ATOMIC_PUBLISH_TOO_LARGE = 10199, JetStreamError
    #: 400 a batch's commit header is neither ``1`` nor ``eob``.
    ATOMIC_PUBLISH_INVALID_COMMIT = 10200, JetStreamError
    #: 400 a batch with a ``Nats-Msg-Id`` the stream (or the batch) already has: nothing
    #: was stored.
    ATOMIC_PUBLISH_DUPLICATE_MSG_ID = 10201, JetStreamError
    # -- consumer reset (nats-server 2.14) -------------------------------------------------
    #: 400 a reset to a sequence the consumer's deliver policy does not allow.
    CONSUMER_INVALID_RESET = 10204, JetStreamError
    #: 429 too many atomic batches in flight on the stream (50) or the server (1000).
    ATOMIC_PUBLISH_TOO_MANY_INFLIGHT = 10210, JetStreamError


_API_ERROR_CODES: dict[int, ApiErrorCode] = {int(member): member for member in ApiErrorCode}


def map_api_error(
    error: Any, *, stream: str | None = None, consumer: str | None = None
) -> JetStreamError:
    """The syncmsg exception for a JetStream API reply's ``{"code", "err_code", "description"}``.

    Used for replies parsed by syncmsg itself (JetStream publish acks and API calls) and for
    nats-py's ``APIError``, so both paths raise the same classes. ``stream`` and ``consumer``
    name what the call was about; they are kept on the exception and shown in its message
    (``stream not found (stream 'ORDERS')``).
    """
    if not isinstance(error, dict):
        return JetStreamError(str(error), stream=stream, consumer=consumer)
    code = error.get("code")
    err_code = error.get("err_code")
    description = str(error.get("description") or "")
    if not isinstance(err_code, int):
        err_code = None
    known = _API_ERROR_CODES.get(err_code) if err_code is not None else None
    cls = None if known is None else known.error_class
    if cls is None and code == 404:
        text = description.lower()
        if "consumer" in text:
            cls = ConsumerNotFoundError
        elif "stream" in text:
            cls = StreamNotFoundError
    return (cls or JetStreamError)(
        description,
        code=code if isinstance(code, int) else None,
        err_code=known or err_code,  # a known code compares and prints by its name
        stream=stream,
        consumer=consumer,
    )


def map_store_error(
    exc: JetStreamError, store: str, *, bucket: str, key: str | None = None
) -> JetStreamError:
    """What a JetStream error means for a key-value bucket (``store="kv"``) or an object
    store (``store="object"``): the class of :class:`ApiErrorCode`'s ``kv_class`` or
    ``object_class`` column, naming ``bucket`` and ``key`` (a key, or an object's name).

    Errors without an ``err_code`` (a direct get's 404, "no stream captures ...") are read
    by their class, through the table's row for that class. Anything the table does not
    translate is returned as it is.
    """
    if isinstance(exc, _StoreError):
        return exc
    column = "kv_class" if store == "kv" else "object_class"
    member = _API_ERROR_CODES.get(exc.err_code) if isinstance(exc.err_code, int) else None
    if member is None:
        member = next(
            (m for m in ApiErrorCode if m.error_class is type(exc) and getattr(m, column)),
            None,
        )
    cls = None if member is None else getattr(member, column)
    if cls is None:
        return exc
    about: dict[str, Any] = {
        "code": exc.code,
        "err_code": exc.err_code,
        "stream": exc.stream,
        "consumer": exc.consumer,
    }
    if issubclass(cls, KeyWrongLastSequenceError):  # the server's text has the revision
        mapped: JetStreamError = cls(exc.description, bucket=bucket, key=key, **about)
    elif issubclass(cls, _StoreError):
        mapped = cls(bucket=bucket, key=key, **about)
    else:
        mapped = cls(f"bucket {bucket!r} not found", **about)
    mapped.__cause__ = exc
    return mapped


# ===================================================================== nats-py → syncmsg

# One row per nats-py (or stdlib) exception type: the syncmsg class and its message, where
# ``{where}`` is `` (subject)`` when the caller named one and ``{detail}`` the raw text.
# The first row whose type matches wins, so subclasses come before their bases (nats-py's
# TimeoutError is an asyncio.TimeoutError, which is an OSError; ssl.SSLError is an OSError).
_Row: TypeAlias = tuple[tuple[type[BaseException], ...], type[SyncMsgError], str]

# Texts of nats-py's plain ``Error`` (mostly the server's ``-ERR`` lines) that say more
# than their type does. Matched in lower case, as substrings.
_ERROR_TEXTS: tuple[tuple[str, type[SyncMsgError], str], ...] = (
    ("authorization violation", AuthorizationError, "the server refused the credentials"),
    ("authentication expired", AuthorizationError, "the credentials have expired"),
    ("authentication revoked", AuthorizationError, "the credentials were revoked"),
    ("permissions violation", AuthorizationError, "permission denied"),
    ("invalid connect url", ConfigurationError, "invalid server URL"),
    ("invalid hostname in connect url", ConfigurationError, "invalid host in a server URL"),
    ("mixing of websocket", ConfigurationError, "ws:// and nats:// URLs cannot be mixed"),
    ("tls required", TLSError, "the server requires TLS"),
    ("maximum payload", PayloadTooLargeError, "payload larger than the server's max_payload"),
)


@functools.cache
def _rows() -> tuple[_Row, ...]:
    # Imported on first use: nats-py is a runtime dependency, but keeping it out of module
    # import time lets the pure parts of syncmsg (codec, events models) load fast.
    import nkeys
    from nats import errors as nerr

    timeouts = (nerr.TimeoutError, asyncio.TimeoutError, builtins.TimeoutError)
    return (
        ((nerr.NoRespondersError,), NoRespondersError, "no responders{where}"),
        (timeouts, TimeoutError, "timed out{where}"),
        ((nerr.MaxPayloadError,), PayloadTooLargeError, "payload larger than max_payload{where}"),
        ((nerr.BadSubjectError,), InvalidSubjectError, "invalid subject{where}"),
        ((nerr.BadHeaderError,), InvalidHeaderError, "invalid header{where}: {detail}"),
        ((nerr.OutboundBufferLimitError,), BufferFullError, "reconnect buffer is full{where}"),
        (
            (nerr.ConnectionClosedError, nerr.ConnectionDrainingError),
            ConnectionClosedError,
            "connection closed{where}",
        ),
        ((nerr.AuthorizationError,), AuthorizationError, "{detail}"),
        ((nerr.NoServersError,), NoServersError, "could not connect to any server"),
        ((nerr.InvalidUserCredentialsError,), ConfigurationError, "invalid credentials file"),
        ((nkeys.ErrInvalidSeed,), ConfigurationError, "the NKey seed is invalid"),
        (
            (nerr.SecureConnRequiredError, nerr.SecureConnWantedError),
            TLSError,
            "{detail}",
        ),
        ((ssl.SSLCertVerificationError,), TLSError, "{detail}"),
        (
            (nerr.StaleConnectionError, nerr.ConnectionReconnectingError, OSError),
            NatsConnectionError,
            "{detail}",
        ),
        ((nerr.Error,), SyncMsgError, "{detail}"),
    )


def map_error(
    exc: BaseException,
    *,
    subject: str = "",
    stream: str | None = None,
    consumer: str | None = None,
) -> BaseException:
    """Return the syncmsg exception for ``exc``; the single nats-py → syncmsg mapping.

    syncmsg's own exceptions pass through unchanged, and so does anything that is not a
    nats-py, nkeys or OS error (a bug should surface as itself). ``subject`` is named in
    the message; ``stream`` and ``consumer`` are given to JetStream API errors.
    """
    if isinstance(exc, SyncMsgError):
        return exc
    from nats import errors as nerr
    from nats.js import errors as jerr

    if isinstance(exc, jerr.APIError):
        return map_api_error(
            {
                "code": getattr(exc, "code", None),
                "err_code": getattr(exc, "err_code", None),
                "description": getattr(exc, "description", None) or str(exc),
            },
            stream=stream,
            consumer=consumer,
        )
    if isinstance(exc, nerr.SlowConsumerError):
        where = str(getattr(exc, "subject", "") or "")
        return SlowConsumerError(f"slow consumer on {where or '?'}", subject=where)
    detail = _describe(exc)
    if type(exc) is nerr.Error:
        for text, cls, message in _ERROR_TEXTS:
            if text in detail.lower():
                return cls(f"{message}: {detail}")
    if isinstance(exc, ssl.SSLError) and _tls_refusal(exc):
        return TLSError(detail)
    for types, cls, template in _rows():
        if isinstance(exc, types):
            where = f" ({subject})" if subject else ""
            return cls(template.format(where=where, detail=detail or type(exc).__name__))
    return exc


def _describe(exc: BaseException) -> str:
    text: Any = getattr(exc, "description", None) or str(exc)
    return " ".join(str(text).split())


# ===================================================================== first connection


def _tls_refusal(exc: ssl.SSLError) -> bool:
    """Whether an SSL error is the peer (or we) refusing the handshake, not a lost link."""
    lost = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError, ssl.SSLWantReadError)
    return not isinstance(exc, lost)


def _lost_during_handshake(exc: BaseException) -> bool:
    from nats import errors as nerr

    # The server hangs up on a client without a certificate; which of these the client
    # sees depends on how far its handshake got when the server's close arrived.
    lost = ConnectionResetError | BrokenPipeError | ConnectionAbortedError
    return isinstance(exc, lost | nerr.UnexpectedEOF | ssl.SSLEOFError)


_Diagnosis: TypeAlias = tuple[type[SyncMsgError], str]
_TIMED_OUT = "timed out"  # the reason that says least: any other seen error explains more


def _diagnose(
    exc: BaseException, server_info: Mapping[str, Any] | None, has_client_cert: bool
) -> _Diagnosis | None:
    """What went wrong in one connection attempt, or None when ``exc`` says nothing."""
    from nats import errors as nerr

    if isinstance(exc, asyncio.CancelledError | nerr.NoServersError):
        return None
    if isinstance(exc, nerr.TimeoutError | asyncio.TimeoutError | builtins.TimeoutError):
        return NoServersError, _TIMED_OUT
    if isinstance(exc, ssl.SSLCertVerificationError):
        # OpenSSL's own code (CERTIFICATE_VERIFY_FAILED) stays in the text: it is what
        # people search for.
        code = getattr(exc, "reason", None) or "CERTIFICATE_VERIFY_FAILED"
        reason = f"{code}: {getattr(exc, 'verify_message', None) or _describe(exc)}"
        if "mismatch" in reason.lower():
            return TLSError, f"the server's certificate is not valid for this host ({reason})"
        return TLSError, f"the server's certificate is not trusted ({reason}); check tls_ca"
    if isinstance(exc, ssl.SSLError) and _tls_refusal(exc):
        reason = str(getattr(exc, "reason", "") or "")
        if "CERTIFICATE_REQUIRED" in reason:
            return TLSError, (
                f"the server requires a client certificate; set tls_cert and tls_key ({reason})"
            )
        if "UNKNOWN_CA" in reason or "BAD_CERTIFICATE" in reason:
            return TLSError, f"the server does not accept the client certificate ({reason})"
        return TLSError, f"TLS handshake failed ({_describe(exc)})"
    if server_info and server_info.get("tls_verify") and _lost_during_handshake(exc):
        # TLS 1.3 reports a missing client certificate after the handshake "succeeded":
        # the server then just drops the connection (measured: 29 times in 30).
        if not has_client_cert:
            return TLSError, "the server requires a client certificate; set tls_cert and tls_key"
        return NoServersError, (
            "the server closed the connection during the TLS handshake; it may not accept "
            f"the client certificate ({_raw(exc)})"
        )
    mapped = map_error(exc)
    if isinstance(mapped, ConfigurationError | AuthorizationError | TLSError):
        return type(mapped), str(mapped)
    if isinstance(exc, ConnectionRefusedError):
        return NoServersError, f"connection refused ({_raw(exc)})"
    if isinstance(exc, socket.gaierror):
        return NoServersError, f"cannot resolve the host name ({_raw(exc)})"
    if _lost_during_handshake(exc):
        return NoServersError, f"the server closed the connection ({_raw(exc)})"
    if isinstance(mapped, SyncMsgError):
        return NoServersError, _raw(exc)
    return None


def _raw(exc: BaseException) -> str:
    detail = _describe(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def explain_connect_failure(
    exc: BaseException,
    seen_errors: Iterable[BaseException] = (),
    servers: Sequence[str] = (),
    *,
    server_info: Mapping[str, Any] | None = None,
    has_client_cert: bool = False,
) -> SyncMsgError:
    """The syncmsg error for a first connection attempt that raised ``exc``.

    ``seen_errors`` are the errors nats-py passed to its error callback during the attempt
    (nats-py often raises only a bare timeout after a refused port: the refusal is in the
    callback). ``servers`` are the server URLs *already redacted* (``Config.redacted_servers``).
    ``server_info`` is the INFO the server sent, if any, and ``has_client_cert`` whether a
    client certificate was configured: together they tell a missing client certificate from
    a lost connection.

    The result is :class:`ConfigurationError`, :class:`AuthorizationError` or
    :class:`TLSError` for a definite refusal (see :func:`is_definite_refusal`), else
    :class:`NoServersError`; its message names the cause ("connection refused", "the
    server's certificate is not trusted", ...) and its ``__cause__`` is the raw error.
    """
    if isinstance(exc, SyncMsgError) and not isinstance(exc, TimeoutError):
        return exc  # explained already (a ConfigurationError from the options, say)
    seen = [e for e in seen_errors if e is not exc]
    attempts = [exc, *reversed(seen)]  # the raised error first, then the latest seen
    diagnoses = [(e, _diagnose(e, server_info, has_client_cert)) for e in attempts]
    found = [(e, d) for e, d in diagnoses if d is not None]
    definite = [(e, d) for e, d in found if d[0] is not NoServersError]
    informative = [(e, d) for e, d in found if d[1] != _TIMED_OUT]
    cause, (cls, reason) = (definite or informative or found or [(exc, (NoServersError, ""))])[0]
    where = ", ".join(servers) or "the server"
    if cls is NoServersError:
        reasons = list(dict.fromkeys(d[1] for _, d in (informative or found)))[:3]
        text = "; ".join(reasons) or _raw(exc)
        error: SyncMsgError = NoServersError(f"could not connect to {where}: {text}")
    elif cls is ConfigurationError:
        error = ConfigurationError(reason)
    else:
        error = cls(f"{where}: {reason}")
    error.__cause__ = cause
    return error


def is_definite_refusal(exc: BaseException) -> bool:
    """Whether trying again cannot help: bad credentials, a certificate failure, a bad URL,
    seed or other configuration.

    Takes a syncmsg error (as :func:`explain_connect_failure` returns) or a raw nats-py /
    ssl exception. Retry policies never retry these; a refused port, a DNS failure, a
    timeout or a dropped connection may be transient and are retried.
    """
    definite = (ConfigurationError, AuthorizationError, TLSError)
    if isinstance(exc, SyncMsgError):
        return isinstance(exc, definite)
    diagnosis = _diagnose(exc, None, False)
    return diagnosis is not None and issubclass(diagnosis[0], definite)


# ===================================================================== serve() error replies

_REMOTE_TEXT_LIMIT = 1024  # characters; the reply header must stay far below max_payload


def describe_remote_exception(exc: BaseException) -> str:
    """One line for a handler's exception, as the requester will see it: ``KeyError: 'n'``.

    The type name is kept (``str(KeyError('n'))`` alone is ``'n'``); CR, LF and other
    control characters become spaces so that the text is a valid header value; characters
    UTF-8 cannot encode (lone surrogates) are escaped; long texts are cut to 1 KiB.
    """
    name = type(exc).__qualname__
    try:
        detail = str(exc)
    except Exception:  # a broken __str__ must not break the error reply
        detail = ""
    text = f"{name}: {detail}" if detail else name
    text = "".join(" " if (ch < " " or ch == "\x7f") else ch for ch in text)
    text = " ".join(text.split())
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > _REMOTE_TEXT_LIMIT:
        text = text[: _REMOTE_TEXT_LIMIT - 1] + "…"
    return text

"""What an object store is made of: its configuration, the object meta JSON, and the
values it hands back (infos, results, the store's status).

Threading: immutable values and pure functions; use them from any thread.

The layout is the standard one (ADR-20), so that nats.go, nats.js, nats-py and the ``nats``
CLI read what syncmsg writes and the reverse:

* store ``B`` is the stream ``OBJ_B`` capturing ``$O.B.C.>`` (chunks) and ``$O.B.M.>``
  (meta); it allows roll-ups and direct gets, and discards new messages when full;
* an object is its chunks, the messages on ``$O.B.C.<nuid>`` (a fresh random id for each
  version, so a new version never mixes with the old one), and its meta, the last message
  on ``$O.B.M.<name as URL-safe base64>``: the :class:`ObjectInfo` JSON (name, size,
  chunk count, ``"SHA-256=<URL-safe base64>"`` digest, options), written with
  ``Nats-Rollup: sub`` so only the latest is kept;
* a deleted object keeps a meta with ``deleted: true``; a link is a meta whose options name
  another object (or a whole store) and which has no chunks.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import re
import secrets
import string
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)

from syncmsg._codec import decode_json, decode_model
from syncmsg._errors import InvalidBucketNameError
from syncmsg.jetstream._models import (
    Placement,
    StorageType,
    StreamSpec,
    parse_time,
)
from syncmsg.jetstream._store_config import StoreDuration, StoreStorage, bucket_stream_fields
from syncmsg.jetstream._store_status import StoreStatus

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DIGEST_PREFIX",
    "STREAM_PREFIX",
    "ObjectInfo",
    "ObjectLink",
    "ObjectMeta",
    "ObjectMetaOptions",
    "ObjectResult",
    "ObjectStoreConfig",
    "ObjectStoreStatus",
    "check_store_name",
    "chunk_subject",
    "digest_value",
    "meta_subject",
    "new_nuid",
    "stream_name",
]

#: The size of an object's chunks unless ``put`` says otherwise (ADR-20: 128 KiB).
DEFAULT_CHUNK_SIZE = 128 * 1024
#: How a digest starts: the algorithm, in RFC 6234's upper case.
DIGEST_PREFIX = "SHA-256="
#: The start of a store's stream name: store ``files`` is stream ``OBJ_files``.
STREAM_PREFIX = "OBJ_"
#: Go's zero time: what nats.go writes as ``mtime`` (the time is never stored, ADR-20).
_ZERO_TIME = "0001-01-01T00:00:00Z"

ModelT = TypeVar("ModelT", bound=BaseModel)
_STORE_NAME = re.compile(r"[a-zA-Z0-9_-]+")
_NUID_ALPHABET = string.ascii_letters + string.digits
_NUID_LENGTH = 22


def check_store_name(bucket: object) -> str:
    """``bucket`` if it is a valid store name (``[a-zA-Z0-9_-]+``), else
    :class:`~syncmsg.InvalidBucketNameError`."""
    if not isinstance(bucket, str) or not _STORE_NAME.fullmatch(bucket):
        raise InvalidBucketNameError(
            f"invalid object store name {bucket!r}: use letters, digits, '-' and '_'"
        )
    return bucket


def stream_name(bucket: str) -> str:
    """The stream of a store: ``OBJ_<bucket>``."""
    return STREAM_PREFIX + bucket


def encode_name(name: str) -> str:
    """An object's name as its meta subject's last token: URL-safe base64, padded (as
    nats.go's ``base64.URLEncoding``)."""
    return base64.urlsafe_b64encode(name.encode()).decode()


def meta_subject(bucket: str, name: str) -> str:
    return f"$O.{bucket}.M.{encode_name(name)}"


def chunk_subject(bucket: str, nuid: str) -> str:
    return f"$O.{bucket}.C.{nuid}"


def new_nuid() -> str:
    """A fresh object id: 22 random letters and digits, the shape of a NATS NUID."""
    return "".join(secrets.choice(_NUID_ALPHABET) for _ in range(_NUID_LENGTH))


def digest_value(sha256: bytes) -> str:
    """``SHA-256=<URL-safe base64>``, the digest as every client writes it."""
    return DIGEST_PREFIX + base64.urlsafe_b64encode(sha256).decode()


def digest_bytes(digest: str) -> bytes | None:
    """The SHA-256 a digest value names (either case of the prefix); None when it is not
    one."""
    algorithm, sep, value = digest.partition("=")
    if not sep or algorithm.upper() != "SHA-256":
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError:
        return None
    return raw if len(raw) == 32 else None


# ===================================================================== the meta JSON


class _Wire(BaseModel):
    """A part of the meta JSON: fields a newer client adds are kept and written back."""

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ObjectLink(_Wire):
    """A link's target: an object (``name``) in ``bucket``, or the whole store."""

    bucket: str
    name: str | None = None


def _header_lists(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            str(k): [v] if isinstance(v, str) else [str(x) for x in v] for k, v in value.items()
        }
    return value


Headers = Annotated[dict[str, list[str]] | None, BeforeValidator(_header_lists)]


class ObjectMetaOptions(_Wire):
    """Options of an object: a link, and the chunk size it was written with."""

    link: ObjectLink | None = None
    max_chunk_size: int | None = Field(None, ge=1)


class ObjectMeta(_Wire):
    """What describes an object: its name and description, headers (each key a list of
    values, as on the wire; a str is one value), string metadata and options."""

    name: str
    description: str | None = None
    headers: Headers = None
    metadata: dict[str, str] | None = None
    options: ObjectMetaOptions | None = None


def _read_mtime(value: Any) -> dt.datetime | None:
    return parse_time(value) if value is not None else None


class ObjectInfo(ObjectMeta):
    """An object as its meta message describes it.

    ``size`` is in bytes, ``chunks`` how many messages hold it, ``digest`` its SHA-256
    (``"SHA-256=<URL-safe base64>"``); ``mtime`` is when its meta was written (the server's
    time: it is never stored in the JSON); ``deleted`` marks a deleted object.
    """

    bucket: str
    nuid: str
    size: int = 0
    mtime: Annotated[dt.datetime | None, BeforeValidator(_read_mtime)] = None
    chunks: int = 0
    digest: str | None = None
    deleted: bool = False

    @property
    def is_link(self) -> bool:
        """True for a link to another object or store."""
        return self.options is not None and self.options.link is not None

    @property
    def link(self) -> ObjectLink | None:
        return None if self.options is None else self.options.link

    @property
    def chunk_size(self) -> int | None:
        return None if self.options is None else self.options.max_chunk_size

    @classmethod
    def from_json(cls, data: bytes, mtime: dt.datetime | None) -> ObjectInfo:
        """Read a meta message (``mtime``: the message's time). Raises ValueError."""
        raw = decode_json(data, "object meta")
        if not isinstance(raw, dict):
            raise ValueError("the object meta is not a JSON object")
        raw = dict(raw)
        raw["mtime"] = mtime
        return cls.model_validate(raw)

    def to_json(self) -> bytes:
        """The meta message's JSON: ``mtime`` as Go's zero time (ADR-20 stores no time),
        ``size`` and ``chunks`` always, ``deleted`` only when set."""
        data = self.to_wire()
        data["mtime"] = _ZERO_TIME
        data["size"] = self.size
        data["chunks"] = self.chunks
        if not self.deleted:
            data.pop("deleted", None)
        if not self.digest:
            data.pop("digest", None)
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


# ===================================================================== the store


class ObjectStoreConfig(BaseModel):
    """The configuration of an object store (the keywords of ``js.create_object_store``):
    ``ttl`` (seconds or a timedelta) is how long objects are kept, ``max_bytes`` the
    store's size limit (None: none)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bucket: str
    description: str | None = None
    ttl: StoreDuration = None
    max_bytes: int | None = Field(None, ge=1)
    storage: StoreStorage = StorageType.FILE
    replicas: int = Field(1, ge=1, le=5)
    compression: bool = False
    placement: Placement | None = None
    metadata: dict[str, str] | None = None

    @field_validator("bucket")
    @classmethod
    def _check_bucket(cls, value: str) -> str:
        return check_store_name(value)

    def to_stream_spec(self) -> StreamSpec:
        """The stream this store is (ADR-20)."""
        return StreamSpec(
            **bucket_stream_fields(self, stream_name(self.bucket)),
            subjects=(f"$O.{self.bucket}.C.>", f"$O.{self.bucket}.M.>"),
        )


@dataclasses.dataclass(frozen=True)
class ObjectStoreStatus(StoreStatus):
    """A store's configuration and state, read from its stream (``obs.status()``)."""

    def __repr__(self) -> str:
        return f"<ObjectStoreStatus {self.bucket!r} size={self.size} sealed={self.sealed}>"

    @property
    def sealed(self) -> bool:
        """True once the store is sealed: nothing can be changed any more."""
        return bool(self.stream_info.config.extra.get("sealed"))

    @property
    def size(self) -> int:
        """Bytes stored: chunks and meta messages."""
        return self.stream_info.state.bytes


@dataclasses.dataclass(frozen=True)
class ObjectResult:
    """An object read with ``obs.get(name)``: its ``info`` and its bytes (``data``; empty
    when it was written into a file with ``into=``)."""

    info: ObjectInfo
    data: bytes = b""

    def text(self, encoding: str = "utf-8") -> str:
        return self.data.decode(encoding)

    def json(self) -> Any:
        """The object parsed as JSON (raises :class:`~syncmsg.PayloadError`)."""
        return decode_json(self.data, self.info.name)

    def parse(self, model: type[ModelT]) -> ModelT:
        """The object validated into a pydantic ``model`` (raises PayloadError)."""
        return decode_model(self.data, model, self.info.name)


def header_lists(headers: Mapping[str, str | Sequence[str]] | None) -> dict[str, list[str]] | None:
    """``headers`` as the meta JSON holds them: each key a list of values."""
    if not headers:
        return None
    result: dict[str, list[str]] = _header_lists(headers)
    return result

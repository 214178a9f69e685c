"""What the key-value and object stores' statuses share: a bucket read from its stream.

Threading: plain frozen data, made on the calling thread and safe to share.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from syncmsg.jetstream._models import StorageType, StreamInfo

__all__ = ["StoreStatus"]


@dataclasses.dataclass(frozen=True)
class StoreStatus:
    """A bucket's configuration and state, read from its stream; ``stream_info`` is the
    whole :class:`~syncmsg.jetstream.StreamInfo`."""

    bucket: str
    stream_info: StreamInfo

    @property
    def description(self) -> str | None:
        return self.stream_info.config.description

    @property
    def ttl(self) -> dt.timedelta | None:
        """How long an entry is kept (None: for ever)."""
        return self.stream_info.config.max_age

    @property
    def storage(self) -> StorageType:
        return self.stream_info.config.storage

    @property
    def replicas(self) -> int:
        return self.stream_info.config.replicas

    @property
    def is_compressed(self) -> bool:
        return self.stream_info.config.compression.value == "s2"

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self.stream_info.config.metadata or {})

    @property
    def backing_store(self) -> str:
        """``"JetStream"``, as every client says."""
        return "JetStream"

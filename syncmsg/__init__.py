"""syncmsg: a synchronous, thread-safe client for NATS and JetStream."""

from syncmsg._errors import *  # noqa: F403  (temporary while the core lands)

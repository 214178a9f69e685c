"""Where the command modules are registered: importing one adds its commands to ``app``.

Threading: import time only.
"""

from syncmsg.cli import (  # noqa: F401  (imported for their commands)
    bench,
    consumers,
    context,
    demo,
    health,
    kv,
    object,
    pub,
    req,
    server,
    services,
    streams,
    sub,
)
from syncmsg.cli._app import app, run

__all__ = ["app", "run"]

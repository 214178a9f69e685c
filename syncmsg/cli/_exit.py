"""Exit codes, and the one table that maps an error to its exit code.

Threading: constants and pure functions; any thread.
"""

from __future__ import annotations

from syncmsg._errors import (
    ConfigurationError,
    ConsumerNotFoundError,
    KeyNotFoundError,
    NatsConnectionError,
    NoRespondersError,
    ObjectNotFoundError,
    StreamNotFoundError,
    SyncMsgError,
)
from syncmsg._errors import TimeoutError as SyncTimeoutError

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "CommandFailed",
    "exit_code_for",
    "one_line",
]

EXIT_OK = 0
EXIT_ERROR = 1  #: any other error (a failed remote handler, a refused stream change ...)
EXIT_USAGE = 2  #: bad arguments or configuration
EXIT_UNAVAILABLE = 3  #: no server reachable, authorization refused, or not healthy
EXIT_TIMEOUT = 4  #: a request, a publish or a wait ran out of time
EXIT_NOT_FOUND = 5  #: no responders, no such stream, consumer, context, bucket, key or object
EXIT_INTERRUPTED = 130  #: Ctrl-C (128 + SIGINT), as shells report it


class CommandFailed(SyncMsgError):
    """An expected failure of a command: printed as one line, exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


#: The first row whose type matches the error gives its exit code; anything else is 1.
_EXIT_CODES: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], int], ...] = (
    (ConfigurationError, EXIT_USAGE),
    (NatsConnectionError, EXIT_UNAVAILABLE),
    (SyncTimeoutError, EXIT_TIMEOUT),
    ((NoRespondersError, StreamNotFoundError, ConsumerNotFoundError), EXIT_NOT_FOUND),
    ((KeyNotFoundError, ObjectNotFoundError), EXIT_NOT_FOUND),  # a key or an object
)


def exit_code_for(exc: BaseException) -> int:
    """The exit code that stands for ``exc``."""
    if isinstance(exc, CommandFailed):
        return exc.code
    for types, code in _EXIT_CODES:
        if isinstance(exc, types):
            return code
    return EXIT_ERROR


def one_line(exc: BaseException | str) -> str:
    """The error's text on one line (its type's name when it has none)."""
    text = " ".join(str(exc).split())
    if not text and isinstance(exc, BaseException):
        return type(exc).__name__
    return text

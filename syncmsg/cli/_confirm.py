"""Confirming what cannot be undone: ``--force``/``-f``, else a question on the terminal.

Commands that delete or stop something (``streams rm``, ``streams purge``, ``consumers rm``,
``consumers pause`` ...) ask "Really ...?" first, as the ``nats`` CLI does, unless given
``--force``. Without a terminal to ask on (a script, a pipe, CI) they never wait for an
answer: they refuse at once, saying to add ``--force``.

Threading: runs on the command's (main) thread.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from syncmsg.cli._exit import EXIT_ERROR, EXIT_USAGE, CommandFailed

__all__ = ["FORCE_OPTION", "confirm"]

F = TypeVar("F", bound=Callable[..., Any])

#: ``-f/--force``: do it without asking.
FORCE_OPTION: Callable[[F], F] = click.option(
    "-f", "--force", is_flag=True, help="Do it without asking first."
)


def _interactive() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def confirm(action: str, *, force: bool, detail: str = "") -> None:
    """Go on if ``force``, or if the user answers yes to "Really <action><detail>?" on the
    terminal (``action`` like ``"delete stream ORDERS"``, ``detail`` like ``" (12 messages)"``).

    Raises :class:`~syncmsg.cli._exit.CommandFailed`: status 2 without a terminal to ask
    on (never waiting for input that cannot come), status 1 when the answer is no.
    """
    if force:
        return
    if not _interactive():
        raise CommandFailed(
            f"refusing to {action} without --force: stdin is not a terminal to confirm on",
            EXIT_USAGE,
        )
    try:
        answer = click.confirm(f"Really {action}{detail}?", default=False, err=True)
    except click.Abort:
        answer = False
    if not answer:
        raise CommandFailed("not confirmed: nothing was done", EXIT_ERROR)

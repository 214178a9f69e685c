"""The ``syncmsg`` command line (also ``python -m syncmsg``), on click and rich.

::

    syncmsg server                                   # a JetStream dev server
    syncmsg -s nats://localhost:4222 --json health   # global options before or after
    syncmsg pub orders.created '{"id": 1}' --js --count 10k
    syncmsg sub 'orders.>' --durable audit --count 10
    syncmsg req time.now / syncmsg reply time.now
    syncmsg streams ensure ORDERS --subjects 'orders.>' --max-age 7d --max-bytes 1GiB
    syncmsg context add prod -s nats://prod:4222 --creds ~/prod.creds --select
    syncmsg bench pub|sub|req|js
    syncmsg services ls|info|stats                   # NATS micro services (ADR-32)
    syncmsg kv add|ls|get|put|del|history|watch      # key-value buckets
    syncmsg object add|ls|put|get|info|rm            # object stores
    syncmsg demo

It needs the ``cli`` extra (click, rich, PyYAML, platformdirs); ``import syncmsg`` never
imports any of them, and :func:`main` says how to install them when they are missing.
See docs/cli.md for the user's view.

Layout: one module per command group, plus shared private helpers:

* ``_app.py``: the root group :data:`~syncmsg.cli._app.app`, the global options
  (accepted before or after any subcommand), :func:`~syncmsg.cli._app.run`;
* ``_connect.py``: options + ``NATS_*`` environment + context -> ``Config`` -> ``Client``;
* ``_output.py``: results (text or JSON lines), tables, status and error lines;
* ``_progress.py``: progress bars with rate and ETA (off without a terminal or with --json);
* ``_units.py``: sizes, durations and counts, parsed and printed (with click types);
* ``_exit.py``: exit codes and the error -> exit code table;
* ``_contexts.py``: the saved contexts' storage; ``_messages.py``: payloads and headers;
* ``_buckets.py``: what ``kv`` and ``object`` share for buckets (options, ``ls`` columns);
* commands: ``server``, ``demo``, ``pub``, ``sub``, ``req`` (req, reply), ``streams``,
  ``health``, ``context``, ``bench``, ``services``, ``kv``, ``object``.

Adding a command group takes one new module and one line, as ``kv`` did (shortened):

1. ``syncmsg/cli/kv.py``::

       from syncmsg.cli._app import app, examples, output, settings
       from syncmsg.cli._connect import connected
       from syncmsg.cli._output import Column

       @app.group("kv", short_help="Key-value buckets.", epilog=examples("syncmsg kv ls"))
       def kv() -> None:
           \"\"\"Key-value buckets: put, get, ls ...\"\"\"

       @kv.command("ls", short_help="List buckets.")
       def ls() -> int:
           \"\"\"List the buckets.\"\"\"
           with connected(settings()) as client:
               ...
           output().table(rows, [Column("name", "NAME"), ...])
           return 0

   Commands made with ``@app.command``/``@app.group`` (and ``@kv.command`` below them)
   accept the global options by themselves; read them with ``settings()``, print with
   ``output()``, raise :class:`~syncmsg.cli._exit.CommandFailed` for an expected failure,
   and take sizes and durations with the types of ``_units`` (``SIZE``, ``DURATION``).
2. Add ``kv`` to the import of command modules in ``syncmsg/cli/_main.py``: importing a
   module registers its commands.

Long work shows progress with ``with output().progress("uploading", total=size,
unit="bytes") as bar: bar.advance(len(chunk))`` (see ``_progress.py``). A subcommand of an
existing group (``streams rm``) is one more ``@streams.command(...)`` in its module.
tests/cli/test_cli_help.py walks every registered command: each needs a ``short_help``
ending in a full stop, a docstring, an ``examples(...)`` epilog and help on every option.

Threading: commands run on the main thread (see each module for its workers).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from syncmsg.cli._exit import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CommandFailed,
    exit_code_for,
)

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
    "main",
]

#: The ``cli`` extra's import names, and what to install when one is missing.
_EXTRA = {"click", "rich", "yaml", "platformdirs"}
_INSTALL = "pip install 'syncmsg[cli]'"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    try:
        from syncmsg.cli._main import run
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in _EXTRA:
            raise
        print(
            f"syncmsg: error: the command line needs the cli extra ({exc.name} is missing): "
            f"{_INSTALL}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return run(argv)

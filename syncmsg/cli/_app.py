"""The root ``syncmsg`` group, the global options, and running a command line.

Global options (``-s/--server``, ``--json``, ``--timeout``, the credentials, ``--context``,
``--progress``, ``--quiet``) are attached to every group and command by :class:`Command`
and :class:`Group`, so that they are accepted before or after the subcommand, as the
``nats`` CLI accepts them: ``syncmsg -s URL --json health`` and ``syncmsg health -s URL
--json`` are the same. Their values are gathered in the invocation's :class:`Settings`
(read it with :func:`settings`); a value given later on the line wins. Commands are
registered on :data:`app` by the command modules (see :mod:`syncmsg.cli`).

Threading: :func:`run` and the commands run on the main thread; SIGTERM is turned into
KeyboardInterrupt there, so Ctrl-C and ``kill`` end a command the same clean way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any, TypeVar

import click

import syncmsg
from syncmsg._errors import SyncMsgError
from syncmsg.cli._exit import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    exit_code_for,
    one_line,
)
from syncmsg.cli._output import Output, StderrLogHandler
from syncmsg.cli._units import SECONDS

__all__ = ["Command", "Group", "Settings", "app", "examples", "output", "run", "settings"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass
class Settings:
    """The global options of one invocation (None: not given on the command line)."""

    server: str | None = None
    json: bool = False
    timeout: float | None = None
    context: str | None = None
    user: str | None = None
    password: str | None = None
    token: str | None = None
    creds: str | None = None
    nkey: str | None = None
    tlscert: str | None = None
    tlskey: str | None = None
    tlsca: str | None = None
    progress: bool | None = None
    quiet: bool = False
    _output: Output | None = dataclasses.field(default=None, repr=False)

    def __repr__(self) -> str:  # never a password or a token in a repr
        given = [f.name for f in dataclasses.fields(self) if f.name != "_output"]
        shown = ", ".join(
            f"{name}=..." for name in given if getattr(self, name) not in (None, False)
        )
        return f"Settings({shown})"

    def output(self) -> Output:
        """This invocation's :class:`~syncmsg.cli._output.Output` (made once)."""
        if self._output is None:
            self._output = Output(json=self.json, quiet=self.quiet, progress=self.progress)
        return self._output


def settings() -> Settings:
    """The running invocation's :class:`Settings`."""
    obj = click.get_current_context().find_root().obj
    assert isinstance(obj, Settings), "run the command line through syncmsg.cli.main"
    return obj


def output() -> Output:
    """The running invocation's :class:`~syncmsg.cli._output.Output`."""
    return settings().output()


# ============================================================================ global options


class GlobalOption(click.Option):
    """An option every command accepts, stored in :class:`Settings` rather than passed on."""

    def __init__(self, decls: Sequence[str], **attrs: Any) -> None:
        super().__init__(decls, expose_value=False, callback=_remember, **attrs)


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Store an option given on the command line (not a default: an option given before
    the subcommand must survive the subcommand's own copy of it, left at its default)."""
    if param.name is None:  # pragma: no cover - every global option has a name
        return
    if ctx.get_parameter_source(param.name) is not click.core.ParameterSource.COMMANDLINE:
        return
    setattr(ctx.find_root().ensure_object(Settings), param.name, value)


def _global_options() -> list[click.Parameter]:
    """A fresh set of the global options (click binds each option to one command)."""
    file = click.Path(dir_okay=False)
    return [
        GlobalOption(
            ["-s", "--server", "--url", "server"],
            metavar="URL",
            help="Server URL(s), comma-separated. [env NATS_URL; default nats://localhost:4222]",
        ),
        GlobalOption(["--json"], is_flag=True, help="Print JSON: one object per line, on stdout."),
        GlobalOption(
            ["--timeout"],
            type=SECONDS,
            help="Connection and per-call timeout, e.g. 2s, 500ms. [env NATS_TIMEOUT; default 5s]",
        ),
        GlobalOption(
            ["--context"],
            metavar="NAME",
            help="Use this saved context. [env NATS_CONTEXT; default: the selected one]",
        ),
        GlobalOption(["--user"], metavar="USER", help="User name. [env NATS_USER]"),
        GlobalOption(["--password"], metavar="PASSWORD", help="Password. [env NATS_PASSWORD]"),
        GlobalOption(["--token"], metavar="TOKEN", help="Authentication token. [env NATS_TOKEN]"),
        GlobalOption(
            ["--creds"], type=file, help="Credentials file (JWT and seed). [env NATS_CREDS]"
        ),
        GlobalOption(
            ["--nkey"], type=file, help="File holding an NKey seed. [env NATS_NKEY_SEED: the seed]"
        ),
        GlobalOption(["--tlscert"], type=file, help="TLS client certificate. [env NATS_TLS_CERT]"),
        GlobalOption(["--tlskey"], type=file, help="TLS client key. [env NATS_TLS_KEY]"),
        GlobalOption(["--tlsca"], type=file, help="CA to verify the server. [env NATS_TLS_CA]"),
        GlobalOption(
            ["--progress/--no-progress"],
            default=None,
            help="Show progress bars even off a terminal, or never. [default: on a terminal, "
            "without --json]",
        ),
        GlobalOption(
            ["-q", "--quiet"], is_flag=True, help="No status lines or progress on stderr."
        ),
    ]


#: The global options as listed in a subcommand's help (the root's help explains them).
_GLOBAL_SUMMARY = (
    "-s/--server URL, --json, --timeout DURATION, --context NAME, --user USER, "
    "--password PASSWORD, --token TOKEN, --creds FILE, --nkey FILE, --tlscert FILE, "
    "--tlskey FILE, --tlsca FILE, --progress/--no-progress, -q/--quiet"
)


class _GlobalOptionsMixin:
    """Adds the global options to a command, and lists them apart in its help."""

    params: list[click.Parameter]

    def _add_global_options(self) -> None:
        self.params.extend(_global_options())

    def _format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        own: list[tuple[str, str]] = []
        shared: list[tuple[str, str]] = []
        for param in self.get_params(ctx):  # type: ignore[attr-defined]
            record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
            if record is not None:
                (shared if isinstance(param, GlobalOption) else own).append(record)
        if own:
            with formatter.section("Options"):
                formatter.write_dl(own)
        if ctx.parent is None:
            with formatter.section("Global options (also accepted after the command)"):
                formatter.write_dl(shared)
        else:
            with formatter.section(
                "Global options (before or after the command; see syncmsg --help)"
            ):
                width = max((formatter.width or 80) - formatter.current_indent, 40)
                for line in textwrap.wrap(_GLOBAL_SUMMARY, width, break_on_hyphens=False):
                    formatter.write(" " * formatter.current_indent + line + "\n")


class Command(_GlobalOptionsMixin, click.Command):
    """A command that accepts the global options."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._add_global_options()

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._format_options(ctx, formatter)


class Group(_GlobalOptionsMixin, click.Group):
    """A group whose commands and subgroups accept the global options."""

    command_class = Command
    group_class = type  # subgroups are Groups too

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._add_global_options()

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.format_commands(ctx, formatter)
        self._format_options(ctx, formatter)


def examples(*lines: str, notes: str = "") -> str:
    """An epilog of example command lines, kept as written in ``--help`` (``\\b``)."""
    text = "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
    return text + (f"\n\n{notes}" if notes else "")


_CONTEXT_SETTINGS: dict[str, Any] = {
    "help_option_names": ["-h", "--help"],
    "max_content_width": 100,
}


@click.group(
    "syncmsg",
    cls=Group,
    context_settings=_CONTEXT_SETTINGS,
    epilog=examples(
        "syncmsg server                                  # a local JetStream server",
        "syncmsg -s nats://localhost:4222 --json health",
        "syncmsg pub orders.created '{\"id\": 1}' --js",
        "syncmsg sub 'orders.>' --count 10",
        "syncmsg streams ensure ORDERS --subjects 'orders.>' --max-age 7d --max-bytes 1GiB",
        "syncmsg context add prod -s nats://prod:4222 --creds ~/prod.creds --select",
        "syncmsg bench pub --msgs 100k --size 128B",
        notes="Sizes: 512B, 64KiB, 1.5MiB, 1GiB (K, KB and KiB all mean 1024). Durations: "
        "500ms, 90s, 1h30m, 7d, 2w. Counts: 1000, 10k, 1.5M. Configuration: the options, else "
        "the NATS_* environment, else the selected context, else the defaults.\n\n"
        "Exit codes: 0 ok, 1 error, 2 usage or configuration, 3 no server or unhealthy, "
        "4 timeout, 5 not found (no responders, no such stream or context), 130 interrupted.",
    ),
)
@click.version_option(
    syncmsg.__version__, "--version", "-V", prog_name="syncmsg", message="%(prog)s %(version)s"
)
def app() -> None:
    """NATS and JetStream from the command line, through syncmsg.

    Publish, subscribe, request and reply; manage streams; run a development server;
    measure throughput; save server and credential sets as contexts.
    """


# ============================================================================ running


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends a command like Ctrl-C does (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _library_warnings(state: Settings) -> Iterator[None]:
    """The library's warnings through the Output, unless logging is configured already."""
    logger = logging.getLogger("syncmsg")
    if logger.handlers or logging.getLogger().handlers:
        yield
        return
    handler = StderrLogHandler(state.output)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _usage_line(exc: click.UsageError) -> str:
    text = one_line(exc.format_message())
    if exc.ctx is not None:
        text += f" (see: {exc.ctx.command_path} --help)"
    return text


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the command, return its exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    state = Settings()
    try:
        with (
            _sigterm_as_interrupt(),
            _library_warnings(state),
            app.make_context("syncmsg", args, obj=state) as ctx,
        ):
            result = app.invoke(ctx)
        return EXIT_OK if result is None else int(result)
    except click.exceptions.Exit as exc:  # --help, --version
        return int(exc.exit_code)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.format_message(), err=True)
        return EXIT_USAGE
    except click.UsageError as exc:
        state.output().error(_usage_line(exc))
        return EXIT_USAGE
    except click.ClickException as exc:
        state.output().error(one_line(exc.format_message()))
        return int(exc.exit_code)
    except (KeyboardInterrupt, click.Abort):
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `syncmsg sub x | head -1`
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except SyncMsgError as exc:
        state.output().error(one_line(exc))
        return exit_code_for(exc)

"""Every command's --help reads well; `import syncmsg` needs none of the CLI's libraries."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import click
import pytest

from syncmsg.cli import main
from syncmsg.cli._main import app


def _commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


ALL = list(_commands(app))


def test_every_command_is_there() -> None:
    names = {" ".join(path) for path, _ in ALL}
    expected = {"server", "demo", "pub", "sub", "req", "reply", "health", "streams ensure",
                "streams ls", "streams info", "context add", "context ls", "context select",
                "context show", "context rm", "bench pub", "bench sub", "bench req", "bench js",
                "streams rm", "streams purge", "streams view", "streams get", "consumers ls",
                "consumers info", "consumers add", "consumers rm", "consumers pause",
                "consumers resume", "consumers unpin", "consumers reset"}  # fmt: skip
    assert expected <= names


@pytest.mark.parametrize("path", [path for path, _ in ALL], ids=" ".join)
def test_help_reads_well(path: tuple[str, ...], capsys: Any) -> None:
    assert main([*path, "--help"]) == 0
    text = capsys.readouterr().out
    command = dict(ALL)[path]
    assert text.startswith(f"Usage: syncmsg {' '.join(path)} ")
    assert command.short_help and len(command.short_help) <= 80 and command.short_help.endswith(".")
    assert command.help and "\n\n" in text
    assert "Examples:\n    syncmsg " in text  # every command shows how it is used
    assert "Global options (before or after the command" in text
    assert "-s/--server URL" in text and "--json" in text
    for line in text.splitlines():
        assert len(line) <= 100, line
    for option in command.params:
        if isinstance(option, click.Option) and not option.hidden:
            assert option.help, f"{path} {option.opts} has no help"
    if any(getattr(p.type, "name", "") in ("size", "duration") for p in command.params):
        assert "e.g." in text or "(" in text  # units are shown by example


def test_root_help_lists_commands_units_and_exit_codes(capsys: Any) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for name in (
        "bench",
        "context",
        "demo",
        "health",
        "pub",
        "reply",
        "req",
        "server",
        "streams",
        "sub",
    ):
        assert f"\n  {name} " in text
    assert "Global options (also accepted after the command):" in text
    assert "K, KB and KiB all mean 1024" in text and "1h30m" in text
    assert "Exit codes: 0 ok, 1 error, 2 usage" in text
    assert main(["-h"]) == 0


def test_import_syncmsg_needs_no_cli_library() -> None:
    code = (
        "import sys, syncmsg, syncmsg.jetstream, syncmsg.testing\n"
        "loaded = {'click', 'rich', 'yaml', 'platformdirs'} & {m.split('.')[0] for m in sys.modules}\n"
        "assert not loaded, loaded\n"
        "import syncmsg.cli\n"  # the package itself defers them to main()
        "loaded = {'click', 'rich', 'yaml', 'platformdirs'} & {m.split('.')[0] for m in sys.modules}\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_python_dash_m_and_the_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "syncmsg", "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stdout.startswith("syncmsg ")
    from importlib.metadata import entry_points

    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "syncmsg"]
    assert script.value == "syncmsg.cli:main"

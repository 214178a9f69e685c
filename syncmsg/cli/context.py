"""``syncmsg context add|ls|select|show|rm``: saved server and credential sets.

The storage is :mod:`syncmsg.cli._contexts`; how a context combines with the options and
the ``NATS_*`` environment is :mod:`syncmsg.cli._connect`'s.

Threading: runs on the main thread.
"""

from __future__ import annotations

import click

from syncmsg.cli._app import Settings, app, examples, output, settings
from syncmsg.cli._contexts import FIELDS, ContextStore, masked
from syncmsg.cli._exit import EXIT_OK, EXIT_USAGE, CommandFailed
from syncmsg.cli._output import Column

__all__ = ["context"]

#: Global option (Settings attribute) -> context key.
_FROM_SETTINGS = {
    "server": "url",
    "user": "user",
    "password": "password",
    "token": "token",
    "creds": "creds",
    "nkey": "nkey",
    "tlscert": "cert",
    "tlskey": "key",
    "tlsca": "ca",
}


@app.group(
    "context",
    short_help="Saved server and credential sets: add, ls, select, show, rm.",
    epilog=examples(
        "syncmsg context add local -s nats://localhost:4222 --select",
        "syncmsg context add prod -s nats://prod-1:4222,nats://prod-2:4222 --creds ~/prod.creds",
        "syncmsg --context prod streams ls",
        "syncmsg context select prod",
        "syncmsg context show",
        notes="A command uses --context NAME, else NATS_CONTEXT, else the selected context; "
        "options and NATS_* variables override what the context says.",
    ),
)
def context() -> None:
    """Save named sets of server URLs and credentials, like the nats CLI's contexts.

    They live in your config directory (~/.config/syncmsg/contexts/ on Linux), readable
    by you only (mode 0600), with the nats CLI's keys. Passwords and tokens are never
    printed.
    """


def _from_settings(state: Settings) -> dict[str, str]:
    values = {}
    for attribute, key in _FROM_SETTINGS.items():
        value = getattr(state, attribute)
        if value is not None:
            values[key] = str(value)
    return values


def _describe(values: dict[str, str]) -> str:
    shown = masked(values)
    parts = [f"{key} {shown[key]}" for key in FIELDS if key in shown and key != "description"]
    return ", ".join(parts) or "no settings"


@context.command(
    "add",
    short_help="Save a context (or update one).",
    epilog=examples(
        "syncmsg context add local -s nats://localhost:4222 --select",
        "syncmsg context add prod -s tls://prod:4222 --creds ~/prod.creds --tlsca ~/ca.pem",
        'syncmsg context add ci -s nats://ci:4222 --user ci --password "$NATS_CI_PASSWORD"',
    ),
)
@click.argument("name")
@click.option("--description", help="What the context is for.")
@click.option("--select", "select_it", is_flag=True, help="Also make it the selected context.")
@click.option("--replace", is_flag=True, help="Forget the context's earlier settings first.")
def add(name: str, description: str | None, select_it: bool, replace: bool) -> int:
    """Save the global options given here (-s, --user, --password, --token, --creds,
    --nkey, --tlscert, --tlskey, --tlsca) as context NAME.

    An existing context keeps the settings not given again, unless --replace. File paths
    are stored as given (make them absolute, or use ~); the file is readable by you only.
    """
    out = output()
    store = ContextStore()
    state = settings()
    if state.context:
        raise CommandFailed(
            "--context selects a context to use; here give the NAME to save", EXIT_USAGE
        )
    values = {} if replace or not store.exists(name) else store.load(name)
    existed = store.exists(name)
    values.update(_from_settings(state))
    if description is not None:
        values["description"] = description
    path = store.save(name, values)
    if select_it:
        store.select(name)
    action = "updated" if existed else "saved"
    out.emit(
        {
            "name": name,
            "action": action,
            "selected": select_it,
            "path": str(path),
            **masked(values),
        },
        f"{action} context {name} ({_describe(values)})" + ("; selected" if select_it else ""),
    )
    return EXIT_OK


@context.command(
    "ls",
    short_help="List the saved contexts.",
    epilog=examples("syncmsg context ls", "syncmsg context ls --json | jq -r .name"),
)
def ls() -> int:
    """List the saved contexts; the selected one is marked with '*'."""
    out = output()
    store = ContextStore()
    selected = store.selected()
    rows = []
    for name in store.names():
        try:
            values = masked(store.load(name))
        except CommandFailed as exc:
            out.warning(str(exc))
            continue
        rows.append({"name": name, "selected": name == selected, **values})
    out.table(
        rows,
        [
            Column("selected", "", lambda chosen: "*" if chosen else ""),
            Column("name", "NAME"),
            Column("url", "SERVER", lambda url: url or "(default)"),
            Column("description", "DESCRIPTION", lambda text: text or ""),
        ],
        empty="no contexts (add one: syncmsg context add NAME -s URL)",
    )
    return EXIT_OK


@context.command(
    "select",
    short_help="Choose the context that commands use.",
    epilog=examples("syncmsg context select prod", "syncmsg context select --none"),
)
@click.argument("name", required=False)
@click.option("--none", "clear", is_flag=True, help="Select no context.")
def select(name: str | None, clear: bool) -> int:
    """Make NAME the context that commands use when neither --context nor NATS_CONTEXT
    says otherwise (--none: no context)."""
    out = output()
    if bool(name) == clear:
        raise CommandFailed("give a context NAME, or --none", EXIT_USAGE)
    ContextStore().select(None if clear else name)
    out.emit(
        {"selected": None if clear else name},
        "no context selected" if clear else f"selected context {name}",
    )
    return EXIT_OK


@context.command(
    "show",
    short_help="Show a context (secrets masked).",
    epilog=examples("syncmsg context show", "syncmsg context show prod --json"),
)
@click.argument("name", required=False)
def show(name: str | None) -> int:
    """Show context NAME (default: the one in use), with passwords and tokens masked."""
    out = output()
    store = ContextStore()
    state = settings()
    name = name or state.context or store.selected()
    if not name:
        raise CommandFailed(
            "no context selected; give a NAME (see: syncmsg context ls)", EXIT_USAGE
        )
    values = masked(store.load(name))
    selected = store.selected() == name
    if out.json:
        out.emit(
            {"name": name, "selected": selected, "path": str(store.path(name)), **values}, None
        )
        return EXIT_OK
    rows = [(key, values[key]) for key in FIELDS if key in values]
    rows.append(("file", str(store.path(name))))
    out.fields(f"context {name}" + (" (selected)" if selected else ""), rows)
    return EXIT_OK


@context.command(
    "rm", short_help="Delete a saved context.", epilog=examples("syncmsg context rm old")
)
@click.argument("name")
def rm(name: str) -> int:
    """Delete context NAME (if it was selected, no context is selected any more)."""
    out = output()
    ContextStore().remove(name)
    out.emit({"name": name, "action": "removed"}, f"removed context {name}")
    return EXIT_OK

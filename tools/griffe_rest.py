"""A griffe extension that lets mkdocstrings render syncmsg's reST-flavoured docstrings.

syncmsg's docstrings are written for ``help()`` and for readers of the source: Sphinx roles
(``:class:`~syncmsg.TimeoutError```, ``:meth:`close```) and literal blocks introduced by
``::``. mkdocstrings renders docstrings as Markdown, where both would show up verbatim.
This extension rewrites them, in memory and only for the site:

* a role becomes a cross-reference that autorefs turns into a link when the target is
  rendered somewhere in the site, and into plain code when it is not (a private module,
  the standard library), so an unrendered target never fails ``mkdocs build --strict``;
* ``text::`` followed by an indented block becomes ``text:`` and a fenced code block
  (``python`` when the block parses as Python, ``text`` otherwise).

Wired in mkdocs.yml under the python handler's ``extensions``. Runs in the mkdocs process.
"""

from __future__ import annotations

import ast
import html
import re
import textwrap
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(class|func|meth|mod|exc|attr|data|obj|const):`([^`]+)`")
EXPLICIT_TITLE = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^<>]+)>$")
CALLABLE_ROLES = {"func", "meth"}


class RestDocstrings(griffe.Extension):
    """Rewrite Sphinx roles and ``::`` literal blocks of every docstring into Markdown."""

    def on_object(self, *, obj: griffe.Object, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        _rewrite(obj)

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        _rewrite(pkg)  # on_object covers the members, not the package itself


def _rewrite(obj: griffe.Object) -> None:
    if obj.docstring is not None:
        obj.docstring.value = to_markdown(obj.docstring.value, obj)


def to_markdown(text: str, scope: griffe.Object) -> str:
    """The docstring ``text`` of ``scope`` with roles and literal blocks in Markdown."""
    text = literal_blocks_to_fences(text)
    return ROLE.sub(lambda match: _reference(match[1], match[2], scope), text)


def _reference(role: str, content: str, scope: griffe.Object) -> str:
    explicit = EXPLICIT_TITLE.match(content)
    if explicit:
        title, target = explicit["title"], explicit["target"]
    else:
        target = content
        shortened = target.startswith("~")
        target = target.lstrip("~.")
        title = target.rsplit(".", 1)[-1] if shortened else target
        if role in CALLABLE_ROLES:
            title += "()"
    identifier = _resolve(target.lstrip("~."), scope)
    return (
        f'<autoref identifier="{html.escape(identifier)}" optional>'
        f"<code>{html.escape(title)}</code></autoref>"
    )


def _resolve(target: str, scope: griffe.Object) -> str:
    """The full path of ``target`` as Python would look it up from ``scope``."""
    if target.split(".", 1)[0] in {"syncmsg", "nats", "pydantic", "django"}:
        return target
    head, _, rest = target.partition(".")
    try:
        resolved = scope.resolve(head)
    except (griffe.NameResolutionError, griffe.AliasResolutionError, KeyError, ValueError):
        return target
    return f"{resolved}.{rest}" if rest else resolved


def literal_blocks_to_fences(text: str) -> str:
    """Turn reST ``::`` literal blocks into fenced Markdown code blocks."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.rstrip()
        if not stripped.endswith("::"):
            out.append(line)
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        block: list[str] = []
        while j < len(lines) and (
            not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent
        ):
            block.append(lines[j])
            j += 1
        while block and not block[-1].strip():
            block.pop()
        if not block:
            out.append(line)
            i += 1
            continue
        intro = stripped[:-2].rstrip()
        if intro.strip():
            out.append(intro + ":")
        code = textwrap.dedent("\n".join(block))
        pad = " " * indent
        out.extend(["", f"{pad}```{_language(code)}"])
        out.extend(f"{pad}{code_line}" if code_line else "" for code_line in code.splitlines())
        out.extend([f"{pad}```", ""])
        i = j
    return "\n".join(out)


def _language(code: str) -> str:
    try:
        ast.parse(code)
    except SyntaxError:
        return "text"
    return "python"

"""The layering, read from the source: no import circles, the core never imports JetStream,
and JetStream uses no private member of Client or Connection."""

from __future__ import annotations

import ast
from pathlib import Path

import syncmsg

PACKAGE = Path(syncmsg.__file__).parent
CORE = sorted(p for p in PACKAGE.glob("_*.py") if not p.name.startswith("__"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(path: Path) -> set[str]:
    """Modules imported when ``path`` is imported: module level, outside TYPE_CHECKING."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    package = (
        _module_name(path).rpartition(".")[0] if path.name != "__init__.py" else _module_name(path)
    )

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{parent}.{base}" if base else parent
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return {name for name in found if name.startswith("syncmsg")}


def _all_modules() -> dict[str, Path]:
    return {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def test_the_core_never_imports_jetstream() -> None:
    for path in CORE:
        imported = _runtime_imports(path)
        assert not {m for m in imported if m.startswith("syncmsg.jetstream")}, path.name


def test_there_are_no_import_circles() -> None:
    modules = _all_modules()
    graph = {
        name: {m for m in _runtime_imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }
    # A package's __init__ re-exports its modules: importing ``pkg.mod`` runs ``pkg``
    # first, so edges into a package's own modules from its __init__ are not circles.
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> bool:
        state[node] = 1
        for nxt in graph[node]:
            if nxt.startswith(node + ".") and modules[node].name == "__init__.py":
                continue
            if state.get(nxt) == 1:
                cycle.extend([*stack, node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, [*stack, node]):
                return True
        state[node] = 2
        return False

    for name in graph:
        if state.get(name) is None and visit(name, []):
            break
    assert not cycle, " -> ".join(cycle)


def _private_members(path: Path, class_name: str) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in ast.walk(node):
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(item.name)
                elif isinstance(item, ast.Attribute) and isinstance(item.ctx, ast.Store):
                    names.add(item.attr)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def _own_members(paths: list[Path]) -> set[str]:
    """Names the JetStream layer defines itself (or inherits from the core's subscription
    base class, whose protected members are meant for subclasses)."""
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
    return names


def test_jetstream_uses_no_private_member_of_client_or_connection() -> None:
    private = _private_members(PACKAGE / "_client.py", "Client") | _private_members(
        PACKAGE / "_connection.py", "Connection"
    )
    layer = sorted((PACKAGE / "jetstream").rglob("*.py"))
    allowed = _own_members([*layer, PACKAGE / "_subscription.py", PACKAGE / "_msg.py"])
    offenders: list[str] = []
    for path in layer:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in private - allowed:
                offenders.append(f"{path.name}:{node.lineno} .{node.attr}")
    assert not offenders


def test_every_core_module_names_its_threads() -> None:
    for path in CORE:
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        assert "thread" in doc.lower(), f"{path.name}: the docstring does not name its threads"

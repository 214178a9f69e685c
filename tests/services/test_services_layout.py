"""The services package's layout rules, read from the source (as tests/core/test_structure.py
reads the core's): each module names its threads, and the package loads only when used."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import syncmsg.services

pytestmark = pytest.mark.timeout(60)

PACKAGE = Path(syncmsg.services.__file__).parent


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("_*.py")), ids=lambda p: p.name)
def test_every_module_names_its_threads(path: Path) -> None:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert "thread" in doc.lower(), f"{path.name}: the docstring does not name its threads"


def test_importing_syncmsg_does_not_import_services() -> None:
    code = "import sys, syncmsg; c = syncmsg.Client; print('syncmsg.services' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.strip() == "False"


def test_exported_names_print_as_public() -> None:
    assert syncmsg.services.Service.__module__ == "syncmsg.services"
    assert repr(syncmsg.services.ServiceError) == "<class 'syncmsg.services.ServiceError'>"

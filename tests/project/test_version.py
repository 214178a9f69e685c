"""One version: ``syncmsg.__version__``, read by the package metadata and the CLI."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import syncmsg


def test_package_metadata_reads_the_version_from_the_package() -> None:
    assert importlib.metadata.version("syncmsg") == syncmsg.__version__


def test_version_flag_prints_it() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "syncmsg", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"syncmsg {syncmsg.__version__}"

"""Print the oldest and the newest supported CPython on this machine, one path a line.

"Supported" is pyproject.toml's ``requires-python`` lower bound (``>=3.X``). Interpreters
are looked for in pyenv's versions (``$PYENV_ROOT``, ``pyenv root``, ``~/.pyenv``) and as
``python3.N`` on ``PATH``; each is asked for its own version, so a stale or broken one is
left out. Interpreters of the same minor version as ``--except`` (CI's main interpreter,
which runs the suite already) are left out too. Prints nothing, and says why on stderr,
when there is nothing to add. Run by ``.ci/run`` with the machine's ``python3``.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = (
    "import platform, sys, sysconfig; "
    "print(platform.python_implementation(), *sys.version_info[:3], "
    "int(bool(sysconfig.get_config_var('Py_GIL_DISABLED'))))"
)


def minimum_supported() -> tuple[int, int]:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^requires-python\s*=\s*"\s*>=\s*(\d+)\.(\d+)', text, re.MULTILINE)
    if match is None:
        raise SystemExit('pythons.py: no requires-python = ">=X.Y" in pyproject.toml')
    return int(match[1]), int(match[2])


def candidates() -> list[str]:
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    pyenv = shutil.which("pyenv")
    if pyenv:
        found = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False)
        roots.append(found.stdout.strip())
    paths = [
        path
        for root in dict.fromkeys(r for r in roots if r)
        for path in sorted(glob.glob(os.path.join(root, "versions", "*", "bin", "python3")))
    ]
    for minor in range(6, 30):
        on_path = shutil.which(f"python3.{minor}")
        if on_path:
            paths.append(on_path)
    return list(dict.fromkeys(paths))


def version_of(python: str) -> tuple[int, int, int] | None:
    """The CPython version of ``python`` with the GIL, or None (PyPy, free-threaded, broken)."""
    try:
        out = subprocess.run(
            [python, "-c", PROBE], capture_output=True, text=True, timeout=30, check=True
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    if len(out) != 5 or out[0] != "CPython":
        return None
    major, minor, micro = (int(part) for part in out[1:4])
    return None if out[4] == "1" else (major, minor, micro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--except", dest="skip", default=sys.executable, help="a python")
    args = parser.parse_args()
    skip = version_of(args.skip)
    floor = minimum_supported()
    found: dict[tuple[int, int, int], str] = {}
    for python in candidates():
        version = version_of(python)
        if version is not None and version[:2] >= floor:
            found.setdefault(version, python)
    if not found:
        print(f"pythons.py: no CPython >= {floor[0]}.{floor[1]} found", file=sys.stderr)
        return
    chosen = {found[min(found)], found[max(found)]}
    for version in sorted(found):
        python = found[version]
        if python not in chosen:
            continue
        if skip is not None and version[:2] == skip[:2]:
            print(
                f"pythons.py: {python} ({'.'.join(map(str, version))}) is the main run's "
                "minor version; not run twice",
                file=sys.stderr,
            )
            continue
        print(python)


if __name__ == "__main__":
    main()

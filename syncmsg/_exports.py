"""Make re-exported names print as their public module: ``syncmsg.RemoteError``.

Threading: runs once, at import time, on the importing thread.

Classes and functions are defined in private modules (``syncmsg._errors``) and re-exported
by a package's ``__init__``. Python prints them by their ``__module__``, so a traceback
would say ``syncmsg._errors.RemoteError``. Like httpx, each package rewrites ``__module__``
on the names it exports, so that tracebacks, reprs and docs show the name to import.
"""

from __future__ import annotations

from types import ModuleType

__all__ = ["present_as_public"]


def present_as_public(package: ModuleType) -> None:
    """Set ``__module__`` to ``package.__name__`` on each class and function it exports.

    Only names defined in the package's own private modules (``<package>._<name>``) are
    changed: a name a package merely re-exports from elsewhere (``syncmsg.JetStream``,
    which lives in ``syncmsg.jetstream``) keeps the module that exports it itself. Values
    without a writable ``__module__`` (constants, type aliases) are skipped. Pickling still
    works, because every changed name is an attribute of the package.
    """
    private_prefix = f"{package.__name__}._"
    for name in getattr(package, "__all__", ()):
        value = getattr(package, name, None)
        module = getattr(value, "__module__", None)
        if not (isinstance(value, type) or callable(value)) or not isinstance(module, str):
            continue
        if module.startswith(private_prefix):
            value.__module__ = package.__name__

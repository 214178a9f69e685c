"""System checks (``manage.py check``) for the ``SYNCMSG`` setting.

They validate the setting without connecting to NATS.
"""

from __future__ import annotations

from typing import Any

from syncmsg._errors import ConfigurationError

__all__ = ["check_settings"]


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """``syncmsg.E001``: ``settings.SYNCMSG`` is invalid (with the reason)."""
    from django.core import checks

    from syncmsg.django import conf

    try:
        conf.load()
    except ConfigurationError as exc:
        return [
            checks.Error(
                str(exc),
                hint="See docs/django.md for the keys of the SYNCMSG setting.",
                id="syncmsg.E001",
            )
        ]
    return []

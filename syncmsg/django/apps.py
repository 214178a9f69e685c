"""The Django app: add ``"syncmsg.django"`` to ``INSTALLED_APPS``.

Loading the app does not connect: commands such as ``migrate`` work without a NATS
server. The process client connects on first use (:func:`syncmsg.django.get_client`).
"""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class SyncmsgConfig(AppConfig):  # type: ignore[misc]  # Django ships no type hints
    name = "syncmsg.django"
    label = "syncmsg"
    verbose_name = "syncmsg (NATS)"

    def ready(self) -> None:
        from django.core import checks
        from django.core.signals import setting_changed

        from syncmsg.django.checks import check_settings

        checks.register(check_settings, "syncmsg")
        setting_changed.connect(_setting_changed, dispatch_uid="syncmsg.django.settings")


def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    """``override_settings(SYNCMSG=...)``: the next get_client() uses the new settings."""
    if setting == "SYNCMSG":
        from syncmsg.django import conf
        from syncmsg.django._process import close_client

        conf.clear()
        close_client(timeout=2.0)

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CallsConfig(AppConfig):
    name = "calls"
    verbose_name = _("Calls")

    def ready(self) -> None:
        from .realtime.access import connect_signals  # noqa: PLC0415 (models must be loaded first)

        connect_signals()

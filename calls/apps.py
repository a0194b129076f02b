from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CallsConfig(AppConfig):
    name = "calls"
    verbose_name = _("Calls")

    def ready(self) -> None:
        from .realtime.access import connect_signals  # noqa: PLC0415 (models must be loaded first)

        connect_signals()

        # Every admin module is imported by now (the admin app, first in INSTALLED_APPS, autodiscovers
        # them in its ready()): other apps' change lists get the same answer to dates past the range.
        from .admin_dates import guard_every_change_list  # noqa: PLC0415 (the admin must be loaded)

        guard_every_change_list()

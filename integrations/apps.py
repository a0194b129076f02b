from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = _("MTT integration")

    def ready(self) -> None:
        from . import checks  # noqa: F401, PLC0415 - registers the system checks (Django's documented place)

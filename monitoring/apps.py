from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = _("Monitoring")

    def ready(self) -> None:
        from . import checks  # noqa: F401, PLC0415 - registers the system check of HEALTH_BUSINESS_HOURS (Django's documented place)

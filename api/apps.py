from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = _("API")

    def ready(self) -> None:
        # Registers the token's security scheme with drf-spectacular (an import is how extensions register).
        from . import schema  # noqa: F401, PLC0415

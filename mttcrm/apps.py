from __future__ import annotations

from axes.apps import AppConfig as AxesAppConfig
from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.utils.translation import gettext_lazy as _

from . import checks, sqlite  # noqa: F401  (checks registers our system checks)


class CoreConfig(AppConfig):
    name = "mttcrm"
    verbose_name = "mttcrm"

    def ready(self) -> None:
        connection_created.connect(sqlite.install, dispatch_uid="mttcrm.sqlite.unicode_like")


class AxesConfig(AxesAppConfig):
    """django-axes names no app, so the admin's menu showed its label, "Axes", in English: Django's way to
    rename a third-party app is a config of one's own (docs: "Configuring applications", for users)."""

    verbose_name = _("Login attempts")


class ChannelsLiteConfig(AppConfig):
    """channels-lite (the channel layer of a machine without Redis, `make run`) names no app, so the admin's
    permission lists read "Channels_Lite": named here as AxesConfig names django-axes."""

    name = "channels_lite"
    verbose_name = _("Live connections without Redis")

from __future__ import annotations

from django.apps import AppConfig
from django.db.backends.signals import connection_created

from . import checks, sqlite  # noqa: F401  (checks registers our system checks)


class CoreConfig(AppConfig):
    name = "mttcrm"
    verbose_name = "mttcrm"

    def ready(self) -> None:
        connection_created.connect(sqlite.install, dispatch_uid="mttcrm.sqlite.unicode_like")

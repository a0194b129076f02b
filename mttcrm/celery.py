from __future__ import annotations

import os

from celery import Celery
from django.conf import settings

from mttcrm.logs import connect_celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mttcrm.settings")

app = Celery("mttcrm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Workers and beat log through Django's LOGGING (LOG_FORMAT, secrets masked), tasks tagged in JSON lines.
connect_celery()


def _ensure_filesystem_broker_dirs() -> None:
    """kombu's filesystem transport expects its folders to exist (the embedded default broker)."""
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        folder = options.get(key)
        if folder:
            os.makedirs(folder, exist_ok=True)


_ensure_filesystem_broker_dirs()

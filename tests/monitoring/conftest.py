from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import translation


@pytest.fixture(autouse=True)
def _english(settings: Any) -> Iterator[None]:
    # The assertions read the English source strings, whatever the catalogue translates them to.
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def _health_defaults(settings: Any) -> Iterator[None]:
    settings.HEALTH_SILENCE_HOURS = 2.0
    settings.HEALTH_BUSINESS_HOURS = ""
    settings.HEALTH_INBOX_BACKLOG_MINUTES = 10.0
    settings.HEALTH_RECORDINGS_FAILED = 3
    settings.RECORDINGS_EXPIRY_WARNING_DAYS = 7
    settings.ADMINS = [("Ops", "ops@example.com")]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    cache.clear()
    yield
    cache.clear()

"""The calls tests' fixtures, for the webhooks' end-to-end tests: the PBX directory, the production path of a
notification (notify URL → applier → after commit), and the sandbox serving records."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import translation

from tests.calls.conftest import directory, notify  # noqa: F401
from tests.calls.recording_fixtures import record_host, recordings_settings  # noqa: F401


@pytest.fixture(autouse=True)
def _english(settings: Any) -> Iterator[None]:
    # The assertions read the English source strings, whatever the catalogue translates them to.
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield

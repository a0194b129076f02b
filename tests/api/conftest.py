from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import responses
from django.core.cache import cache
from django.utils import translation

from tests.conftest import load_fixture
from tests.personas import World, build_world


@pytest.fixture
def world(integration: Any) -> World:
    return build_world(integration)


@pytest.fixture(autouse=True)
def _api_state(settings: Any) -> Iterator[responses.RequestsMock]:
    """Throttle counters start at zero; click-to-call reaches a mocked MTT (the guide's makeCall answer)."""
    settings.MTT_RATE_LIMIT_KEY_PREFIX = "test-api:"
    settings.MTT_RATE_LIMIT = 100_000
    cache.clear()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post("http://mtt.test/makeCall", json=load_fixture("api/makeCall_response.json"))
        yield mock
    cache.clear()


@pytest.fixture(autouse=True)
def _english(settings: Any) -> Iterator[None]:
    # The assertions read the English source strings, whatever the catalogue translates them to.
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield

"""The MTT API client tests' shared fixtures (tests/integrations/test_client_*.py): the conftest
integration's addresses and tokens, a client whose sleeps are recorded, a spy standing in for the shared
limiter, and the JSON a request sent."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses

from integrations.models import Integration
from integrations.mtt import ratelimit
from integrations.mtt.client import MttClient
from tests.conftest import load_fixture

API = "http://mtt.test"
TOKEN_URL = "http://oauth.mtt.test/oauth/token"
OLD_TOKEN = "access-token-1"  # the conftest integration's token
NEW_TOKEN = load_fixture("api/oauth_token_refresh.json")["access_token"]
CALL_ID = "b9111e52e5d011e9aec7ac162d8cda20_00015D95DB072BFC_7022A1~2o"
TRANSPORT = "10.133.51.137:5070"


class LimiterSpy:
    """Stands in for the shared limiter: grants at once and remembers how it was asked."""

    def __init__(self) -> None:
        self.acquired: list[dict[str, Any]] = []
        self.penalties: list[tuple[int, float]] = []
        self.wait = 0.0

    def acquire(self, integration_id: int, *, priority: bool = False, max_wait: float | None = None) -> float:
        self.acquired.append({"integration_id": integration_id, "priority": priority, "max_wait": max_wait})
        return self.wait

    def penalize(self, integration_id: int, seconds: float) -> None:
        self.penalties.append((integration_id, seconds))


@pytest.fixture
def limiter(monkeypatch: pytest.MonkeyPatch) -> LimiterSpy:
    spy = LimiterSpy()
    monkeypatch.setattr(ratelimit, "acquire", spy.acquire)
    monkeypatch.setattr(ratelimit, "penalize", spy.penalize)
    return spy


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(integration: Integration, limiter: LimiterSpy, sleeps: list[float]) -> MttClient:
    c = MttClient(integration)
    c.sleep = sleeps.append
    return c


def sent_json(index: int = 0) -> Any:
    body = responses.calls[index].request.body
    assert body is not None
    return json.loads(body)

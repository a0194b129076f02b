from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses
from django.utils import timezone

from integrations.models import Integration
from integrations.mtt.errors import MttReconnectRequired, MttTransientError
from integrations.tasks import refresh_tokens
from integrations.tokens import integration_access_token
from tests.concurrency import at_once
from tests.conftest import load_fixture

TOKEN_URL = "http://oauth.mtt.test/oauth/token"


def _expire(integration: Integration, *, seconds_left: int = -10) -> Integration:
    Integration.objects.filter(pk=integration.pk).update(
        access_token_expires_at=timezone.now() + timedelta(seconds=seconds_left)
    )
    integration.refresh_from_db()
    return integration


def _token_body(n: int) -> dict[str, Any]:
    body = load_fixture("api/oauth_token_refresh.json")
    body["access_token"] = f"access-{n}"
    body["refresh_token"] = f"refresh-{n}"
    return body


@pytest.mark.django_db
@responses.activate
def test_valid_token_is_used_without_a_refresh(integration: Integration) -> None:
    assert integration_access_token(integration=integration) == "access-token-1"
    assert len(responses.calls) == 0


@pytest.mark.django_db
@responses.activate
def test_token_about_to_expire_is_refreshed_with_client_credentials(integration: Integration) -> None:
    responses.post(TOKEN_URL, json=_token_body(2))
    _expire(integration, seconds_left=60)  # inside the refresh margin
    assert integration_access_token(integration=integration) == "access-2"
    sent = parse_qs(responses.calls[0].request.body)
    assert sent["grant_type"] == ["refresh_token"]
    assert sent["refresh_token"] == ["refresh-token-1"]
    assert sent["client_id"] == ["client-1"]
    assert sent["client_secret"] == ["secret-1"]
    integration.refresh_from_db()
    assert integration.access_token == "access-2"
    assert integration.refresh_token == "refresh-2"
    assert integration.access_token_expires_at > timezone.now() + timedelta(seconds=7000)
    assert integration.refresh_token_expires_at > timezone.now() + timedelta(days=2, hours=23)
    assert integration.status == Integration.Status.CONNECTED


@pytest.mark.django_db
@responses.activate
def test_refused_refresh_marks_needs_reconnect_and_stops_trying(integration: Integration) -> None:
    responses.post(TOKEN_URL, status=400, json={"error": "invalid_grant"})
    _expire(integration)
    with pytest.raises(MttReconnectRequired):
        integration_access_token(integration=integration)
    integration.refresh_from_db()
    assert integration.status == Integration.Status.NEEDS_RECONNECT
    assert "invalid_grant" in integration.last_error
    # No loop: the next callers fail fast without asking MTT again, and the beat skips it.
    with pytest.raises(MttReconnectRequired):
        integration_access_token(integration=integration)
    assert refresh_tokens() == 0
    assert len(responses.calls) == 1


@pytest.mark.django_db
@responses.activate
def test_oauth_server_down_is_transient_and_keeps_the_integration_connected(integration: Integration) -> None:
    responses.post(TOKEN_URL, status=503, body="maintenance")
    _expire(integration)
    with pytest.raises(MttTransientError):
        integration_access_token(integration=integration)
    integration.refresh_from_db()
    assert integration.status == Integration.Status.CONNECTED
    assert "503" in integration.last_error


@pytest.mark.django_db
@responses.activate
def test_beat_refreshes_tokens_that_would_expire_before_the_next_run(integration: Integration) -> None:
    responses.post(TOKEN_URL, json=_token_body(3))
    other = Integration.objects.create(
        name="Fresh",
        client_id="c2",
        client_secret="s2",
        oauth_url="http://oauth.mtt.test",
        status=Integration.Status.CONNECTED,
        access_token="fresh",
        access_token_expires_at=timezone.now() + timedelta(hours=2),
        refresh_token="r2",
    )
    _expire(integration, seconds_left=20 * 60)  # expires before the next 30-minute run
    assert refresh_tokens() == 1
    integration.refresh_from_db()
    other.refresh_from_db()
    assert integration.access_token == "access-3"
    assert integration.tokens_refreshed_at is not None
    assert other.access_token == "fresh"
    assert len(responses.calls) == 1


@pytest.mark.django_db
@responses.activate
def test_scope_in_the_answer_is_not_compared(integration: Integration) -> None:
    body = _token_body(4)
    body["scope"] = "  something else entirely "
    responses.post(TOKEN_URL, json=body)
    _expire(integration)
    assert integration_access_token(integration=integration) == "access-4"


@pytest.mark.django_db(transaction=True)
def test_concurrent_callers_cause_exactly_one_refresh(postgres_only: None) -> None:
    integration = Integration.objects.create(
        name="Race",
        client_id="client-1",
        client_secret="secret-1",
        oauth_url="http://oauth.mtt.test",
        status=Integration.Status.CONNECTED,
        access_token="old",
        access_token_expires_at=timezone.now() - timedelta(seconds=5),
        refresh_token="refresh-old",
    )
    hits: list[float] = []

    def token_endpoint(request: Any) -> tuple[int, dict[str, str], str]:
        hits.append(time.monotonic())
        time.sleep(0.3)  # a slow OAuth server widens the race window
        return 200, {}, json.dumps(_token_body(len(hits)))

    workers = 8
    # Every caller holds the expired token, as callers in other processes would.
    rows = [Integration.objects.get(pk=integration.pk) for _ in range(workers)]
    with responses.RequestsMock() as mocked:
        mocked.add_callback(responses.POST, TOKEN_URL, callback=token_endpoint)
        results = at_once([lambda row=row: integration_access_token(integration=row) for row in rows])
    assert len(hits) == 1
    assert results == ["access-1"] * workers

"""The MTT API client's request log (one row per request, failures included) and its secrecy: no token
in logs, errors or rows; mocked with responses."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import requests
import responses

from integrations.models import Integration, MttRequestLog
from integrations.mtt.client import MttClient
from integrations.mtt.errors import MttPermanentError, MttTransientError
from tests.conftest import load_fixture
from tests.integrations import client_fixtures as shared
from tests.integrations.client_fixtures import (
    API,
    CALL_ID,
    NEW_TOKEN,
    OLD_TOKEN,
    TOKEN_URL,
    TRANSPORT,
    LimiterSpy,
)

# The shared fixtures, under their names (client asks for the other two).
client = shared.client
limiter = shared.limiter
sleeps = shared.sleeps

pytestmark = pytest.mark.django_db


# --- Request log, secrecy ---------------------------------------------------------------------------


@responses.activate
def test_each_request_writes_one_log_row(client: MttClient, limiter: LimiterSpy) -> None:
    limiter.wait = 0.25
    responses.get(f"{API}/workplacesInfo", status=500)
    responses.get(f"{API}/workplacesInfo", json=load_fixture("api/workplacesInfo_response.json"))
    client.workplaces_info()
    rows = list(MttRequestLog.objects.order_by("pk"))
    assert [(r.method, r.status_code, r.ok, r.error) for r in rows] == [
        ("workplacesInfo", 500, False, "MTT answered HTTP 500"),
        ("workplacesInfo", 200, True, ""),
    ]
    assert all(r.limiter_wait_ms == 250 and r.integration_id == client.integration.pk for r in rows)


@responses.activate
def test_network_error_is_logged_without_status(client: MttClient) -> None:
    responses.post(f"{API}/makeCall", body=requests.ConnectTimeout())
    with pytest.raises(MttTransientError):
        client.make_call(caller_id="883140582526566", callee="89219462761")
    row = MttRequestLog.objects.get()
    assert (row.status_code, row.ok, row.error) == (None, False, "MTT request failed: ConnectTimeout")


@responses.activate
def test_refusal_with_http_200_is_logged_as_not_ok(client: MttClient) -> None:
    responses.post(f"{API}/terminateCall", json={"result": {"success": 0}})
    with pytest.raises(MttPermanentError):
        client.terminate_call(call_id=CALL_ID, tag="1", transport_id=TRANSPORT)
    row = MttRequestLog.objects.get()
    assert (row.status_code, row.ok) == (200, False)
    assert "success=0" in row.error


@responses.activate
def test_401_and_its_retry_are_two_log_rows(client: MttClient) -> None:
    responses.get(f"{API}/workplacesInfo", status=401)
    responses.get(f"{API}/workplacesInfo", json=load_fixture("api/workplacesInfo_response.json"))
    responses.post(TOKEN_URL, json=load_fixture("api/oauth_token_refresh.json"))
    client.workplaces_info()
    assert list(MttRequestLog.objects.order_by("pk").values_list("status_code", "ok")) == [
        (401, False),
        (200, True),
    ]


@responses.activate
def test_a_failing_log_never_fails_the_request(client: MttClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("database is gone")

    monkeypatch.setattr(MttRequestLog.objects, "create", broken)
    responses.post(f"{API}/terminateCall", json={"result": {"success": 1}})
    client.terminate_call(call_id=CALL_ID, tag="1", transport_id=TRANSPORT)


@responses.activate
def test_tokens_never_reach_the_logs(
    client: MttClient, integration: Integration, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[Exception] = []
    responses.get(f"{API}/workplacesInfo", status=401, json={"error": "invalid_token"})
    responses.post(TOKEN_URL, json=load_fixture("api/oauth_token_refresh.json"))
    responses.post(f"{API}/makeCall", body=requests.ReadTimeout())
    responses.get(f"{API}/terminalsinfo", status=500, body="upstream exploded")
    responses.post(f"{API}/setParkingNumbers", status=403, json={"error": {"message": "forbidden"}})
    for call in (
        client.workplaces_info,
        lambda: client.make_call(caller_id="1", callee="2"),
        client.terminals_info,
        lambda: client.set_parking_numbers(["1"], is_parking=True),
    ):
        with pytest.raises(Exception) as info:
            call()
        errors.append(info.value)

    assert caplog.records  # something was logged
    for secret in (OLD_TOKEN, NEW_TOKEN, "refresh-token-1", "secret-1"):
        assert secret not in caplog.text
        assert all(secret not in str(e) and secret not in repr(e) for e in errors)
        assert not MttRequestLog.objects.filter(error__contains=secret).exists()

"""The MTT API client when MTT refuses: 401 (one single-flight refresh, one retry), 429 and transient errors
(retried or not, by method), and the limiter class each method asks in; mocked with responses."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import responses
from django.test import override_settings

from integrations.models import Integration
from integrations.mtt import client as client_module
from integrations.mtt import ratelimit
from integrations.mtt.client import ExternalNumberInfo, MttClient, WorkplaceInfo
from integrations.mtt.errors import MttAuthError, MttRateLimited, MttReconnectRequired, MttTransientError
from integrations.mtt.ratelimit import Priority
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


# --- 401: one single-flight refresh, one retry (API.md "OAuth") --------------------------------------


@responses.activate
def test_401_refreshes_once_and_retries_once(client: MttClient, integration: Integration) -> None:
    responses.get(f"{API}/workplacesInfo", status=401, json={"error": "invalid_token"})
    responses.get(f"{API}/workplacesInfo", json=load_fixture("api/workplacesInfo_response.json"))
    responses.post(TOKEN_URL, json=load_fixture("api/oauth_token_refresh.json"))

    assert client.workplaces_info() == [WorkplaceInfo(sip_id="88314077716581", name="Администратор")]

    api_calls = [c for c in responses.calls if (c.request.url or "").startswith(API)]
    token_calls = [c for c in responses.calls if c.request.url == TOKEN_URL]
    assert len(token_calls) == 1
    assert [c.request.headers["Authorization"] for c in api_calls] == [
        f"Bearer {OLD_TOKEN}",
        f"Bearer {NEW_TOKEN}",
    ]
    integration.refresh_from_db()
    assert integration.access_token == NEW_TOKEN
    assert client.integration.access_token == NEW_TOKEN  # the next call starts from the new token


@responses.activate
def test_second_401_is_an_auth_error(client: MttClient) -> None:
    responses.post(f"{API}/makeCall", status=401, json={"error": "invalid_token"})
    responses.post(TOKEN_URL, json=load_fixture("api/oauth_token_refresh.json"))
    with pytest.raises(MttAuthError) as info:
        client.make_call(caller_id="883140582526566", callee="89219462761")
    assert info.value.method == "makeCall"
    assert info.value.status_code == 401
    assert len([c for c in responses.calls if (c.request.url or "").startswith(API)]) == 2
    assert len([c for c in responses.calls if c.request.url == TOKEN_URL]) == 1


@responses.activate
def test_integration_needing_reconnect_sends_nothing(client: MttClient, integration: Integration) -> None:
    integration.status = Integration.Status.NEEDS_RECONNECT
    with pytest.raises(MttReconnectRequired) as info:
        client.workplaces_info()
    assert info.value.method == "workplacesInfo"
    assert len(responses.calls) == 0


# --- 429, retries ---------------------------------------------------------------------------------


@responses.activate
def test_429_is_rate_limited_and_penalizes_every_process(client: MttClient, limiter: LimiterSpy) -> None:
    responses.get(f"{API}/workplacesInfo", status=429, headers={"Retry-After": "3"})
    with pytest.raises(MttRateLimited) as info:
        client.workplaces_info()
    assert info.value.retry_after == 3.0
    assert info.value.status_code == 429
    assert info.value.method == "workplacesInfo"
    assert limiter.penalties == [(client.integration.pk, 3.0)]
    assert len(responses.calls) == 1  # honoured, not hammered


@responses.activate
def test_429_without_retry_after_waits_one_second(client: MttClient, limiter: LimiterSpy) -> None:
    responses.post(f"{API}/transferCall", status=429)
    with pytest.raises(MttRateLimited) as info:
        client.transfer_call(call_id=CALL_ID, tag="1", callee="883140582526566", transport_id=TRANSPORT)
    assert info.value.retry_after == 1.0
    assert limiter.penalties == [(client.integration.pk, 1.0)]


def test_limiter_refusal_names_the_api_method(client: MttClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(integration_id: int, *, priority: bool = False, max_wait: float | None = None) -> float:
        raise MttRateLimited("No permit", retry_after=0.7, method="ratelimit")

    monkeypatch.setattr(ratelimit, "acquire", refuse)
    with pytest.raises(MttRateLimited) as info:
        client.external_numbers_info()
    assert info.value.method == "externalNumbersInfo"
    assert info.value.retry_after == 0.7


@responses.activate
@pytest.mark.parametrize("failure", [{"status": 500}, {"status": 503}, {"body": requests.ReadTimeout()}])
def test_get_is_retried_on_transient_errors(client: MttClient, sleeps: list[float], failure: Any) -> None:
    responses.get(f"{API}/externalNumbersInfo", **failure)
    responses.get(f"{API}/externalNumbersInfo", json=load_fixture("api/externalNumbersInfo_response.json"))
    assert client.external_numbers_info() == [ExternalNumberInfo(number="78005560251", type=None)]
    assert len(responses.calls) == 2
    assert len(sleeps) == 1 and 0 < sleeps[0] <= client_module.RETRY_BASE_DELAY


@responses.activate
def test_get_gives_up_after_a_few_attempts(client: MttClient, sleeps: list[float]) -> None:
    responses.get(f"{API}/terminalsinfo", status=502)
    with pytest.raises(MttTransientError) as info:
        client.terminals_info()
    assert info.value.status_code == 502
    assert len(responses.calls) == client_module.RETRY_ATTEMPTS
    assert len(sleeps) == client_module.RETRY_ATTEMPTS - 1
    assert all(s <= client_module.RETRY_MAX_DELAY for s in sleeps)


@responses.activate
def test_set_parking_numbers_is_retried(client: MttClient, sleeps: list[float]) -> None:
    responses.post(f"{API}/setParkingNumbers", body=requests.ConnectionError())
    responses.post(f"{API}/setParkingNumbers", json={"success": 1})
    client.set_parking_numbers(["880023213"], is_parking=True)
    assert len(responses.calls) == 2


@responses.activate
@pytest.mark.parametrize("failure", [{"body": requests.ReadTimeout()}, {"status": 500}])
def test_make_call_is_never_retried(client: MttClient, sleeps: list[float], failure: Any) -> None:
    # A second makeCall would ring the client's phone a second time.
    responses.post(f"{API}/makeCall", **failure)
    responses.post(f"{API}/makeCall", json=load_fixture("api/makeCall_response.json"))
    with pytest.raises(MttTransientError) as info:
        client.make_call(caller_id="883140582526566", callee="89219462761")
    assert info.value.method == "makeCall"
    assert len(responses.calls) == 1
    assert sleeps == []


@responses.activate
def test_routing_commands_are_not_retried(client: MttClient, sleeps: list[float]) -> None:
    responses.post(f"{API}/terminateCall", body=requests.ConnectTimeout())
    responses.post(f"{API}/transferCall", status=500)
    with pytest.raises(MttTransientError):
        client.terminate_call(call_id=CALL_ID, tag="1", transport_id=TRANSPORT)
    with pytest.raises(MttTransientError):
        client.transfer_call(call_id=CALL_ID, tag="1", callee="883140582526566", transport_id=TRANSPORT)
    assert len(responses.calls) == 2
    assert sleeps == []


# --- Limiter priority -----------------------------------------------------------------------------


@responses.activate
def test_each_method_asks_the_limiter_in_its_class(
    client: MttClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real limiter (local backend in the test's VAR_DIR), spied on: routing commands first, then
    makeCall, then the directory reads and setParkingNumbers (downloads are the recordings')."""
    monkeypatch.undo()  # drop the LimiterSpy: this test uses the real limiter
    calls: list[dict[str, Any]] = []
    real_acquire = ratelimit.acquire

    def spy(integration_id: int, *, priority: Any = False, max_wait: float | None = None) -> float:
        calls.append({"priority": priority, "max_wait": max_wait})
        return real_acquire(integration_id, priority=priority, max_wait=max_wait)

    monkeypatch.setattr(ratelimit, "acquire", spy)
    responses.post(f"{API}/terminateCall", json={"result": {"success": 1}})
    responses.post(f"{API}/transferCall", json={"result": {"success": 1}})
    responses.post(f"{API}/makeCall", json=load_fixture("api/makeCall_response.json"))
    responses.post(f"{API}/setParkingNumbers", json={"success": 1})
    for name in ("externalNumbersInfo", "workplacesInfo", "terminalsinfo"):
        responses.get(f"{API}/{name}", json={"result": {"total": 0}})
    # Eight requests in a row: a budget large enough that none waits for the window.
    with override_settings(REDIS_URL="", MTT_RATE_LIMIT=50):
        client.terminate_call(call_id=CALL_ID, tag="1", transport_id=TRANSPORT)
        client.transfer_call(call_id=CALL_ID, tag="1", callee="883140582526566", transport_id=TRANSPORT)
        client.terminate_call(call_id=CALL_ID, tag="1", transport_id=TRANSPORT, priority=True)  # the old way
        client.make_call(caller_id="883140582526566", callee="89219462761")
        client.set_parking_numbers(["74996497803"], is_parking=True)
        client.external_numbers_info()
        client.workplaces_info()
        client.terminals_info()
    assert [ratelimit.as_priority(c["priority"]) for c in calls] == [
        Priority.ROUTING,
        Priority.ROUTING,
        Priority.ROUTING,
        Priority.CLICK_TO_CALL,
        *[Priority.SYNC] * 4,
    ]
    # A permit later than the 5 s of parking is useless: routing commands do not wait long.
    assert all(c["max_wait"] is not None and c["max_wait"] <= 3.0 for c in calls[:3])
    assert all(c["max_wait"] is None for c in calls[3:])

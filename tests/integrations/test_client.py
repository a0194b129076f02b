"""The MTT API client against the guide's example payloads, mocked at the HTTP boundary (responses)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import requests
import responses
from django.test import override_settings

from integrations.models import Integration, MttRequestLog
from integrations.mtt import client as client_module
from integrations.mtt import ratelimit
from integrations.mtt.client import (
    ExternalNumberInfo,
    MttClient,
    TerminalInfo,
    WorkplaceInfo,
    client_for,
)
from integrations.mtt.errors import (
    MttAuthError,
    MttBadResponse,
    MttPermanentError,
    MttRateLimited,
    MttReconnectRequired,
    MttTransientError,
)
from integrations.mtt.ratelimit import Priority
from tests.conftest import load_fixture

pytestmark = pytest.mark.django_db

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


# --- Every method against the guide's examples (API.md "API methods") -------------------------------


@responses.activate
def test_external_numbers_info(client: MttClient) -> None:
    responses.get(f"{API}/externalNumbersInfo", json=load_fixture("api/externalNumbersInfo_response.json"))
    assert client.external_numbers_info() == [ExternalNumberInfo(number="78005560251", type=None)]
    request = responses.calls[0].request
    assert request.method == "GET"
    assert request.headers["Authorization"] == f"Bearer {OLD_TOKEN}"
    assert request.req_kwargs["timeout"] == (3.05, 10.0)  # type: ignore[attr-defined]


@responses.activate
def test_workplaces_info(client: MttClient) -> None:
    responses.get(f"{API}/workplacesInfo", json=load_fixture("api/workplacesInfo_response.json"))
    assert client.workplaces_info() == [WorkplaceInfo(sip_id="88314077716581", name="Администратор")]


@responses.activate
def test_terminals_info_reads_the_examples_terminals_list(client: MttClient) -> None:
    responses.get(f"{API}/terminalsinfo", json=load_fixture("api/terminalsinfo_response.json"))
    assert client.terminals_info() == [
        TerminalInfo(sip_id="883140777380595", workplace_sip_id="883140777380595")
    ]


@responses.activate
def test_terminals_info_reads_terminalslist_and_the_tables_terminale(client: MttClient) -> None:
    responses.get(
        f"{API}/terminalsinfo",
        json={
            "result": {
                "total": 2,
                "terminalsList": [
                    {"terminal": "883140777380595", "workplace": "883140582526566"},
                    {"terminale": "883140777380596", "workplace": "883140582526566"},
                ],
            }
        },
    )
    assert [t.sip_id for t in client.terminals_info()] == ["883140777380595", "883140777380596"]


@responses.activate
def test_empty_directory_lists(client: MttClient) -> None:
    responses.get(f"{API}/workplacesInfo", json={"result": {"total": 0}})
    responses.get(f"{API}/externalNumbersInfo", json={"result": {"total": 0, "numbersList": []}})
    assert client.workplaces_info() == []
    assert client.external_numbers_info() == []


@responses.activate
def test_set_parking_numbers_bare_success(client: MttClient) -> None:
    responses.post(f"{API}/setParkingNumbers", json=load_fixture("api/setParkingNumbers_response.json"))
    client.set_parking_numbers(["880023213", "880034344"], is_parking=True)
    assert sent_json() == load_fixture("api/setParkingNumbers_request.json")


@responses.activate
def test_set_parking_numbers_wrapped_success(client: MttClient) -> None:
    responses.post(f"{API}/setParkingNumbers", json={"result": {"success": True}})
    client.set_parking_numbers(("74996497803",), is_parking=False)
    assert sent_json() == {"params": {"numbers": ["74996497803"], "isParking": False}}


def test_set_parking_numbers_with_nothing_to_set_sends_nothing(client: MttClient) -> None:
    client.set_parking_numbers([], is_parking=True)  # responses not active: a request would fail
    with pytest.raises(TypeError):
        client.set_parking_numbers("74996497803", is_parking=True)


@responses.activate
def test_make_call(client: MttClient) -> None:
    responses.post(f"{API}/makeCall", json=load_fixture("api/makeCall_response.json"))
    call_id = client.make_call(caller_id="883140582526566", callee="89219462761")
    assert call_id == "7NKe6!8fa1FMSlc6ypZdb1GSV6ZN@10.133.51.137"
    assert sent_json() == load_fixture("api/makeCall_request.json")  # "calleid", the provider's spelling


@responses.activate
def test_terminate_call(client: MttClient) -> None:
    responses.post(f"{API}/terminateCall", json=load_fixture("api/terminateCall_response.json"))
    client.terminate_call(call_id=CALL_ID, tag="133609", transport_id=TRANSPORT)
    assert sent_json() == load_fixture("api/terminateCall_request.json")


@responses.activate
def test_transfer_call(client: MttClient) -> None:
    responses.post(f"{API}/transferCall", json=load_fixture("api/transferCall_response.json"))
    client.transfer_call(call_id=CALL_ID, tag="133609", callee="883140582526566", transport_id=TRANSPORT)
    assert sent_json() == load_fixture("api/transferCall_request.json")


@responses.activate
def test_cyrillic_tag_is_echoed_exactly(client: MttClient) -> None:
    tag = "sdfе2n901-6f6c-4a1a"  # the guide's tag: the "е" is Cyrillic
    responses.post(f"{API}/transferCall", json={"result": {"success": 1}})
    client.transfer_call(call_id=CALL_ID, tag=tag, callee="883140582526566", transport_id=TRANSPORT)
    body = responses.calls[0].request.body
    assert isinstance(body, bytes)
    assert json.loads(body.decode("utf-8"))["params"]["call"]["tag"] == tag


@responses.activate
def test_api_url_with_a_path_and_trailing_slash(client: MttClient, integration: Integration) -> None:
    integration.api_url = "http://mtt.test/openapi/v1/"
    responses.post("http://mtt.test/openapi/v1/terminateCall", json={"result": {"success": 1}})
    client.terminate_call(call_id=CALL_ID, tag="1", transport_id=TRANSPORT)
    assert len(responses.calls) == 1


# --- success, bad bodies ------------------------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize(
    "answer",
    [{"result": {"success": 0}}, {"success": 0}, {"result": {"success": False}}, {"result": {}}],
)
def test_success_zero_is_a_permanent_error(client: MttClient, answer: dict[str, Any]) -> None:
    responses.post(f"{API}/terminateCall", json=answer)
    with pytest.raises(MttPermanentError) as info:
        client.terminate_call(call_id=CALL_ID, tag="1", transport_id=TRANSPORT)
    assert info.value.method == "terminateCall"
    assert info.value.body is not None


@responses.activate
def test_success_zero_surfaces_mtts_message(client: MttClient) -> None:
    responses.post(f"{API}/makeCall", json={"result": {"success": 0, "message": "Абонент занят"}})
    with pytest.raises(MttPermanentError) as info:
        client.make_call(caller_id="883140582526566", callee="89219462761")
    assert "Абонент занят" in info.value.user_message


@responses.activate
@pytest.mark.parametrize(
    ("kwargs", "method"),
    [
        ({"body": "<html>gateway</html>", "content_type": "text/html"}, "workplacesInfo"),
        ({"json": ["not", "an", "object"]}, "workplacesInfo"),
        ({"json": {"total": 1}}, "workplacesInfo"),
        ({"json": {"result": {"total": 1, "workplacesList": [{"name": "no sip id"}]}}}, "workplacesInfo"),
    ],
)
def test_unreadable_2xx_is_a_bad_response(client: MttClient, kwargs: dict[str, Any], method: str) -> None:
    responses.get(f"{API}/{method}", **kwargs)
    with pytest.raises(MttBadResponse) as info:
        client.workplaces_info()
    assert info.value.method == method
    assert len(responses.calls) == 1  # not a transient error: no retry


@responses.activate
@pytest.mark.parametrize(
    "answer",
    [{"result": {"success": 1}}, {"result": {"success": 1, "call": {"id": ""}}},
     {"result": {"success": 1, "call": {"id": True}}}, {"result": {"success": 1, "call": "x"}}],
)  # fmt: skip
def test_make_call_without_a_call_id_is_a_bad_response(client: MttClient, answer: Any) -> None:
    responses.post(f"{API}/makeCall", json=answer)
    with pytest.raises(MttBadResponse):
        client.make_call(caller_id="883140582526566", callee="89219462761")


@responses.activate
@pytest.mark.parametrize(
    ("answer", "call_id"),
    [({"result": {"success": 1, "call": {"id": 733160}}}, "733160"),
     ({"result": {"success": "1", "call": {"id": "a@b"}}}, "a@b"),
     ({"success": True, "call": {"id": "a@b"}}, "a@b")],  # bare, like setParkingNumbers' example
)  # fmt: skip
def test_make_call_answer_in_other_shapes(client: MttClient, answer: Any, call_id: str) -> None:
    responses.post(f"{API}/makeCall", json=answer)
    assert client.make_call(caller_id="883140582526566", callee="89219462761") == call_id


@responses.activate
def test_error_object_with_http_200(client: MttClient) -> None:
    responses.get(f"{API}/workplacesInfo", json={"error": {"code": 7, "message": "Интеграция отключена"}})
    with pytest.raises(MttPermanentError) as info:
        client.workplaces_info()
    assert "Интеграция отключена" in info.value.user_message


@responses.activate
def test_4xx_body_surfaces_in_user_message(client: MttClient) -> None:
    responses.post(f"{API}/makeCall", status=400, json={"error": {"message": "Неверный номер"}})
    with pytest.raises(MttPermanentError) as info:
        client.make_call(caller_id="883140582526566", callee="000")
    assert not isinstance(info.value, MttTransientError)
    assert info.value.status_code == 400
    assert info.value.method == "makeCall"
    assert info.value.body == {"error": {"message": "Неверный номер"}}
    assert "Неверный номер" in info.value.user_message


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


def test_client_for_rereads_the_integration(integration: Integration) -> None:
    Integration.objects.filter(pk=integration.pk).update(api_url="http://other.test")
    fresh = client_for(integration.pk)
    assert fresh.integration.api_url == "http://other.test"
    assert integration.api_url == API

"""The MTT API client's methods against the guide's example payloads, mocked at the HTTP boundary
(responses): what each sends and reads, and how success 0, unreadable bodies and errors surface."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses

from integrations.models import Integration
from integrations.mtt.client import ExternalNumberInfo, MttClient, TerminalInfo, WorkplaceInfo, client_for
from integrations.mtt.errors import MttBadResponse, MttPermanentError, MttTransientError
from tests.conftest import load_fixture
from tests.integrations import client_fixtures as shared
from tests.integrations.client_fixtures import API, CALL_ID, OLD_TOKEN, TRANSPORT, sent_json

# The shared fixtures, under their names (client asks for the other two).
client = shared.client
limiter = shared.limiter
sleeps = shared.sleeps

pytestmark = pytest.mark.django_db


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


def test_client_for_rereads_the_integration(integration: Integration) -> None:
    Integration.objects.filter(pk=integration.pk).update(api_url="http://other.test")
    fresh = client_for(integration.pk)
    assert fresh.integration.api_url == "http://other.test"
    assert integration.api_url == API

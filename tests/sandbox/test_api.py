"""The Open API methods answer in the guide's shapes (§9, §10.2, §10.3) and refuse what MTT refuses."""

from __future__ import annotations

import time

import pytest
import requests

from sandbox.testing import RunningSandbox

from .helpers import api_get, api_post, bearer, load_fixture, shape

CYRILLIC_TAG = "sdfе2n901-281028329"  # as in the guide: the 4th letter is Cyrillic


@pytest.mark.parametrize(
    ("path", "fixture"),
    [
        ("/externalNumbersInfo", "api/externalNumbersInfo_response.json"),
        ("/workplacesInfo", "api/workplacesInfo_response.json"),
        ("/terminalsinfo", "api/terminalsinfo_response.json"),
    ],
)
def test_settings_methods_match_the_fixture_shapes(sandbox: RunningSandbox, path: str, fixture: str) -> None:
    response = api_get(sandbox, path, bearer(sandbox))
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert shape(body) == shape(load_fixture(fixture))
    listed = next(v for k, v in body["result"].items() if k != "total")
    assert body["result"]["total"] == len(listed) > 0


def test_directory_content_is_the_demo_one(sandbox: RunningSandbox) -> None:
    headers = bearer(sandbox)
    numbers = api_get(sandbox, "/externalNumbersInfo", headers).json()["result"]["numbersList"]
    assert {"number": "74996497803", "type": None} in numbers
    assert {"number": "78005560251", "type": "8800"} in numbers
    workplaces = api_get(sandbox, "/workplacesInfo", headers)
    assert "Иванова Мария".encode() in workplaces.content  # UTF-8 on the wire, not \u escapes
    terminals = api_get(sandbox, "/terminalsinfo", headers).json()["result"]["terminals_list"]
    workplace_ids = {w["workplace"] for w in workplaces.json()["result"]["workplacesList"]}
    assert all(t["workplace"] in workplace_ids for t in terminals)
    assert not {t["terminal"] for t in terminals} & workplace_ids


def test_terminals_key_is_configurable(sandbox: RunningSandbox) -> None:
    sandbox.control("POST", "config", {"terminals_key": "terminalsList"})
    result = api_get(sandbox, "/terminalsinfo", bearer(sandbox)).json()["result"]
    assert set(result) == {"total", "terminalsList"}


@pytest.mark.parametrize("auth", [None, "Bearer nope", "Basic ZGVtbzpkZW1v"])
def test_missing_or_unknown_token_is_401(sandbox: RunningSandbox, auth: str | None) -> None:
    headers = {"Authorization": auth} if auth else {}
    response = api_get(sandbox, "/workplacesInfo", headers)
    assert response.status_code == 401
    assert response.json() == {"error": {"code": 401, "message": "Unauthorized"}}


def test_expire_tokens_control_makes_current_tokens_401(sandbox: RunningSandbox) -> None:
    headers = bearer(sandbox)
    assert api_get(sandbox, "/workplacesInfo", headers).status_code == 200
    assert sandbox.control("POST", "expire-tokens")["expired"] >= 1
    assert api_get(sandbox, "/workplacesInfo", headers).status_code == 401
    assert api_get(sandbox, "/workplacesInfo", bearer(sandbox)).status_code == 200  # a fresh one works


def test_set_parking_numbers_answers_bare_success_and_stores_flags(sandbox: RunningSandbox) -> None:
    headers = bearer(sandbox)
    payload = {"params": {"numbers": ["74996497803"], "isParking": True}}
    response = api_post(sandbox, "/setParkingNumbers", headers, payload)
    assert response.status_code == 200
    assert response.json() == load_fixture("api/setParkingNumbers_response.json")
    assert sandbox.state.parking == {"74996497803": True}
    api_post(
        sandbox, "/setParkingNumbers", headers, {"params": {"numbers": ["74996497803"], "isParking": False}}
    )
    assert sandbox.state.parking == {"74996497803": False}


@pytest.mark.parametrize(
    "params",
    [
        {"numbers": ["880023213"], "isParking": True},  # not an external number of this PBX
        {"numbers": [], "isParking": True},
        {"numbers": ["74996497803"], "isParking": "yes"},
    ],
)
def test_set_parking_numbers_refuses_bad_params(sandbox: RunningSandbox, params: dict[str, object]) -> None:
    response = api_post(sandbox, "/setParkingNumbers", bearer(sandbox), {"params": params})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 400
    assert sandbox.state.parking == {}


def test_make_call_answers_like_the_fixture(sandbox: RunningSandbox) -> None:
    payload = {"params": {"callerId": "883140000000001", "calleid": "89219462761"}}
    response = api_post(sandbox, "/makeCall", bearer(sandbox), payload)
    assert response.status_code == 200
    body = response.json()
    assert shape(body) == shape(load_fixture("api/makeCall_response.json"))
    assert body["result"]["success"] == 1
    assert body["result"]["call"]["id"].endswith("@10.133.51.137")
    assert sandbox.state.calls[0]["call_id"] == body["result"]["call"]["id"]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"callerId": "883140000000101", "calleid": "89219462761"}, "terminal"),
        ({"callerId": "883140999999999", "calleid": "89219462761"}, "not a known workplace"),
        ({"callerId": "883140000000001", "calleid": "call me"}, "calleid"),
        (
            {"callerId": "883140000000001", "calleeId": "89219462761"},
            "calleid",
        ),  # the provider's spelling only
        ({"callerId": 883140000000001, "calleid": "89219462761"}, "callerId"),
    ],
)
def test_make_call_refuses_bad_params(
    sandbox: RunningSandbox, params: dict[str, object], fragment: str
) -> None:
    response = api_post(sandbox, "/makeCall", bearer(sandbox), {"params": params})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 400
    assert fragment in error["message"]
    assert sandbox.state.calls == []


def test_terminate_and_transfer_echo_ids_and_tags_byte_for_byte(sandbox: RunningSandbox) -> None:
    headers = bearer(sandbox)
    terminate = load_fixture("api/terminateCall_request.json")
    terminate["params"]["call"]["tag"] = CYRILLIC_TAG
    response = api_post(sandbox, "/terminateCall", headers, terminate)
    assert response.status_code == 200
    assert response.json() == load_fixture("api/terminateCall_response.json")

    transfer = load_fixture("api/transferCall_request.json")
    response = api_post(sandbox, "/transferCall", headers, transfer)
    assert response.json() == load_fixture("api/transferCall_response.json")

    logged = sandbox.control("GET", "requests")
    assert [r["json"] for r in logged] == [terminate, transfer]
    assert logged[0]["json"]["params"]["call"]["tag"].encode() == CYRILLIC_TAG.encode()
    commands = sandbox.state.commands
    assert [c["command"] for c in commands] == ["terminateCall", "transferCall"]
    assert commands[1]["calleid"] == "883140582526566"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/terminateCall", {"call": {"id": "abc~1o"}, "transportId": "10.133.51.137:5070"}),  # no tag
        ("/terminateCall", {"call": "abc~1o", "transportId": "10.133.51.137:5070"}),
        (
            "/transferCall",
            {"call": {"id": "abc~1o", "tag": "t"}, "transportId": "10.133.51.137:5070"},
        ),  # no calleid
        (
            "/transferCall",
            {"call": {"id": "abc~1o", "tag": "t"}, " calleid ": "883140000000001", "transportId": "x"},
        ),
    ],
)
def test_call_commands_refuse_malformed_params(
    sandbox: RunningSandbox, path: str, params: dict[str, object]
) -> None:
    response = api_post(sandbox, path, bearer(sandbox), {"params": params})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 400


def test_invalid_json_and_wrong_method_are_client_errors(sandbox: RunningSandbox) -> None:
    headers = {**bearer(sandbox), "Content-Type": "application/json"}
    response = requests.post(f"{sandbox.url}/makeCall", data=b"{not json", headers=headers, timeout=10)
    assert response.status_code == 400
    assert api_get(sandbox, "/makeCall", headers).status_code == 405
    unknown = api_get(sandbox, "/terminalsInfo", headers)  # misspelt: the guide writes terminalsinfo
    assert unknown.status_code == 404
    assert sandbox.control("GET", "requests")[-1]["path"] == "/terminalsInfo"


def test_every_api_request_is_logged_with_its_status(sandbox: RunningSandbox) -> None:
    headers = bearer(sandbox)
    api_get(sandbox, "/workplacesInfo", headers)
    api_post(sandbox, "/makeCall", headers, {"params": {"callerId": "883140000000101", "calleid": "1"}})
    api_get(sandbox, "/externalNumbersInfo", {})
    log = sandbox.control("GET", "requests")
    assert [(r["method"], r["path"], r["status"]) for r in log] == [
        ("GET", "/workplacesInfo", 200),
        ("POST", "/makeCall", 400),
        ("GET", "/externalNumbersInfo", 401),
    ]
    assert log[0]["json"] is None
    assert log[1]["json"] == {"params": {"callerId": "883140000000101", "calleid": "1"}}
    assert all(r["time"].endswith("+00:00") for r in log)
    assert sandbox.control("GET", "requests?path=/makeCall") == [log[1]]
    sandbox.control("DELETE", "requests")
    assert sandbox.control("GET", "requests") == []


def test_rate_limit_sixth_request_in_a_second_is_429(sandbox: RunningSandbox) -> None:
    headers = bearer(sandbox)
    paths = ["/workplacesInfo", "/externalNumbersInfo", "/terminalsinfo", "/workplacesInfo", "/terminalsinfo"]
    started = time.monotonic()
    statuses = [api_get(sandbox, path, headers).status_code for path in paths]
    sixth = api_get(sandbox, "/externalNumbersInfo", headers)
    assert time.monotonic() - started < 1.0, "the machine is too slow for this test"
    assert statuses == [200] * 5
    assert sixth.status_code == 429
    assert sixth.headers["Retry-After"] == "1"
    assert sixth.json()["error"]["code"] == 429
    # The token endpoint is not limited.
    refresh = requests.post(
        f"{sandbox.url}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": sandbox.tokens()["refresh_token"]},
        auth=(sandbox.config.client_id, sandbox.config.client_secret),
        timeout=10,
    )
    assert refresh.status_code == 200
    time.sleep(1.05)
    assert api_get(sandbox, "/workplacesInfo", headers).status_code == 200


def test_rate_limit_is_configurable(sandbox: RunningSandbox) -> None:
    sandbox.control("POST", "config", {"rate_limit": 2})
    headers = bearer(sandbox)
    statuses = [api_get(sandbox, "/workplacesInfo", headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]

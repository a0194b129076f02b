"""The /_sandbox control API: fault injection, config patches, directory replacement, state."""

from __future__ import annotations

import time

import pytest
import requests

from sandbox.testing import Receiver, RunningSandbox

from .helpers import api_get, api_post, bearer


def test_fault_answers_the_next_n_matching_requests_then_stops(sandbox: RunningSandbox) -> None:
    headers = bearer(sandbox)
    faults = sandbox.control("POST", "faults", {"path": "/workplacesInfo", "status": 500, "count": 2})
    assert faults == {"faults": [{"path": "/workplacesInfo", "status": 500, "count": 2, "delay": 0.0}]}
    assert api_get(sandbox, "/externalNumbersInfo", headers).status_code == 200  # other paths untouched
    first = api_get(sandbox, "/workplacesInfo", headers)
    assert first.status_code == 500
    assert first.json()["error"]["code"] == 500
    assert api_get(sandbox, "/workplacesInfo", headers).status_code == 500
    assert api_get(sandbox, "/workplacesInfo", headers).status_code == 200
    assert sandbox.control("GET", "faults") == {"faults": []}
    statuses = [r["status"] for r in sandbox.control("GET", "requests?path=/workplacesInfo")]
    assert statuses == [500, 500, 200]


def test_wildcard_fault_hits_any_api_method_but_not_the_token_endpoint(sandbox: RunningSandbox) -> None:
    headers = bearer(sandbox)
    sandbox.control("POST", "faults", {"path": "*", "status": 503, "count": 2})
    refresh = requests.post(
        f"{sandbox.url}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": sandbox.tokens()["refresh_token"]},
        auth=(sandbox.config.client_id, sandbox.config.client_secret),
        timeout=10,
    )
    assert refresh.status_code == 200
    unavailable = api_post(sandbox, "/makeCall", headers, {"params": {}})
    assert unavailable.status_code == 503
    assert unavailable.headers["Retry-After"] == "1"
    assert api_get(sandbox, "/terminalsinfo", headers).status_code == 503
    assert api_get(sandbox, "/terminalsinfo", headers).status_code == 200


def test_fault_on_the_token_endpoint_by_exact_path(sandbox: RunningSandbox) -> None:
    sandbox.control("POST", "faults", {"path": "/oauth/token", "status": 429, "count": 1})
    data = {"grant_type": "refresh_token", "refresh_token": sandbox.tokens()["refresh_token"]}
    auth = (sandbox.config.client_id, sandbox.config.client_secret)
    first = requests.post(f"{sandbox.url}/oauth/token", data=data, auth=auth, timeout=10)
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "1"
    assert requests.post(f"{sandbox.url}/oauth/token", data=data, auth=auth, timeout=10).status_code == 200


def test_delay_fault_simulates_a_timeout(sandbox: RunningSandbox) -> None:
    headers = bearer(sandbox)
    sandbox.control("POST", "faults", {"path": "/workplacesInfo", "delay": 1.0, "count": 1})
    with pytest.raises(requests.Timeout):
        requests.get(f"{sandbox.url}/workplacesInfo", headers=headers, timeout=0.3)
    time.sleep(0.8)  # let the delayed request finish before the next one
    started = time.monotonic()
    assert api_get(sandbox, "/workplacesInfo", headers).status_code == 200
    assert time.monotonic() - started < 0.5


def test_delete_faults_clears_them(sandbox: RunningSandbox) -> None:
    sandbox.control("POST", "faults", {"path": "*", "status": 500, "count": 10})
    assert sandbox.control("DELETE", "faults") == {"faults": []}
    assert api_get(sandbox, "/workplacesInfo", bearer(sandbox)).status_code == 200


def test_a_fault_for_a_period_hits_every_matching_request_until_it_ends(sandbox: RunningSandbox) -> None:
    headers = bearer(sandbox)
    [fault] = sandbox.control(
        "POST", "faults", {"path": "*", "status": 429, "retry_after": 7, "seconds": 1.0}
    )["faults"]
    assert fault["count"] is None and 0 < fault["seconds_left"] <= 1.0 and fault["retry_after"] == 7
    answers = [api_get(sandbox, "/workplacesInfo", headers) for _ in range(4)]
    assert [a.status_code for a in answers] == [429] * 4  # no count: the whole period
    assert answers[0].headers["Retry-After"] == "7"
    deadline = time.monotonic() + 10
    while sandbox.control("GET", "faults")["faults"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert api_get(sandbox, "/workplacesInfo", headers).status_code == 200


def test_a_prefix_fault_and_a_slow_recording(sandbox: RunningSandbox) -> None:
    full = requests.get(f"{sandbox.url}/records/a/one.mp3", timeout=10).content
    sandbox.control("POST", "faults", {"path": "/records/*", "status": 503, "count": 1})
    assert requests.get(f"{sandbox.url}/records/b/two.mp3", timeout=10).status_code == 503
    # rate: the body comes in small pieces (a slow record host), whole and with its length.
    sandbox.control("POST", "faults", {"path": "/records/*", "rate": len(full) * 2, "count": 1})
    started = time.monotonic()
    slow = requests.get(f"{sandbox.url}/records/c/three.mp3", timeout=10)
    assert slow.headers["Content-Length"] == str(len(full))
    assert slow.content == full
    # Five pieces a tenth of a second apart: never faster than that (a lower bound, not a benchmark).
    assert time.monotonic() - started >= 0.35


@pytest.mark.parametrize(
    "payload",
    [
        {"path": "*", "status": 200},
        {"path": "makeCall", "status": 500},
        {"path": "*", "status": 500, "count": 0},
        {"path": "*"},
        {"path": "*", "status": 500, "seconds": 0},
        {"path": "*", "status": 429, "retry_after": -1},
        {"path": "/records/*", "rate": 0},
    ],
)
def test_bad_fault_requests_are_400(sandbox: RunningSandbox, payload: dict[str, object]) -> None:
    response = requests.post(f"{sandbox.url}/_sandbox/faults", json=payload, timeout=10)
    assert response.status_code == 400


def test_config_patch_and_read_back(sandbox: RunningSandbox) -> None:
    config = sandbox.control(
        "POST", "config", {"access_token_lifetime": 3, "notify_url": "http://x.test/hook"}
    )
    assert config["config"]["access_token_lifetime"] == 3
    assert config["config"]["notify_url"] == "http://x.test/hook"
    assert "client_secret" not in config["config"] and "password" not in config["config"]
    assert sandbox.config.access_token_lifetime == 3
    assert sandbox.state.issue_tokens()["expires_in"] == 3


@pytest.mark.parametrize(
    "payload",
    [{"rate_limit": "5"}, {"access_token_lifetime": True}, {"client_secret": "x"}, {"no_such": 1}],
)
def test_config_patch_refuses_bad_keys_and_types(sandbox: RunningSandbox, payload: dict[str, object]) -> None:
    response = requests.post(f"{sandbox.url}/_sandbox/config", json=payload, timeout=10)
    assert response.status_code == 400
    assert sandbox.config.rate_limit == 5
    assert sandbox.config.client_secret == "demo-secret"


def test_directory_replacement_changes_api_answers(sandbox: RunningSandbox) -> None:
    directory = {
        "workplaces": [{"workplace": "88314077716581", "name": "Администратор"}],
        "terminals": [{"terminal": "883140777380595", "workplace": "88314077716581"}],
        "numbers": [{"number": "78005560251", "type": None}],
    }
    answer = sandbox.control("POST", "directory", directory)
    assert answer["workplaces"] == directory["workplaces"]
    headers = bearer(sandbox)
    result = api_get(sandbox, "/workplacesInfo", headers).json()["result"]
    assert result == {"total": 1, "workplacesList": directory["workplaces"]}
    numbers = api_get(sandbox, "/externalNumbersInfo", headers).json()["result"]["numbersList"]
    assert numbers == directory["numbers"]
    make_call = {"params": {"callerId": "883140000000001", "calleid": "89219462761"}}
    assert (
        api_post(sandbox, "/makeCall", headers, make_call).status_code == 400
    )  # gone with the old directory


def test_directory_replacement_can_notify_the_crm(sandbox: RunningSandbox, receiver: Receiver) -> None:
    sandbox.control("POST", "config", {"notify_url": receiver.url})
    answer = sandbox.control(
        "POST", "directory", {"workplaces": [{"workplace": "1", "name": "A"}], "notify": True}
    )
    assert answer["notified"] == ["workplaces_changed"]
    bodies = receiver.wait_for(1)
    assert bodies == [{"event": "vpbxNotifications", "result": {"eventType": "workplacesChanged"}}]


def test_bad_directory_is_400(sandbox: RunningSandbox) -> None:
    response = requests.post(
        f"{sandbox.url}/_sandbox/directory", json={"workplaces": [{"name": "x"}]}, timeout=10
    )
    assert response.status_code == 400
    assert len(sandbox.config.directory.workplaces) == 3


def test_state_and_reset(sandbox: RunningSandbox) -> None:
    headers = bearer(sandbox)
    api_post(
        sandbox, "/setParkingNumbers", headers, {"params": {"numbers": ["74996497803"], "isParking": True}}
    )
    sandbox.control("POST", "faults", {"path": "*", "status": 500, "count": 5})
    state = sandbox.control("GET", "state")
    assert state["parking"] == {"74996497803": True}
    assert state["faults"][0]["count"] == 5
    sandbox.control("POST", "reset")
    state = sandbox.control("GET", "state")
    assert state["parking"] == {} and state["faults"] == []
    assert sandbox.control("GET", "requests") == []
    assert api_get(sandbox, "/workplacesInfo", headers).status_code == 200  # tokens survive a reset


def test_notify_base_rewrites_the_redirect_uri_host() -> None:
    from sandbox.config import SandboxConfig
    from sandbox.state import SandboxState

    state = SandboxState(SandboxConfig(notify_base="http://web:8000/"))
    state.remember_redirect_uri("demo-client", "http://localhost:8000/mtt/abc/?x=1")
    assert state.notify_url() == "http://web:8000/mtt/abc/?x=1"
    assert state.notify_url("http://other/") == "http://other/"

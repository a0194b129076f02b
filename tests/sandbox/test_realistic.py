"""The realistic sandbox: each behaviour the guide allows and the friendly sandbox never showed, one
switch each (sandbox/quirks.py), and the preset that turns them all on."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.quirks import QUIRKS, REALISTIC, Delivery, number_in_form
from sandbox.testing import Receiver, RunningSandbox, running_receiver, running_sandbox

from .helpers import api_get, api_post, bearer

CLIENT = "+79219462761"
LINE = "74996497803"
WORKPLACE = "883140000000002"
REDIRECT = "https://crm.example.com/mtt/notify-token/"
MP3_SYNC = (0xFF, 0xE0)


def quirks(sandbox: RunningSandbox, *names: str) -> None:
    sandbox.control("POST", "mode", {"quirks": list(names)})


def start(sandbox: RunningSandbox, receiver: Receiver, **payload: Any) -> list[dict[str, Any]]:
    """Play a scenario to the receiver; the callInfo of every POST it announced, in arrival order."""
    payload.setdefault("caller", CLIENT)
    payload.setdefault("workplace", WORKPLACE)
    response = requests.post(
        f"{sandbox.url}/_sandbox/scenario", json={"notify_url": receiver.url, **payload}, timeout=10
    )
    assert response.status_code == 202, response.text
    bodies = receiver.wait_for(response.json()["notifications"])
    time.sleep(0.1)
    assert len(receiver.bodies) == len(bodies)  # nothing more than announced
    return [b["result"].get("callInfo", b["result"]) for b in bodies]


def states(infos: list[dict[str, Any]]) -> list[str]:
    return [i["state"] for i in infos]


# --- the modes -----------------------------------------------------------------------------------


def test_the_friendly_mode_is_the_default_and_the_realistic_preset_turns_every_quirk_on(
    sandbox: RunningSandbox,
) -> None:
    assert sandbox.control("GET", "mode")["mode"] == "friendly"
    answer = sandbox.control("POST", "mode", {"mode": "realistic"})
    assert answer["mode"] == "realistic"
    assert set(answer["quirks"]) == set(QUIRKS) == REALISTIC
    assert set(answer["available"]) == set(QUIRKS)
    assert sandbox.control("GET", "config")["config"]["mode"] == "realistic"
    assert sandbox.control("POST", "mode", {"quirks": ["copies"]})["mode"] == "custom"
    assert sandbox.control("POST", "mode", {"mode": "friendly"})["quirks"] == []


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"mode": "chaotic"}, "mode must be one of"),
        ({"quirks": ["copies", "teleport"]}, "unknown quirks: teleport"),
        ({"quirks": "copies"}, "quirks must be list"),
        ({"mode": "realistic", "quirks": []}, 'give one of "mode" or "quirks"'),
        ({}, 'give one of "mode" or "quirks"'),
    ],
)
def test_bad_mode_requests_are_400(sandbox: RunningSandbox, payload: dict[str, Any], fragment: str) -> None:
    response = requests.post(f"{sandbox.url}/_sandbox/mode", json=payload, timeout=10)
    assert response.status_code == 400
    assert fragment in response.json()["error"]["message"]
    assert sandbox.control("GET", "mode")["mode"] == "friendly"


def test_the_demo_page_switches_the_mode(sandbox: RunningSandbox) -> None:
    assert "Режим / Mode: <strong>friendly" in requests.get(f"{sandbox.url}/", timeout=10).text
    response = requests.post(
        f"{sandbox.url}/_sandbox/mode", data={"mode": "realistic"}, allow_redirects=False, timeout=10
    )
    assert response.status_code == 303
    assert sandbox.config.quirks == REALISTIC
    assert "Режим / Mode: <strong>realistic" in requests.get(f"{sandbox.url}/", timeout=10).text


def test_a_sandbox_can_start_realistic() -> None:
    with running_sandbox(mode="realistic") as sandbox:
        assert sandbox.config.quirks == REALISTIC
    with running_sandbox(quirks=frozenset({"copies"})) as sandbox:
        assert sandbox.control("GET", "mode")["quirks"] == ["copies"]


# --- makeCall ids (§10.3.1 vs §10.1.2) -----------------------------------------------------------


def test_make_call_answers_an_id_unlike_its_notifications_call_id(
    sandbox: RunningSandbox, receiver: Receiver
) -> None:
    quirks(sandbox, "foreign_call_ids")
    sandbox.control("POST", "config", {"notify_url": receiver.url})
    payload = {"params": {"callerId": WORKPLACE, "calleid": "89219462761"}}
    answered = api_post(sandbox, "/makeCall", bearer(sandbox), payload).json()["result"]["call"]["id"]
    infos = [b["result"]["callInfo"] for b in receiver.wait_for(6)]
    notified = {i["call"]["id"] for i in infos}
    assert len(notified) == 1 and answered not in notified
    assert "!" in answered and answered.endswith("@10.133.51.137")  # like the guide's makeCall answer
    [call_id] = notified
    assert call_id.startswith("SD") and call_id.endswith("@127.0.0.1")  # like its notifications
    [made] = sandbox.state.calls
    assert (made["call_id"], made["notified_call_id"]) == (answered, call_id)
    # What the call's notifications carry is all a CRM can match by: our workplace, the dialled number.
    assert infos[0]["caller"]["accountId"] == WORKPLACE
    assert infos[0]["callee"]["id"] == "89219462761"


# --- spellings (§9.3, §9.4, §10.1) ---------------------------------------------------------------


def test_type_is_capitalised_as_in_the_guides_table(sandbox: RunningSandbox, receiver: Receiver) -> None:
    quirks(sandbox, "capitalised_values")
    incoming = start(sandbox, receiver, scenario="incoming_missed", external_number=LINE)
    assert {i["type"] for i in incoming} == {"Incoming"}
    assert states(incoming)[0] == "trying"  # states stay as the examples write them
    with running_receiver() as other:
        outgoing = start(sandbox, other, scenario="click_to_call")
    assert {i["type"] for i in outgoing if "type" in i} == {"Outgoing"}


def test_directory_changes_come_as_vrbx_notifications(sandbox: RunningSandbox, receiver: Receiver) -> None:
    quirks(sandbox, "vrbx_event")
    start(sandbox, receiver, scenario="numbers_changed")
    assert receiver.bodies == [{"event": "vrbxNotifications", "result": {"eventType": "numbersChanged"}}]


def test_terminals_come_as_the_guides_table_writes_them(sandbox: RunningSandbox) -> None:
    quirks(sandbox, "terminale_key")
    result = api_get(sandbox, "/terminalsinfo", bearer(sandbox)).json()["result"]
    assert set(result) == {"total", "terminalsList"}
    assert result["terminalsList"][0] == {"terminale": "883140000000101", "workplace": "883140000000001"}


# --- number forms (§6.4) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "form", "written"),
    [
        ("+79219462761", "8", "89219462761"),
        ("79219462761", "8", "89219462761"),
        ("74996497803", "00", "0074996497803"),
        ("+74996497803", "00", "0074996497803"),
        ("0074996497803", "00", "0074996497803"),
        ("+4915112345678", "8", "+4915112345678"),  # no trunk-8 form outside +7
        ("74996497803", "", "74996497803"),
    ],
)
def test_number_forms(number: str, form: str, written: str) -> None:
    assert number_in_form(number, form) == written


def test_numbers_alternate_between_8_and_00_our_lines_included(sandbox: RunningSandbox) -> None:
    quirks(sandbox, "number_forms")
    seen = []
    for _ in range(2):
        with running_receiver() as rx:
            infos = start(sandbox, rx, scenario="incoming_answered", external_number=LINE, duration=7)
        parked, employee = infos[0], infos[1]
        line = parked["callee"]
        assert line["id"] == line["displayId"] == line["accountId"]
        assert employee["callee"]["display_name"] == line["id"]
        assert parked["caller"]["accountId"] == "79219462761@pstn"  # the pstn account as the network has it
        seen.append((line["id"], parked["caller"]["id"]))
    assert seen == [("84996497803", "89219462761"), ("0074996497803", "0079219462761")]


def test_a_scenario_picks_its_number_form(sandbox: RunningSandbox, receiver: Receiver) -> None:
    infos = start(sandbox, receiver, scenario="click_to_call", external_number=LINE, number_form="00")
    trying = infos[0]
    assert trying["caller"]["id"] == "0074996497803"  # the company's number presented
    assert trying["callee"]["id"] == "0079219462761"
    with running_receiver() as rx:
        quirks(sandbox, "number_forms")
        plain = start(sandbox, rx, scenario="incoming_missed", external_number=LINE, number_form="as_is")
    assert plain[0]["callee"]["id"] == LINE


# --- records (§6.7, §7.6, §10.1.3) ---------------------------------------------------------------


def test_records_need_a_live_bearer_token(sandbox: RunningSandbox) -> None:
    quirks(sandbox, "records_need_token")
    url = f"{sandbox.url}/records/2020/12/18/9B58D12A.mp3"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=10).status_code == 401
    headers = bearer(sandbox)
    ok = requests.get(url, headers=headers, timeout=10)
    assert ok.status_code == 200 and tuple(ok.content[:2]) >= MP3_SYNC
    sandbox.control("POST", "expire-tokens")
    expired = requests.get(url, headers=headers, timeout=10)
    assert expired.status_code == 401
    assert expired.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    # Each refusal is in the request log, as the API's are.
    assert [r["status"] for r in sandbox.control("GET", "requests") if r["path"].startswith("/records/")] == [
        401,
        401,
        200,
        401,
    ]


def test_a_refresh_ends_the_old_access_token(sandbox: RunningSandbox) -> None:
    quirks(sandbox, "refresh_revokes_tokens", "records_need_token")
    first = sandbox.exchange(sandbox.authorize(REDIRECT), REDIRECT)
    refreshed = requests.post(
        f"{sandbox.url}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=(sandbox.config.client_id, sandbox.config.client_secret),
        timeout=10,
    ).json()
    old = {"Authorization": f"Bearer {first['access_token']}"}
    new = {"Authorization": f"Bearer {refreshed['access_token']}"}
    record = f"{sandbox.url}/records/a.mp3"
    assert requests.get(record, headers=old, timeout=10).status_code == 401
    assert api_get(sandbox, "/workplacesInfo", old).status_code == 401
    assert requests.get(record, headers=new, timeout=10).status_code == 200
    assert api_get(sandbox, "/workplacesInfo", new).status_code == 200


def test_without_the_quirk_an_old_token_lives_until_it_expires(sandbox: RunningSandbox) -> None:
    first = sandbox.exchange(sandbox.authorize(REDIRECT), REDIRECT)
    requests.post(
        f"{sandbox.url}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=(sandbox.config.client_id, sandbox.config.client_secret),
        timeout=10,
    ).raise_for_status()
    assert api_get(sandbox, "/workplacesInfo", {"Authorization": f"Bearer {first['access_token']}"}).ok


def test_records_count_against_the_integrations_requests_per_second(sandbox: RunningSandbox) -> None:
    quirks(sandbox, "records_need_token", "records_rate_limited")
    sandbox.control("POST", "config", {"rate_limit": 2})
    headers = bearer(sandbox)
    started = time.monotonic()
    record = requests.get(f"{sandbox.url}/records/a.mp3", headers=headers, timeout=10).status_code
    api = api_get(sandbox, "/workplacesInfo", headers).status_code
    third = requests.get(f"{sandbox.url}/records/b.mp3", headers=headers, timeout=10)
    assert time.monotonic() - started < 1.0, "the machine is too slow for this test"
    assert (record, api, third.status_code) == (200, 200, 429)
    assert third.headers["Retry-After"] == "1"


def test_records_are_served_as_octet_stream(sandbox: RunningSandbox) -> None:
    quirks(sandbox, "octet_stream_records")
    response = requests.get(f"{sandbox.url}/records/a.mp3", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.content[0] == 0xFF and response.content[1] & 0xE0 == 0xE0  # still an mp3


# --- commands for legs that are gone -------------------------------------------------------------


def _command(sandbox: RunningSandbox, method: str, call: dict[str, str], transport: str) -> dict[str, Any]:
    params: dict[str, Any] = {"call": call, "transportId": transport}
    if method == "/transferCall":
        params["calleid"] = "883140000000003"
    response = api_post(sandbox, method, bearer(sandbox), {"params": params})
    assert response.status_code == 200
    return dict(response.json())


@pytest.mark.parametrize("method", ["/transferCall", "/terminateCall"])
def test_a_command_for_a_leg_that_is_gone_is_refused(
    sandbox: RunningSandbox, receiver: Receiver, method: str
) -> None:
    quirks(sandbox, "refuse_gone_legs")
    unknown = {"id": "b9111e52e5d011e9aec7ac162d8cda20_00015D95DB072BFC_7022A1~2o", "tag": "133609"}
    assert _command(sandbox, method, unknown, "10.133.51.137:5070") == {
        "result": {"success": 0, "message": f"Call leg {unknown['id']} not found"}
    }
    infos = start(sandbox, receiver, scenario="incoming_missed", external_number=LINE)
    finished = infos[-2]  # the employee's leg, finished
    assert finished["state"] == "finished"
    refused = _command(sandbox, method, finished["call"], finished["transportId"])
    assert refused["result"]["success"] == 0
    assert [c["refused"] for c in sandbox.state.commands] == [True, True]


def test_a_parked_leg_takes_a_command_while_parked_and_none_after(sandbox: RunningSandbox) -> None:
    quirks(sandbox, "refuse_gone_legs")
    sandbox.control("POST", "config", {"parking_timeout": 0.3})
    headers = bearer(sandbox)
    api_post(sandbox, "/setParkingNumbers", headers, {"params": {"numbers": [LINE], "isParking": True}})
    answers: list[dict[str, Any]] = []

    def on_post(body: Any) -> None:
        info = body["result"]["callInfo"]
        if info["state"] == "trying" and info["call"]["id"].endswith("~1o"):
            answers.append(_command(sandbox, "/terminateCall", info["call"], info["transportId"]))

    with running_receiver(on_post=on_post) as rx:
        infos = start(sandbox, rx, scenario="incoming_missed", external_number=LINE)
    assert answers == [{"result": {"success": 1}}]
    # The PBX has routed the call: the parked leg is gone (its finished came, too).
    again = _command(sandbox, "/terminateCall", infos[0]["call"], infos[0]["transportId"])
    assert again["result"]["success"] == 0


def test_without_the_quirk_every_command_succeeds(sandbox: RunningSandbox) -> None:
    unknown = {"id": "x~1o", "tag": "y"}
    assert _command(sandbox, "/terminateCall", unknown, "10.133.51.137:5070") == {"result": {"success": 1}}
    assert sandbox.state.commands[0]["live_leg"] is False


# --- copies and order (§6.5; the guide promises no order) -----------------------------------------


def test_every_notification_comes_twice_the_copy_after_the_next_one(
    sandbox: RunningSandbox, receiver: Receiver
) -> None:
    quirks(sandbox, "copies")
    infos = start(sandbox, receiver, scenario="click_to_call")
    assert len(infos) == 12
    assert states(infos) == [
        "trying",
        "showing",
        "trying",
        "connected",
        "showing",
        "hiding",
        "connected",
        "finished",
        "hiding",
        "recorded",
        "finished",
        "recorded",
    ]
    # The copies are the same notifications byte for byte (the CRM stores them once).
    raw = [json.dumps(b, sort_keys=True) for b in receiver.bodies]
    assert len(set(raw)) == 6 and all(raw.count(r) == 2 for r in raw)


def test_notifications_come_in_swapped_pairs_after_the_first(
    sandbox: RunningSandbox, receiver: Receiver
) -> None:
    quirks(sandbox, "reorder")
    infos = start(sandbox, receiver, scenario="click_to_call")
    assert states(infos) == ["trying", "connected", "showing", "finished", "hiding", "recorded"]
    with running_receiver() as rx:
        incoming = start(sandbox, rx, scenario="incoming_answered", external_number=LINE)
    legs = [(i["call"]["id"][-2:], i["state"]) for i in incoming]
    assert legs == [
        ("1o", "trying"),  # the parked leg's trying first: its 5 s start with it
        ("2o", "showing"),
        ("2o", "trying"),
        ("1o", "finished"),
        ("2o", "connected"),
        ("2o", "recorded"),
        ("2o", "finished"),
    ]


@pytest.mark.parametrize(
    ("quirk_set", "reorder", "copies", "sent"),
    [
        (frozenset(), False, False, ["a", "b", "c"]),
        (frozenset({"reorder"}), True, False, ["a", "c", "b"]),
        (frozenset({"copies"}), False, True, ["a", "b", "a", "c", "b", "c"]),
        (frozenset({"copies", "reorder"}), True, True, ["a", "c", "a", "b", "c", "b"]),
    ],
)
def test_delivery_order(quirk_set: frozenset[str], reorder: bool, copies: bool, sent: list[str]) -> None:
    out: list[str] = []
    delivery = Delivery(lambda payload: out.append(payload["n"]), quirk_set)
    for name in "abc":
        delivery.emit({"n": name})
    delivery.finish()
    assert out == sent
    assert Delivery.factor(quirk_set) == (2 if copies else 1)


# --- per-call behaviours, in any mode ------------------------------------------------------------


def test_a_call_whose_finished_never_comes(sandbox: RunningSandbox, receiver: Receiver) -> None:
    infos = start(sandbox, receiver, scenario="incoming_answered", external_number=LINE, lose_finished=True)
    assert states(infos) == ["trying", "trying", "showing", "connected", "recorded"]


def test_an_ip_sip_call_has_only_trying_and_finished(sandbox: RunningSandbox, receiver: Receiver) -> None:
    answered = start(sandbox, receiver, scenario="incoming_ip_sip", external_number=LINE, duration=42)
    assert [(i["call"]["id"][-2:], i["state"]) for i in answered] == [
        ("1o", "trying"),
        ("2o", "trying"),
        ("2o", "finished"),
        ("1o", "finished"),
    ]
    assert answered[2]["duration"] == 42 and answered[2]["reason"] == "Answer leg disconnected"
    with running_receiver() as rx:
        missed = start(sandbox, rx, scenario="incoming_ip_sip", external_number=LINE, duration=0)
    assert (missed[2]["duration"], missed[2]["reason"]) == (0, "No answer")


@pytest.fixture
def realistic() -> Iterator[RunningSandbox]:
    with running_sandbox(step_delay=0.01, mode="realistic") as sandbox:
        yield sandbox


def test_the_realistic_preset_together(realistic: RunningSandbox, receiver: Receiver) -> None:
    infos = start(realistic, receiver, scenario="incoming_answered", external_number=LINE, duration=9)
    assert len(infos) == 14  # seven notifications, each twice
    assert {i["type"] for i in infos if "type" in i} == {"Incoming"}
    assert infos[0]["callee"]["id"] == "84996497803"
    assert sorted(set(states(infos))) == ["connected", "finished", "recorded", "showing", "trying"]
    record = next(i["urlRecord"] for i in infos if i["state"] == "recorded")
    assert requests.get(record, timeout=10).status_code == 401
    got = requests.get(record, headers=bearer(realistic), timeout=10)
    assert got.status_code == 200 and got.headers["Content-Type"] == "application/octet-stream"


# --- the command and the setting -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "option", "expected"),
    [
        ("friendly", None, frozenset()),
        ("realistic", None, REALISTIC),
        ("realistic", "friendly", frozenset()),  # the option wins
        ("friendly", "copies, reorder", frozenset({"copies", "reorder"})),
    ],
)
def test_the_command_takes_its_mode_from_the_setting_or_the_option(
    monkeypatch: pytest.MonkeyPatch, settings: Any, setting: str, option: str | None, expected: frozenset[str]
) -> None:
    from django.core.management import call_command

    settings.SANDBOX_MODE = setting
    started: list[Any] = []
    monkeypatch.setattr(
        "sandbox.management.commands.mtt_sandbox.run_simple",
        lambda host, port, app, **kw: started.append(app),
    )
    call_command("mtt_sandbox", "--port", "8123", *(["--mode", option] if option is not None else []))
    [app] = started
    assert app.config.quirks == expected


def test_the_command_refuses_an_unknown_mode(settings: Any) -> None:
    from django.core.management import call_command
    from django.core.management.base import CommandError

    settings.SANDBOX_MODE = "realistc"
    with pytest.raises(CommandError, match="unknown quirks: realistc"):
        call_command("mtt_sandbox", "--port", "8123")

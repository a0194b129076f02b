"""Scenarios POST guide-shaped notifications (§10.1) to the notify URL, in order, and react to the CRM."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import requests

from sandbox.testing import Receiver, RunningSandbox, running_receiver

from .helpers import api_post, bearer, load_fixture, shape

CLIENT = "+79219462761"
WORKPLACE = "883140000000002"
NUMBER = "74996497803"
START_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def _start(sandbox: RunningSandbox, **payload: Any) -> dict[str, Any]:
    response = requests.post(f"{sandbox.url}/_sandbox/scenario", json=payload, timeout=10)
    assert response.status_code == 202, response.text
    return dict(response.json())


def _info(body: dict[str, Any]) -> dict[str, Any]:
    assert body["event"] == "callNotifications"
    return dict(body["result"]["callInfo"])


def _incoming(
    sandbox: RunningSandbox, receiver: Receiver, scenario: str, **extra: Any
) -> list[dict[str, Any]]:
    started = _start(
        sandbox,
        scenario=scenario,
        caller=CLIENT,
        external_number=NUMBER,
        workplace=WORKPLACE,
        notify_url=receiver.url,
        **extra,
    )
    bodies = receiver.wait_for(started["notifications"])
    time.sleep(0.1)
    assert len(receiver.bodies) == started["notifications"]  # nothing more than announced
    base = started["call_id"]
    for body in bodies:
        assert _info(body)["call"]["id"].startswith(base)
    return [_info(b) for b in bodies]


def test_incoming_answered_sequence_and_shapes(sandbox: RunningSandbox, receiver: Receiver) -> None:
    infos = _incoming(sandbox, receiver, "incoming_answered", duration=42)
    legs = [(i["call"]["id"].rsplit("~", 1)[-1] if "~" in i["call"]["id"] else "", i["state"]) for i in infos]
    assert legs == [
        ("1o", "trying"),
        ("2o", "trying"),
        ("2o", "showing"),
        ("2o", "connected"),
        ("1o", "finished"),
        ("2o", "finished"),
        ("2o", "recorded"),
    ]
    parked, employee = infos[0], infos[1]
    assert shape(parked) == shape(load_fixture("notifications/01_incoming_trying.json")["result"]["callInfo"])
    assert parked["callee"]["id"] == NUMBER
    assert parked["caller"] == {
        "accountId": "79219462761@pstn",
        "displayId": CLIENT,
        "forwarderList": [],
        "id": CLIENT,
    }
    assert START_TIME.fullmatch(parked["startTime"])
    assert parked["type"] == "incoming"
    assert employee["callee"]["id"] == WORKPLACE
    assert employee["callee"]["forwarderList"]  # the route it went through
    assert employee["call"]["tag"] != parked["call"]["tag"]

    finished = infos[5]
    fixture = load_fixture("notifications/07_incoming_finished.json")["result"]["callInfo"]
    assert shape(finished) == shape(fixture)
    assert "startTime" not in finished
    assert finished["duration"] == 42
    assert infos[4]["reasonCode"] == "16"

    recorded = infos[6]
    assert shape(recorded) == shape(load_fixture("notifications/03_recorded.json")["result"]["callInfo"])
    assert recorded["accountId"] == WORKPLACE
    assert recorded["call"] == {"id": employee["call"]["id"]}  # no tag on recorded
    assert re.fullmatch(
        re.escape(sandbox.url) + r"/records/\d{4}/\d\d/\d\d/[0-9a-f-]{36}\.mp3", recorded["urlRecord"]
    )


def test_incoming_missed_sequence(sandbox: RunningSandbox, receiver: Receiver) -> None:
    infos = _incoming(sandbox, receiver, "incoming_missed")
    assert [(i["call"]["id"][-2:], i["state"]) for i in infos] == [
        ("1o", "trying"),
        ("2o", "trying"),
        ("2o", "showing"),
        ("2o", "hiding"),
        ("2o", "finished"),
        ("1o", "finished"),
    ]
    assert infos[4]["duration"] == 0
    assert infos[4]["reason"]


def test_click_to_call_matches_the_guides_outgoing_examples(
    sandbox: RunningSandbox, receiver: Receiver
) -> None:
    started = _start(
        sandbox,
        scenario="click_to_call",
        caller=CLIENT,
        workplace=WORKPLACE,
        external_number="78005560251",
        notify_url=receiver.url,
    )
    infos = [_info(b) for b in receiver.wait_for(started["notifications"])]
    assert [i["state"] for i in infos] == ["trying", "showing", "connected", "hiding", "finished", "recorded"]
    assert {i["call"]["id"] for i in infos} == {started["call_id"]}
    fixtures = [
        "02_outgoing_trying",
        "04_outgoing_showing",
        "05_outgoing_connected",
        "06_outgoing_hiding",
        "08_outgoing_finished",
        "03_recorded",
    ]
    for info, name in zip(infos, fixtures, strict=True):
        assert shape(info) == shape(load_fixture(f"notifications/{name}.json")["result"]["callInfo"]), name
    trying = infos[0]
    assert trying["type"] == "outgoing"
    assert trying["caller"]["accountId"] == WORKPLACE
    assert trying["caller"]["id"] == "78005560251"  # the company's number is presented
    assert trying["callee"]["id"] == CLIENT
    assert infos[2]["callee"]["id"] == "79219462761"  # as the network gives it, like the guide's example
    assert len({i["call"].get("tag") for i in infos[:5]}) == 1
    assert "\u0435" in trying["call"]["tag"]  # a Cyrillic letter, like the guide's "sdfе2n901-…"


def test_recorded_only(sandbox: RunningSandbox, receiver: Receiver) -> None:
    started = _start(sandbox, scenario="recorded", call_id="SDvapac01-x@127.0.0.1", notify_url=receiver.url)
    assert started == {"call_id": "SDvapac01-x@127.0.0.1", "notifications": 1}
    [body] = receiver.wait_for(1)
    assert shape(body) == shape(load_fixture("notifications/03_recorded.json"))
    assert _info(body)["call"] == {"id": "SDvapac01-x@127.0.0.1"}
    audio = requests.get(_info(body)["urlRecord"], timeout=10)
    assert audio.status_code == 200
    assert audio.headers["Content-Type"] == "audio/mpeg"


def test_duplicate_sends_every_notification_twice(sandbox: RunningSandbox, receiver: Receiver) -> None:
    started = _start(
        sandbox, scenario="click_to_call", caller=CLIENT, notify_url=receiver.url, duplicate=True
    )
    assert started["notifications"] == 12
    bodies = receiver.wait_for(12)
    assert bodies[0::2] == bodies[1::2]
    assert [_info(b)["state"] for b in bodies[0::2]] == [
        "trying",
        "showing",
        "connected",
        "hiding",
        "finished",
        "recorded",
    ]


def test_notifications_are_utf8_json_with_cyrillic_bytes(sandbox: RunningSandbox, receiver: Receiver) -> None:
    _start(sandbox, scenario="click_to_call", caller=CLIENT, notify_url=receiver.url)
    receiver.wait_for(1)
    assert receiver.headers[0]["Content-Type"] == "application/json"
    tag = _info(receiver.bodies[0])["call"]["tag"]
    assert tag.encode("utf-8") in receiver.raw[0]  # raw UTF-8, not \u0435 escapes


def test_notifications_log_records_statuses_and_failures(sandbox: RunningSandbox) -> None:
    with running_receiver(status=500) as failing:
        started = _start(sandbox, scenario="recorded", notify_url=failing.url)
        failing.wait_for(1)
    time.sleep(0.1)
    _start(sandbox, scenario="recorded", notify_url="http://127.0.0.1:9/nothing-listens")
    deadline = time.monotonic() + 5
    while len(sandbox.state.notifications_snapshot()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    log = sandbox.control("GET", "notifications")
    assert (
        log[0]["status"] == 500 and log[0]["call_id"] == started["call_id"] and log[0]["state"] == "recorded"
    )
    assert log[1]["status"] is None and "ConnectionError" in log[1]["error"]
    assert sandbox.control("DELETE", "notifications") == {"cleared": True}
    assert sandbox.control("GET", "notifications") == []


def test_scenario_goes_to_the_authorized_redirect_uri(sandbox: RunningSandbox, receiver: Receiver) -> None:
    sandbox.authorize(receiver.url)  # like the portal: one Redirect URI gets the code and the notifications
    started = _start(sandbox, scenario="incoming_missed")
    assert len(receiver.wait_for(started["notifications"])) == 6


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"scenario": "incoming_answered"}, "no notify URL"),
        ({"scenario": "dance", "notify_url": "http://x.test/"}, "unknown scenario"),
        ({"notify_url": "http://x.test/"}, "scenario is required"),
        ({"scenario": "recorded", "notify_url": "http://x.test/", "duplicate": "yes"}, "duplicate"),
        (
            {"scenario": "incoming_answered", "workplace": "883140000000101", "notify_url": "http://x.test/"},
            "workplace",
        ),
        (
            {
                "scenario": "incoming_answered",
                "external_number": "70000000000",
                "notify_url": "http://x.test/",
            },
            "number",
        ),
        ({"scenario": "incoming_answered", "notify_url": "http://x.test/", "color": "red"}, "unknown fields"),
    ],
)
def test_bad_scenario_requests_are_400(
    sandbox: RunningSandbox, payload: dict[str, Any], fragment: str
) -> None:
    response = requests.post(f"{sandbox.url}/_sandbox/scenario", json=payload, timeout=10)
    assert response.status_code == 400
    assert fragment in response.json()["error"]["message"]


def test_make_call_plays_click_to_call_with_the_returned_id(
    sandbox: RunningSandbox, receiver: Receiver
) -> None:
    sandbox.control("POST", "config", {"notify_url": receiver.url})
    payload = {"params": {"callerId": WORKPLACE, "calleid": "89219462761"}}
    call_id = api_post(sandbox, "/makeCall", bearer(sandbox), payload).json()["result"]["call"]["id"]
    infos = [_info(b) for b in receiver.wait_for(6)]
    assert [(i["call"]["id"], i["state"]) for i in infos] == [
        (call_id, s) for s in ("trying", "showing", "connected", "hiding", "finished", "recorded")
    ]
    assert infos[0]["caller"]["accountId"] == WORKPLACE
    assert infos[0]["callee"]["id"] == "89219462761"


def test_make_call_without_auto_click_to_call_sends_nothing(
    sandbox: RunningSandbox, receiver: Receiver
) -> None:
    sandbox.control("POST", "config", {"notify_url": receiver.url, "auto_click_to_call": False})
    payload = {"params": {"callerId": WORKPLACE, "calleid": "89219462761"}}
    assert api_post(sandbox, "/makeCall", bearer(sandbox), payload).status_code == 200
    time.sleep(0.3)
    assert receiver.bodies == []


def _transfer_on_parked_trying(sandbox: RunningSandbox, headers: dict[str, str], tag_of: Any) -> Any:
    def on_post(body: Any) -> None:
        info = body["result"]["callInfo"]
        if info["state"] == "trying" and info["call"]["id"].endswith("~1o"):
            # Answer synchronously from the notification handler, like a CRM doing smart routing.
            api_post(
                sandbox,
                "/transferCall",
                headers,
                {
                    "params": {
                        "call": {"id": info["call"]["id"], "tag": tag_of(info["call"]["tag"])},
                        "calleid": "883140000000003",
                        "transportId": info["transportId"],
                    },
                },
            )

    return on_post


def test_parked_call_is_transferred_by_the_crm(sandbox: RunningSandbox) -> None:
    headers = bearer(sandbox)
    api_post(sandbox, "/setParkingNumbers", headers, {"params": {"numbers": [NUMBER], "isParking": True}})
    with running_receiver(on_post=_transfer_on_parked_trying(sandbox, headers, lambda tag: tag)) as rx:
        started = _start(
            sandbox,
            scenario="incoming_answered",
            caller=CLIENT,
            external_number=NUMBER,
            workplace=WORKPLACE,
            notify_url=rx.url,
        )
        infos = [_info(b) for b in rx.wait_for(started["notifications"])]
    assert "\u0435" in infos[0]["call"]["tag"]  # the parked leg's tag must be echoed byte for byte
    employee = [i for i in infos if i["call"]["id"].endswith("~2o") and i["state"] != "recorded"]
    assert {i["callee"]["id"] for i in employee} == {"883140000000003"}
    assert infos[-1]["accountId"] == "883140000000003"  # the recording belongs to who answered
    [command] = sandbox.state.commands
    assert command["command"] == "transferCall"
    assert command["matched_leg"] is True
    assert command["call"] == infos[0]["call"]


def test_parked_call_with_a_mangled_tag_falls_back_to_pbx_routing(sandbox: RunningSandbox) -> None:
    sandbox.control("POST", "config", {"parking_timeout": 0.5})
    headers = bearer(sandbox)
    api_post(sandbox, "/setParkingNumbers", headers, {"params": {"numbers": [NUMBER], "isParking": True}})
    mangle = lambda tag: tag.replace("\u0435", "e")  # noqa: E731 - Latin "e": looks equal, is not
    with running_receiver(on_post=_transfer_on_parked_trying(sandbox, headers, mangle)) as rx:
        started_at = time.monotonic()
        started = _start(
            sandbox,
            scenario="incoming_answered",
            caller=CLIENT,
            external_number=NUMBER,
            workplace=WORKPLACE,
            notify_url=rx.url,
        )
        infos = [_info(b) for b in rx.wait_for(started["notifications"])]
    assert time.monotonic() - started_at >= 0.5  # waited out the parking time
    employee = [i for i in infos if i["call"]["id"].endswith("~2o") and i["state"] != "recorded"]
    assert {i["callee"]["id"] for i in employee} == {WORKPLACE}
    assert sandbox.state.commands[0]["matched_leg"] is False

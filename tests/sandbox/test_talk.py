"""The talk a scenario's finished reports: the seconds that passed since the call was answered, unless the
scenario asks for a figure (the demo's call pages must agree with the times its notifications came at)."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
import requests

from sandbox import scenarios
from sandbox.scenarios import TalkClock
from sandbox.testing import Receiver, RunningSandbox

CLIENT = "+79219462761"
NUMBER = "74996497803"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(scenarios.time, "monotonic", fake)
    return fake


def test_the_talk_is_the_time_since_the_answer(clock: FakeClock) -> None:
    talk = TalkClock()
    assert talk.seconds() == 0  # never answered: nobody talked
    talk.answer()
    clock.now += 2.6
    talk.answer()  # a second answer (a copy) does not restart it
    clock.now += 0.3
    assert talk.seconds() == 3
    clock.now += 87
    assert talk.seconds() == 90


def test_an_answered_call_talks_at_least_a_second(clock: FakeClock) -> None:
    talk = TalkClock()
    talk.answer()
    clock.now += 0.2
    assert talk.seconds() == 1


def test_a_duration_asked_for_is_reported_as_asked(clock: FakeClock) -> None:
    talk = TalkClock(asked=42)
    talk.answer()
    clock.now += 2
    assert talk.seconds() == 42
    assert TalkClock(asked=0).seconds() == 0


def _play(sandbox: RunningSandbox, receiver: Receiver, scenario: str) -> list[dict[str, Any]]:
    response = requests.post(
        f"{sandbox.url}/_sandbox/scenario",
        json={"scenario": scenario, "caller": CLIENT, "external_number": NUMBER, "notify_url": receiver.url},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    bodies = receiver.wait_for(response.json()["notifications"])
    return [body["result"]["callInfo"] for body in bodies]


@pytest.mark.parametrize("scenario", ["incoming_answered", "click_to_call", "incoming_ip_sip"])
def test_a_scenario_reports_no_more_talk_than_it_took(
    sandbox: RunningSandbox, receiver: Receiver, scenario: str
) -> None:
    """Once a random 5–120 s whatever the call took: the demo's call of 2 s showed "Разговор 1:30"."""
    began = time.monotonic()
    infos = _play(sandbox, receiver, scenario)
    took = time.monotonic() - began
    finished = [info for info in infos if info["state"] == "finished"]
    assert finished
    for info in finished:
        assert 1 <= info["duration"] <= max(1, math.ceil(took)), (info["duration"], took)
        assert info["reason"] != "No answer"

"""Parked calls when MTT or the clock fails (guide §5.4, §10.2; issue 8): a refused transfer, MTT failing,
the 5 s deadline, MTT answering 429 or hanging for a while (tests/calls/routing_fixtures.py)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from calls.models import RoutingDecision
from sandbox.testing import Receiver, RunningSandbox, running_receiver
from tests.calls import routing_fixtures as shared
from tests.calls.routing_fixtures import WP1, WP3, commands, post, ring, routed_to

# The shared fixtures, under their names (english and routing_settings are autouse).
english = shared.english
routing_settings = shared.routing_settings
sandbox = shared.sandbox
receiver = shared.receiver
world = shared.world


def test_transfer_refused_by_mtt_releases_the_call(
    world: dict[str, Any],
    sandbox: RunningSandbox,
    receiver: Receiver,
    client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    sandbox.control("POST", "faults", {"path": "/transferCall", "status": 400})
    trying = ring(sandbox, receiver)
    post(client, world["mtt"], trying, django_capture_on_commit_callbacks)

    assert [(r["path"], r["status"]) for r in commands(sandbox)] == [
        ("/transferCall", 400),
        ("/terminateCall", 200),
    ]
    [command] = sandbox.state.snapshot()["commands"]
    assert command["command"] == "terminateCall" and command["matched_leg"] is True
    assert routed_to(receiver) == WP3
    decision = RoutingDecision.objects.get()
    assert decision.decision == RoutingDecision.Decision.RELEASE
    assert decision.reason == RoutingDecision.Reason.TRANSFER_REFUSED
    assert decision.command == "transferCall + terminateCall"
    assert "Injected fault (HTTP 400)" in decision.mtt_answer
    assert decision.summary == "MTT refused the transfer to Мария Иванова → released to the PBX's routing"


def test_mtt_failing_is_recorded_and_the_pbx_routes_the_call_itself(
    world: dict[str, Any],
    sandbox: RunningSandbox,
    receiver: Receiver,
    client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    sandbox.control("POST", "config", {"parking_timeout": 0.3})
    sandbox.control("POST", "faults", {"path": "/terminateCall", "status": 500})
    trying = ring(sandbox, receiver, caller="+79035550101")
    post(client, world["mtt"], trying, django_capture_on_commit_callbacks)
    assert [(r["path"], r["status"]) for r in commands(sandbox)] == [("/terminateCall", 500)]
    decision = RoutingDecision.objects.get()
    assert decision.decision == RoutingDecision.Decision.FAILED
    assert decision.mtt_answer == "terminateCall: MTT answered HTTP 500"
    assert decision.summary == (
        "unknown client → failed (terminateCall: MTT answered HTTP 500): the PBX routed the call itself"
    )
    assert routed_to(receiver) == WP3


def test_a_decision_past_the_deadline_sends_nothing(
    world: dict[str, Any],
    sandbox: RunningSandbox,
    receiver: Receiver,
    client: Client,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    trying = ring(sandbox, receiver)
    settings.ROUTING_DEADLINE_SECONDS = 0.0  # the notification "arrived" too long ago
    post(client, world["mtt"], trying, django_capture_on_commit_callbacks)
    assert commands(sandbox) == []
    decision = RoutingDecision.objects.get()
    assert decision.decision == RoutingDecision.Decision.TOO_LATE
    assert decision.reason == RoutingDecision.Reason.MANAGER_FREE
    assert decision.sent_at is None
    assert decision.summary == (
        "personal manager Мария Иванова free → too late, nothing sent: the PBX routed the call itself"
    )


def test_the_deadline_is_checked_again_right_before_sending(
    world: dict[str, Any],
    sandbox: RunningSandbox,
    receiver: Receiver,
    client: Client,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The permit comes late (as when every permit of this second is taken): the wait runs past a 0.5 s
    # deadline. Simulated with a fixed wait, so the test does not race the limiter's window.
    settings.ROUTING_DEADLINE_SECONDS = 0.5

    def slow_acquire(integration_id: int, *, priority: bool = False, max_wait: float | None = None) -> float:
        time.sleep(0.8)
        return 0.8

    trying = ring(sandbox, receiver)
    monkeypatch.setattr("integrations.mtt.client.ratelimit.acquire", slow_acquire)
    started = time.monotonic()
    post(client, world["mtt"], trying, django_capture_on_commit_callbacks)
    assert time.monotonic() - started < 3
    assert commands(sandbox) == []
    decision = RoutingDecision.objects.get()
    assert decision.decision == RoutingDecision.Decision.TOO_LATE
    assert decision.sent_at is None
    assert "deadline" in decision.mtt_answer


# --- MTT failing for a while (issue 8: faults) ----------------------------------------------------------


def test_mtt_answering_429_for_a_while_drops_the_command_rather_than_send_it_late(
    world: dict[str, Any],
    sandbox: RunningSandbox,
    receiver: Receiver,
    client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # MTT refuses everything for two seconds with 429 and asks for 30 s: far past the 5 s of parking.
    sandbox.control("POST", "faults", {"path": "*", "status": 429, "retry_after": 30, "seconds": 2})
    trying = ring(sandbox, receiver)
    post(client, world["mtt"], trying, django_capture_on_commit_callbacks)
    # One attempt, refused; no second one after the deadline.
    assert [(r["path"], r["status"]) for r in commands(sandbox)] == [("/transferCall", 429)]
    decision = RoutingDecision.objects.get()
    assert decision.decision == RoutingDecision.Decision.TOO_LATE
    assert decision.sent_at is None
    assert routed_to(receiver) == WP3  # the PBX routed the call itself
    assert [(r["path"], r["status"]) for r in commands(sandbox)] == [("/transferCall", 429)]

    # MTT answers again: the next parked call is routed to the manager as usual.
    deadline = time.monotonic() + 30
    while sandbox.control("GET", "faults")["faults"] and time.monotonic() < deadline:
        time.sleep(0.1)
    with running_receiver() as second:
        trying = ring(sandbox, second)
        post(client, world["mtt"], trying, django_capture_on_commit_callbacks)
        assert routed_to(second) == WP1
    assert commands(sandbox)[-1]["status"] == 200


def test_mtt_hanging_gets_the_command_in_time_and_nothing_later(
    world: dict[str, Any],
    sandbox: RunningSandbox,
    receiver: Receiver,
    client: Client,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    # MTT takes 8 s to answer transferCall (beyond the parking and below MTT_READ_TIMEOUT's 10 s).
    sandbox.control("POST", "faults", {"path": "/transferCall", "delay": 8, "count": 1})
    trying = ring(sandbox, receiver)
    post(client, world["mtt"], trying, django_capture_on_commit_callbacks)
    decision = RoutingDecision.objects.get()
    assert decision.decision == RoutingDecision.Decision.FAILED
    assert "Timeout" in decision.mtt_answer
    # It left before the deadline; we stopped waiting for the answer soon after, and sent nothing else.
    assert decision.sent_at is not None
    assert decision.sent_at <= decision.received_at + timedelta(seconds=settings.ROUTING_DEADLINE_SECONDS)
    assert routed_to(receiver) == WP3
    deadline = time.monotonic() + 30
    while not commands(sandbox) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [r["path"] for r in commands(sandbox)] == ["/transferCall"]

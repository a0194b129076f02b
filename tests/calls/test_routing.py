"""Parked calls against the sandbox's incoming scenario (guide §5.4, §10.2).

The sandbox parks the call and POSTs the parked leg's ``trying`` to a receiver; the test hands that exact
notification to the CRM's notify URL (so the CRM sees what MTT sent, Cyrillic tag and all), and the CRM's
transferCall/terminateCall reaches the sandbox, which checks call id and tag byte for byte.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone, translation

from calls.models import Call, RoutingDecision
from calls.routing import routing_choose, routing_pool_shutdown, within_hours
from contacts.models import Contact
from contacts.services import contact_add_number
from integrations.applier import applier_drain
from integrations.models import Integration, Workplace
from sandbox.testing import Receiver, RunningSandbox, running_receiver, running_sandbox
from tests.calls.test_dial import connect

WP1, WP2, WP3 = "883140000000001", "883140000000002", "883140000000003"
LINE = "74996497803"
CLIENT = "+79219462761"
CYRILLIC_E = "\u0435"


@pytest.fixture(autouse=True)
def _english(settings: Any) -> Iterator[None]:
    # The assertions read the English source strings, whatever the catalogue translates them to.
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(step_delay=0.01, auto_click_to_call=False, parking_timeout=5.0) as sb:
        yield sb


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as rx:
        yield rx


@pytest.fixture(autouse=True)
def _routing_settings(settings: Any) -> Iterator[None]:
    settings.MTT_RATE_LIMIT_KEY_PREFIX = f"test-routing:{uuid.uuid4().hex}:"
    yield
    routing_pool_shutdown()  # the sender threads' database connections must not outlive the test


def _setup(sandbox: RunningSandbox, capture: Any) -> dict[str, Any]:
    mtt = connect(sandbox, capture)
    users = get_user_model().objects
    ivanova = users.create_user("ivanova", password="x-pass-123", first_name="Мария", last_name="Иванова")
    petrov = users.create_user("petrov", password="x-pass-123", first_name="Алексей", last_name="Петров")
    Workplace.objects.filter(integration=mtt, sip_id=WP1).update(user=ivanova)
    Workplace.objects.filter(integration=mtt, sip_id=WP2).update(user=petrov)
    client = Contact.objects.create(name="Пётр Клиентов", personal_manager=ivanova)
    contact_add_number(contact=client, number=CLIENT)
    from integrations.parking import external_numbers_set_parking

    external_numbers_set_parking(integration=mtt, numbers=[LINE], is_parking=True)
    assert sandbox.state.is_parking(LINE)
    sandbox.control("DELETE", "requests")
    return {"mtt": mtt, "ivanova": ivanova, "petrov": petrov, "client": client}


@pytest.fixture
def world(
    transactional_db: Any, sandbox: RunningSandbox, django_capture_on_commit_callbacks: Any
) -> dict[str, Any]:
    # Committed rows: the applier's commit sends the command from the sender pool's own threads.
    return _setup(sandbox, django_capture_on_commit_callbacks)


def post(client: Client, integration: Integration, body: Any, capture: Any) -> None:
    """The notify URL stores it, the applier applies it, the routing command leaves after the commit."""
    response = client.post(
        integration.notify_path, json.dumps(body, ensure_ascii=False), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    applier_drain()
    routing_pool_shutdown()  # waits for the commands in flight


def ring(
    sandbox: RunningSandbox,
    receiver: Receiver,
    caller: str = CLIENT,
    line: str = LINE,
    number_form: str | None = None,
) -> dict[str, Any]:
    """Start an incoming call to ``line``; return the parked leg's trying as the sandbox sent it.
    ``number_form``: how the PBX writes the numbers ("as_is", "8", "00"; guide §6.4)."""
    scenario = {
        "scenario": "incoming_missed",
        "caller": caller,
        "external_number": line,
        "workplace": WP3,  # where the PBX's own routing sends the call
        "notify_url": receiver.url,
    }
    if number_form is not None:
        scenario["number_form"] = number_form
    sandbox.control("POST", "scenario", scenario)
    [trying] = receiver.wait_for(1)
    info = trying["result"]["callInfo"]
    assert info["state"] == "trying" and info["call"]["id"].endswith("~1o")
    return dict(trying)


def routed_to(receiver: Receiver) -> str:
    """Whose workplace the call rang after the parking (the employee leg's callee)."""
    bodies = receiver.wait_for(2)
    return str(bodies[1]["result"]["callInfo"]["callee"]["id"])


def commands(sandbox: RunningSandbox) -> list[dict[str, Any]]:
    return [r for r in sandbox.control("GET", "requests") if r["path"] in ("/transferCall", "/terminateCall")]


def test_known_client_with_a_free_manager_is_transferred_to_the_manager(
    world: dict[str, Any],
    sandbox: RunningSandbox,
    receiver: Receiver,
    client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    trying = ring(sandbox, receiver)
    sent = trying["result"]["callInfo"]
    assert CYRILLIC_E in sent["call"]["tag"]

    post(client, world["mtt"], trying, django_capture_on_commit_callbacks)

    [command] = sandbox.state.snapshot()["commands"]
    assert command["command"] == "transferCall"
    assert command["call"] == {"id": sent["call"]["id"], "tag": sent["call"]["tag"]}  # byte for byte
    assert command["matched_leg"] is True
    assert command["calleid"] == WP1 and command["transportId"] == sent["transportId"]
    [request] = commands(sandbox)
    assert request["json"] == {
        "params": {"call": sent["call"], "calleid": WP1, "transportId": sent["transportId"]}
    }
    assert routed_to(receiver) == WP1  # the sandbox acted on it

    decision = RoutingDecision.objects.get()
    assert decision.decision == RoutingDecision.Decision.TRANSFER
    assert decision.reason == RoutingDecision.Reason.MANAGER_FREE
    assert decision.leg.leg_id == sent["call"]["id"]
    assert decision.target_workplace == Workplace.objects.get(sip_id=WP1)
    assert decision.manager == world["ivanova"]
    assert decision.sent_at is not None and decision.latency_ms is not None
    assert decision.latency_ms < 4500
    assert decision.mtt_answer == "transferCall: success"
    assert decision.summary.startswith("personal manager Мария Иванова free → transferred to the workplace")


@pytest.mark.parametrize("number_form", ["8", "00"])
def test_a_parked_line_named_in_another_form_is_still_routed(
    number_form: str,
    world: dict[str, Any],
    sandbox: RunningSandbox,
    receiver: Receiver,
    client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Guide §6.4: the PBX passes our line as it received it, "84996497803" or "0074996497803" for the
    "74996497803" its directory lists. The call is still on our line with parking, and routed."""
    trying = ring(sandbox, receiver, number_form=number_form)
    sent = trying["result"]["callInfo"]
    assert sent["callee"]["id"] != LINE  # the sandbox wrote it in the other form

    post(client, world["mtt"], trying, django_capture_on_commit_callbacks)

    [command] = sandbox.state.snapshot()["commands"]
    assert (command["command"], command["calleid"]) == ("transferCall", WP1)
    call = Call.objects.get()
    assert call.line is not None and call.line.number == LINE
    assert call.line_number == LINE  # shown as the directory lists it
    assert RoutingDecision.objects.get().reason == RoutingDecision.Reason.MANAGER_FREE


@pytest.mark.parametrize("tag", [133609, 0])
def test_a_tag_sent_as_a_json_number_is_echoed_as_its_digits(
    tag: int,
    world: dict[str, Any],
    sandbox: RunningSandbox,
    receiver: Receiver,
    client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """§10.3.2's own tag is "133609", all digits: a JSON writer may send it as a number. It was once read
    as no tag, and the transferCall went out with "tag": "" (naming no leg)."""
    trying = ring(sandbox, receiver)
    trying["result"]["callInfo"]["call"]["tag"] = tag
    post(client, world["mtt"], trying, django_capture_on_commit_callbacks)
    [request] = commands(sandbox)
    assert request["path"] == "/transferCall"
    assert request["json"]["params"]["call"] == {
        "id": trying["result"]["callInfo"]["call"]["id"],
        "tag": str(tag),
    }
    assert Call.objects.get().legs.get().tag == str(tag)


def _release_case(
    world: dict[str, Any],
    sandbox: RunningSandbox,
    receiver: Receiver,
    client: Client,
    capture: Any,
    *,
    caller: str = CLIENT,
) -> RoutingDecision:
    trying = ring(sandbox, receiver, caller=caller)
    sent = trying["result"]["callInfo"]
    post(client, world["mtt"], trying, capture)
    [command] = sandbox.state.snapshot()["commands"]
    assert command["command"] == "terminateCall"
    assert command["call"] == sent["call"] and command["matched_leg"] is True
    assert command["transportId"] == sent["transportId"]
    assert routed_to(receiver) == WP3  # released at once to the PBX's routing
    decision = RoutingDecision.objects.get()
    assert decision.decision == RoutingDecision.Decision.RELEASE
    assert decision.sent_at is not None
    return decision


def test_busy_manager_releases_the_call(
    world: dict[str, Any],
    sandbox: RunningSandbox,
    receiver: Receiver,
    client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    Call.objects.create(
        integration=world["mtt"],
        call_key="other-call",
        status=Call.Status.IN_PROGRESS,
        operator=world["ivanova"],
    )
    decision = _release_case(world, sandbox, receiver, client, django_capture_on_commit_callbacks)
    assert decision.reason == RoutingDecision.Reason.MANAGER_BUSY
    assert decision.summary == "personal manager Мария Иванова busy → released to the PBX's routing"


def test_manager_whose_workplace_rings_with_another_call_is_busy(world: dict[str, Any]) -> None:
    other = Call.objects.create(integration=world["mtt"], call_key="ringing", status=Call.Status.RINGING)
    other.legs.create(
        integration=world["mtt"], leg_id="ringing~2o", workplace=Workplace.objects.get(sip_id=WP1)
    )
    call = Call.objects.create(integration=world["mtt"], call_key="this", contact=world["client"])
    choice = routing_choose(call=call, now=timezone.now())
    assert choice.reason == RoutingDecision.Reason.MANAGER_BUSY


def test_client_without_a_manager_is_released(
    world: dict[str, Any],
    sandbox: RunningSandbox,
    receiver: Receiver,
    client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    Contact.objects.filter(pk=world["client"].pk).update(personal_manager=None)
    decision = _release_case(world, sandbox, receiver, client, django_capture_on_commit_callbacks)
    assert decision.reason == RoutingDecision.Reason.NO_MANAGER
    assert decision.summary == "client without a personal manager → released to the PBX's routing"


def test_unknown_client_is_released(
    world: dict[str, Any],
    sandbox: RunningSandbox,
    receiver: Receiver,
    client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    decision = _release_case(
        world, sandbox, receiver, client, django_capture_on_commit_callbacks, caller="+79035550101"
    )
    assert decision.reason == RoutingDecision.Reason.UNKNOWN_CLIENT
    assert decision.summary == "unknown client → released to the PBX's routing"


def test_manager_without_a_workplace_is_released(
    world: dict[str, Any],
    sandbox: RunningSandbox,
    receiver: Receiver,
    client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    Workplace.objects.filter(sip_id=WP1).update(user=None)
    decision = _release_case(world, sandbox, receiver, client, django_capture_on_commit_callbacks)
    assert decision.reason == RoutingDecision.Reason.MANAGER_NO_WORKPLACE


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


def test_a_duplicate_trying_decides_once(
    world: dict[str, Any],
    sandbox: RunningSandbox,
    receiver: Receiver,
    client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    trying = ring(sandbox, receiver)
    post(client, world["mtt"], trying, django_capture_on_commit_callbacks)
    # The mobile app doubles notifications (§6.5); a copy that differs (so the inbox keeps both).
    copy = json.loads(json.dumps(trying))
    copy["result"]["callInfo"]["caller"]["displayName"] = "copy"
    post(client, world["mtt"], copy, django_capture_on_commit_callbacks)
    assert len(commands(sandbox)) == 1
    assert RoutingDecision.objects.count() == 1


def test_a_number_without_parking_is_left_to_the_pbx(
    world: dict[str, Any],
    sandbox: RunningSandbox,
    receiver: Receiver,
    client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    sandbox.control("POST", "config", {"parking_timeout": 0.2})
    trying = ring(sandbox, receiver, line="78005560251")
    post(client, world["mtt"], trying, django_capture_on_commit_callbacks)
    assert commands(sandbox) == []
    assert RoutingDecision.objects.count() == 0


def test_call_log_call_page_and_contact_page_show_the_decision(
    world: dict[str, Any],
    sandbox: RunningSandbox,
    receiver: Receiver,
    client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    Call.objects.create(
        integration=world["mtt"],
        call_key="other-call",
        status=Call.Status.IN_PROGRESS,
        operator=world["ivanova"],
    )
    trying = ring(sandbox, receiver)
    post(client, world["mtt"], trying, django_capture_on_commit_callbacks)
    decision = RoutingDecision.objects.get()
    client.force_login(world["petrov"])
    expected = "personal manager Мария Иванова busy → released to the PBX&#x27;s routing"
    log = client.get("/calls/?period=all").content.decode()
    assert expected in log
    assert expected in client.get(f"/calls/{decision.call_id}/").content.decode()
    assert expected in client.get(f"/contacts/{world['client'].pk}/").content.decode()


# --- Rules without the sandbox ------------------------------------------------------------------------


def test_blocklist_and_business_hours(world: dict[str, Any], settings: Any) -> None:
    call = Call.objects.create(
        integration=world["mtt"], call_key="rules", contact=world["client"], client_number=CLIENT
    )
    now = timezone.now()
    assert routing_choose(call=call, now=now).reason == RoutingDecision.Reason.MANAGER_FREE
    settings.ROUTING_BLOCKLIST = ["8 (921) 946-27-61"]
    assert routing_choose(call=call, now=now).reason == RoutingDecision.Reason.BLOCKLIST
    settings.ROUTING_BLOCKLIST = []
    local = timezone.localtime(now)
    start = (local + timedelta(hours=1)).strftime("%H:%M")
    end = (local + timedelta(hours=2)).strftime("%H:%M")
    settings.ROUTING_HOURS = f"{start}-{end}"
    assert not within_hours(now)
    assert routing_choose(call=call, now=now).reason == RoutingDecision.Reason.OUTSIDE_HOURS
    settings.ROUTING_HOURS = f"{end}-{start}"  # across midnight: everything but that hour
    assert within_hours(now)
    settings.ROUTING_HOURS = "nonsense"
    assert within_hours(now)


@pytest.fixture(autouse=True)
def _english(settings: Any) -> Iterator[None]:
    """These tests read the English wording; the UI's default is Russian."""
    from django.utils import translation

    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


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

"""Parked calls against the sandbox's incoming scenario (guide §5.4, §10.2): who the call goes to — the
client's personal manager when free, else released to the PBX's routing — once per call, shown on the
call log, call and contact pages; the blocklist and business hours (tests/calls/routing_fixtures.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from calls.models import Call, RoutingDecision
from calls.routing import routing_choose, within_hours
from contacts.models import Contact
from contacts.services import contact_add_number
from integrations.models import Workplace
from sandbox.testing import Receiver, RunningSandbox
from tests.calls import routing_fixtures as shared
from tests.calls.routing_fixtures import CLIENT, CYRILLIC_E, LINE, WP1, WP3, commands, post, ring, routed_to

# The shared fixtures, under their names (english and routing_settings are autouse).
english = shared.english
routing_settings = shared.routing_settings
sandbox = shared.sandbox
receiver = shared.receiver
world = shared.world


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


@pytest.mark.parametrize(
    ("caller", "number_form"),
    [("375291234567", None), ("+375291234567", "00"), ("810375291234567", None)],
)
def test_a_foreign_client_typed_one_way_and_calling_another_is_routed_to_the_manager(
    caller: str,
    number_form: str | None,
    world: dict[str, Any],
    sandbox: RunningSandbox,
    receiver: Receiver,
    client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """The client's Belarusian number typed as people here dial it abroad; the call comes as the network
    gave it (guide §6.4): one client, routed to the personal manager, no second contact made."""
    contact_add_number(contact=world["client"], number="8 10 375 29 123-45-67")
    trying = ring(sandbox, receiver, caller=caller, number_form=number_form)
    assert trying["result"]["callInfo"]["caller"]["id"] in (
        "375291234567",
        "00375291234567",
        "810375291234567",
    )

    post(client, world["mtt"], trying, django_capture_on_commit_callbacks)

    [command] = sandbox.state.snapshot()["commands"]
    assert (command["command"], command["calleid"]) == ("transferCall", WP1)
    call = Call.objects.get()
    assert (call.contact, call.client_number) == (world["client"], "+375291234567")
    assert Contact.objects.count() == 1


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

"""Who sees what live (issue 18): the screen pop's JSON and pushed cards, the live board, and the one
visibility decision per push the sockets make (tests/personas.py's world: team A = operator, manager,
other operator, supervised by the supervisor; team B = the outsider)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from calls.models import Call, CallLeg
from calls.realtime.cards import contact_view, leg_view, screen_pop_messages
from calls.realtime.groups import operator_group
from calls.visibility import (
    call_people,
    call_visible_to,
    people_visible,
)
from contacts.access import users_visible_to
from contacts.models import AccessSettings, Contact
from tests.personas import World, bare_call, client_for, set_visibility

pytestmark = pytest.mark.django_db

TEAM = AccessSettings.Visibility.TEAM


# --- the screen pop's JSON ------------------------------------------------------------------------


def _live(world: World, call: Call) -> None:
    Call.objects.filter(pk=call.pk).update(status=Call.Status.RINGING, updated_at=timezone.now())


def test_the_live_board_shows_a_supervisor_their_teams_calls(world: World) -> None:
    for call in (world.own_call, world.outsider_call):
        _live(world, call)
    client = client_for(world, "supervisor")
    assert {row["id"] for row in client.get("/calls/live.json").json()["calls"]} == {
        world.own_call.pk,
        world.outsider_call.pk,
    }
    set_visibility(TEAM)
    assert {row["id"] for row in client.get("/calls/live.json").json()["calls"]} == {world.own_call.pk}
    admin_rows = client_for(world, "admin").get("/calls/live.json").json()["calls"]
    assert {row["id"] for row in admin_rows} == {world.own_call.pk, world.outsider_call.pk}


def test_a_cards_last_calls_leave_out_another_teams(world: World) -> None:
    set_visibility(TEAM)
    # The outsider is ringing now with Смирнова, whose earlier call was team A's (own call).
    ringing = bare_call(world, "now-ringing", contact=world.contact, operator=world.users["outsider"])
    Call.objects.filter(pk=ringing.pk).update(status=Call.Status.RINGING)
    CallLeg.objects.create(
        call=ringing,
        integration=world.integration,
        leg_id="now-ringing~1",
        workplace=world.users["outsider"].workplace,
    )
    everything = client_for(world, "outsider").get("/calls/active.json").json()["calls"]
    # (the outsider's own answered call waits for its wrap-up: an ended card, no last calls)
    cards = [c for c in everything if c["phase"] != "ended"]
    assert [c["id"] for c in cards] == [ringing.pk]
    assert cards[0]["recent"] == []
    set_visibility(AccessSettings.Visibility.ALL)
    cards = client_for(world, "outsider").get("/calls/active.json").json()["calls"]
    assert [r["id"] for r in cards[0]["recent"]] == [world.own_call.pk]


@pytest.mark.parametrize(
    ("mode", "ringing", "shown"),
    [
        (TEAM, "outsider", False),  # team B's operator: team A's earlier call is not theirs
        (TEAM, "manager", True),  # team A's: it is
        (AccessSettings.Visibility.ALL, "outsider", True),
    ],
)
def test_a_pushed_cards_last_calls_are_the_resyncs(
    world: World, mode: str, ringing: str, shown: bool
) -> None:
    """The card pushed over the socket (calls.realtime.cards.screen_pop_messages) lists the same last
    calls as the page's resync: never another team's in the "team" mode."""
    set_visibility(mode)
    user = world.users[ringing]
    call = bare_call(world, "now-ringing", contact=world.contact, operator=None)
    Call.objects.filter(pk=call.pk).update(status=Call.Status.RINGING)
    call.refresh_from_db()
    leg = CallLeg.objects.create(
        call=call, integration=world.integration, leg_id="now-ringing~1", workplace=user.workplace
    )
    legs = [leg_view(x) for x in CallLeg.objects.filter(call=call).select_related("workplace__user")]
    messages = screen_pop_messages(call=call, leg=leg, legs=legs, contact=contact_view(world.contact))
    pushed = next(m for group, m in messages if group == operator_group(user.pk))["call"]
    expected = [world.own_call.pk] if shown else []
    assert [r["id"] for r in pushed["recent"]] == expected
    resync = client_for(world, ringing).get("/calls/active.json").json()["calls"]
    assert [r["id"] for c in resync if c["id"] == call.pk for r in c["recent"]] == expected


@pytest.mark.parametrize(("mode", "role", "expected"), [
    (TEAM, "outsider", 404),  # another team's client: no redirect that would say it existed, and where
    (TEAM, "operator", 302),
    (TEAM, "admin", 302),
    (AccessSettings.Visibility.ALL, "outsider", 302),
])  # fmt: skip
def test_a_merged_contacts_old_link(world: World, mode: str, role: str, expected: int) -> None:
    set_visibility(mode)
    # Team A's client (the manager's), merged twice: the old links lead to where it is now.
    first = Contact.objects.create(name="Козлов (старый)", merged_into=world.managed_contact)
    older = Contact.objects.create(name="Козлов (совсем старый)", merged_into=first)
    client = client_for(world, role)
    for tombstone in (first, older):
        response = client.get(f"/contacts/{tombstone.pk}/")
        assert response.status_code == expected
        if expected == 302:
            assert response["Location"] == f"/contacts/{world.managed_contact.pk}/"
    assert client.get("/contacts/999999/").status_code == 404


def test_a_supervisor_of_another_team_cannot_note_on_a_call(world: World) -> None:
    set_visibility(TEAM)
    boss = get_user_model().objects.create_user("boss-b", password=None, is_staff=True)
    world.teams["B"].supervisors.add(boss)
    client = Client()
    client.force_login(boss)
    assert client.post(f"/calls/{world.own_call.pk}/note/", {"text": "x"}).status_code == 404
    assert client.post(f"/calls/{world.outsider_call.pk}/note/", {"text": "x"}).status_code == 200


@pytest.mark.parametrize(("mode", "role", "offered"), [
    (TEAM, "outsider", {"outsider"}),
    (TEAM, "operator", {"operator", "manager", "other"}),
    (TEAM, "admin", {"operator", "manager", "other", "outsider"}),
    (AccessSettings.Visibility.ALL, "outsider", {"operator", "manager", "other", "outsider"}),
])  # fmt: skip
def test_the_call_logs_operator_filter_offers_the_visible_operators(
    world: World, mode: str, role: str, offered: set[str]
) -> None:
    set_visibility(mode)
    client = client_for(world, role)
    form = client.get("/calls/").context["form"]
    assert {u.username for u in form.fields["operator"].queryset} == offered
    # Another team's operator sent anyway: a wrong choice, in words, and no rows (nor an export).
    hidden = world.other_operator if "other" not in offered else world.users["outsider"]
    if hidden.username not in offered:
        page = client.get("/calls/", {"operator": hidden.pk})
        assert page.context["form"].errors["operator"] and list(page.context["calls"]) == []
        assert client.get("/calls/export.csv", {"operator": hidden.pk}).status_code == 400


# --- for the sockets: one decision per push, no query per supervisor ---------------------------------


def test_call_people_and_people_visible_agree_with_call_visible_to(world: World) -> None:
    set_visibility(TEAM)
    calls = [world.own_call, world.other_call, world.outsider_call]
    for role in ("operator", "supervisor", "admin", "outsider"):
        user = world.users[role]
        visible = users_visible_to(user)
        for call in calls:
            call = Call.objects.select_related("contact").get(pk=call.pk)
            assert people_visible(visible, call_people(call)) == call_visible_to(user, call), (role, call)
    other = world.other_call
    assert call_people(other) == {world.other_operator.pk, world.users["manager"].pk}
    assert call_people(other, leg_user_ids=[None]) == {world.other_operator.pk, world.users["manager"].pk}

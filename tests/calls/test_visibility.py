"""Who sees what (issue 18): the selectors of calls/visibility.py and contacts/access.py, and every list,
search and export in both visibility modes (tests/personas.py's world: team A = operator, manager, other
operator, supervised by the supervisor; team B = the outsider).

The permission matrix (tests/mttcrm/test_permission_matrix.py) checks what each page answers; these check
which rows the lists contain and each rule of "their team's".
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from calls.models import Call, CallbackTask, CallLeg, Recording
from calls.visibility import (
    call_visible_to,
    callbacks_visible_to,
    calls_visible_to,
    contact_visible_to,
    contacts_visible_to,
    recording_visible_to,
    recordings_visible_to,
)
from contacts.access import user_may_watch, users_visible_to, visibility_mode
from contacts.models import AccessSettings, Contact
from contacts.services import contact_create
from tests.personas import (
    MANAGED_NUMBER,
    MODES,
    ROLES,
    World,
    bare_call,
    client_for,
    set_visibility,
)

pytestmark = pytest.mark.django_db

TEAM = AccessSettings.Visibility.TEAM


def body_of(response: Any) -> str:
    return (b"".join(response.streaming_content) if response.streaming else response.content).decode()


# --- the setting ----------------------------------------------------------------------------------------


def test_the_default_is_everyone_sees_everything(world: World) -> None:
    assert visibility_mode() == AccessSettings.Visibility.ALL
    for role in ("operator", "outsider", "supervisor"):
        assert users_visible_to(world.users[role]) is None
        assert set(calls_visible_to(world.users[role])) == set(Call.objects.all())


def test_team_scopes(world: World) -> None:
    set_visibility(TEAM)
    u = world.users
    team_a = {u["operator"].pk, u["manager"].pk, world.other_operator.pk}
    assert users_visible_to(u["operator"]) == team_a
    # The supervisor sees the team they supervise (and themselves), without being one of its people.
    assert users_visible_to(u["supervisor"]) == team_a | {u["supervisor"].pk}
    assert users_visible_to(u["outsider"]) == {u["outsider"].pk}
    assert users_visible_to(u["admin"]) is None
    assert users_visible_to(None) == frozenset()
    assert user_may_watch(u["supervisor"], u["operator"].pk)
    assert not user_may_watch(u["supervisor"], u["outsider"].pk)


def test_several_teams_and_the_see_everything_permission(world: World) -> None:
    set_visibility(TEAM)
    outsider = world.users["outsider"]
    world.teams["A"].members.add(outsider)
    assert world.users["operator"].pk in users_visible_to(outsider)  # type: ignore[operator]
    assert set(calls_visible_to(outsider)) == set(Call.objects.all())
    head = get_user_model().objects.create_user("head", password=None)
    head.user_permissions.add(Permission.objects.get(codename="view_all_teams"))
    assert users_visible_to(get_user_model().objects.get(pk=head.pk)) is None


def test_a_user_in_no_team_sees_their_own_only(world: World) -> None:
    set_visibility(TEAM)
    loner = get_user_model().objects.create_user("loner", password=None)
    assert users_visible_to(loner) == {loner.pk}
    assert not calls_visible_to(loner).exists()
    Call.objects.filter(pk=world.outsider_call.pk).update(initiated_by=loner)
    assert list(calls_visible_to(loner)) == [world.outsider_call]


def test_an_inactive_user_sees_nothing(world: World) -> None:
    operator = world.users["operator"]
    operator.is_active = False
    assert not calls_visible_to(operator).exists()
    assert not contacts_visible_to(operator).exists()


# --- what makes a call, a contact, a recording "theirs" ---------------------------------------------


@pytest.mark.parametrize("link", ["operator", "initiated_by", "leg", "contact_manager"])
def test_each_link_makes_a_call_the_teams(world: World, link: str) -> None:
    set_visibility(TEAM)
    outsider = world.users["outsider"]
    call = bare_call(world, f"by-{link}")
    operator = world.users["operator"]
    assert not call_visible_to(operator, call)
    if link == "operator":
        call.operator = outsider
    elif link == "initiated_by":
        call.initiated_by = outsider
    elif link == "contact_manager":
        call.contact = world.outsider_contact
    call.save()
    if link == "leg":
        workplace = outsider.workplace
        CallLeg.objects.create(
            call=call, integration=world.integration, leg_id=f"{call.call_key}~1", workplace=workplace
        )
    assert call_visible_to(outsider, call)
    assert call in calls_visible_to(outsider)
    assert not call_visible_to(operator, call)
    assert call not in calls_visible_to(operator)


@pytest.mark.parametrize("link", ["manager", "created_by", "call"])
def test_each_link_makes_a_contact_the_teams(world: World, link: str) -> None:
    set_visibility(TEAM)
    outsider = world.users["outsider"]
    operator = world.users["operator"]
    contact = contact_create(name="Новый", numbers=["+74951112233"])
    assert not contact_visible_to(outsider, contact)
    if link == "manager":
        Contact.objects.filter(pk=contact.pk).update(personal_manager=outsider)
    elif link == "created_by":
        Contact.objects.filter(pk=contact.pk).update(created_by=outsider)
    else:
        bare_call(world, "rang-outsider", contact=contact, operator=outsider)
    contact.refresh_from_db()
    assert contact_visible_to(outsider, contact)
    assert contact in contacts_visible_to(outsider)
    assert not contact_visible_to(operator, contact)


def test_recordings_follow_their_call(world: World) -> None:
    set_visibility(TEAM)
    operator, outsider = world.users["operator"], world.users["outsider"]
    assert recording_visible_to(operator, world.recording)
    assert not recording_visible_to(outsider, world.recording)
    assert list(recordings_visible_to(outsider)) == []
    orphan = Recording.objects.create(
        integration=world.integration,
        leg_call_id="unknown~1",
        source_url="https://records.mtt.ru/orphan.mp3",
        storage_key="world/orphan.mp3",
        mtt_expires_at=timezone.now() + timedelta(days=90),
    )
    assert not recording_visible_to(operator, orphan)  # no call yet: nobody's but the admins'
    assert recording_visible_to(world.users["admin"], orphan)


def test_callbacks(world: World) -> None:
    set_visibility(TEAM)
    operator, outsider = world.users["operator"], world.users["outsider"]
    assert list(callbacks_visible_to(operator)) == [world.callback]
    assert list(callbacks_visible_to(outsider)) == []
    CallbackTask.objects.filter(pk=world.callback.pk).update(assignee=outsider)
    assert list(callbacks_visible_to(outsider)) == [world.callback]  # assigned to them


# --- the pages: lists, search, export --------------------------------------------------------------

# By contact: own call → Смирнова, other call → Козлов (the manager's client), the outsider's → Орлов.
TEAM_A_ROWS = {"Ольга Смирнова", "Дмитрий Козлов"}
ALL_ROWS = {*TEAM_A_ROWS, "Сергей Орлов"}
LIST_ROWS: dict[str, dict[str, set[str]]] = {
    "all": {role: ALL_ROWS for role in ROLES if role != "anonymous"},
    "team": {
        "operator": TEAM_A_ROWS,
        "manager": TEAM_A_ROWS,
        "supervisor": TEAM_A_ROWS,
        "admin": ALL_ROWS,
        "outsider": {"Сергей Орлов"},
    },
}
LISTS: dict[str, Callable[[World], str]] = {
    "call log": lambda w: "/calls/?period=all",
    "call log search": lambda w: "/calls/?period=all&q=%D0%B2",  # "в": in every name
    "call export": lambda w: "/calls/export.csv?period=all",
    "contacts": lambda w: "/contacts/",
    "contact search": lambda w: "/contacts/?q=%D0%B2",
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("listing", sorted(LISTS))
def test_what_the_lists_show(world: World, mode: str, listing: str) -> None:
    set_visibility(mode)
    wrong = []
    for role, expected in LIST_ROWS[mode].items():
        body = body_of(client_for(world, role).get(LISTS[listing](world)))
        shown = {name for name in ALL_ROWS if name in body}
        if shown != expected:
            wrong.append(f"{listing} as {role} ({mode}): shows {sorted(shown)}, expected {sorted(expected)}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("mode", MODES)
def test_what_the_callback_list_and_its_badge_show(world: World, mode: str) -> None:
    set_visibility(mode)  # the world's one callback task is Смирнова's (team A's client), unassigned
    for role in ("operator", "manager", "supervisor", "admin", "outsider"):
        response = client_for(world, role).get("/calls/callbacks/")
        expected = mode == "all" or role != "outsider"
        assert ("Ольга Смирнова" in body_of(response)) == expected, (role, mode)
        assert response.context["callbacks_open_count"] == (1 if expected else 0), (role, mode)


def test_a_contacts_page_lists_only_the_calls_the_user_may_see(world: World) -> None:
    set_visibility(TEAM)
    # Смирнова also called the outsider: the operator sees her, but not that call.
    bare_call(world, "smirnova-to-b", contact=world.contact, operator=world.users["outsider"])
    page = client_for(world, "operator").get(f"/contacts/{world.contact.pk}/")
    assert page.status_code == 200
    shown = {call.call_key for call in page.context["calls"]}
    assert shown == {"own-call"}


def test_an_outsider_cannot_take_another_teams_callback(world: World) -> None:
    set_visibility(TEAM)
    response = client_for(world, "outsider").post(f"/calls/callbacks/{world.callback.pk}/take/")
    assert response.status_code == 404
    world.callback.refresh_from_db()
    assert world.callback.assignee_id is None


def test_a_taken_number_of_another_team_is_not_named(world: World) -> None:
    set_visibility(TEAM)
    response = client_for(world, "outsider").post(
        "/contacts/new/",
        {"name": "Двойник", "numbers": world.contact.numbers.first().e164},  # type: ignore[union-attr]
    )
    page = body_of(response)
    assert response.status_code == 200
    assert "Ольга Смирнова" not in page
    assert "another team" in page or "другой команды" in page


def test_no_merging_into_another_teams_contact(world: World) -> None:
    set_visibility(TEAM)
    supervisor = world.users["supervisor"]  # staff: may merge
    client = client_for(world, "supervisor")
    response = client.post(
        "/contacts/merge/", {"source": world.contact.pk, "target": world.outsider_contact.pk}
    )
    assert response.status_code == 302
    world.contact.refresh_from_db()
    assert world.contact.merged_into_id is None
    assert supervisor.is_staff


def test_a_new_contact_stays_visible_to_its_author(world: World) -> None:
    set_visibility(TEAM)
    client = client_for(world, "outsider")
    response = client.post("/contacts/new/", {"name": "Свой клиент", "numbers": "+74953334455"})
    assert response.status_code == 302
    assert client.get(response["Location"]).status_code == 200
    assert client_for(world, "operator").get(response["Location"]).status_code == 404


# --- the admin ------------------------------------------------------------------------------------


def test_the_admin_lists_follow_the_mode_for_non_superusers(world: World) -> None:
    set_visibility(TEAM)
    clerk = get_user_model().objects.create_user("clerk", password=None, is_staff=True)
    clerk.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_call", "view_contact", "view_recording"])
    )
    world.teams["B"].members.add(clerk)
    client = Client()
    client.force_login(clerk)
    calls = client.get("/admin/calls/call/")
    assert calls.status_code == 200
    assert {c.pk for c in calls.context["cl"].result_list} == {world.outsider_call.pk}
    contacts = client.get("/admin/contacts/contact/")
    assert {c.pk for c in contacts.context["cl"].result_list} == {world.outsider_contact.pk}
    assert client.get(f"/admin/calls/call/{world.own_call.pk}/change/").status_code == 302  # "does not exist"


# Every admin list of rows that belong to calls, contacts or people: (model, what team A's rows show).
ADMIN_LISTS = [
    "calls/call",
    "calls/callleg",
    "calls/callevent",
    "calls/recording",
    "calls/recordingaccess",
    "calls/routingdecision",
    "calls/callbacktask",
    "calls/dialrequest",
    "calls/followuptask",
    "contacts/contact",
    "contacts/phonenumber",
]


@pytest.mark.parametrize("model", ADMIN_LISTS)
def test_no_admin_list_shows_another_teams_rows(world: World, model: str) -> None:
    """A staff user of team B allowed to view every model of calls and contacts (team mode): no list, and
    no search in it, shows team A's clients, numbers or calls."""
    from calls.models import DialRequest, FollowUpTask, RecordingAccess

    set_visibility(TEAM)
    other = world.other_operator
    DialRequest.objects.create(user=other, number=MANAGED_NUMBER, dialled=MANAGED_NUMBER[1:])
    FollowUpTask.objects.create(
        call=world.other_call, contact=world.managed_contact, assignee=other, created_by=other,
        due_at=timezone.now(), note="Козлову перезвонить",
    )  # fmt: skip
    RecordingAccess.objects.create(recording=world.recording, user=other, action="listen")
    clerk = get_user_model().objects.create_user("clerk", password=None, is_staff=True)
    clerk.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label__in=["calls", "contacts"], codename__startswith="view_"
        ).exclude(codename="view_all_teams")
    )
    world.teams["B"].members.add(clerk)
    client = Client()
    client.force_login(clerk)
    secrets = ("Козлов", "424-15-00", "8124241500", "other-call")
    for query in ("", "Козлов", "8124241500", "other"):
        response = client.get(f"/admin/{model}/", {"q": query} if query else {})
        assert response.status_code == 200, query
        if query:
            # (the page repeats what was searched for: a search is judged by what it finds)
            assert response.context["cl"].result_count == 0, query
        else:
            page = response.content.decode()
            assert not [s for s in secrets if s in page]


# --- defaults: the demo, the migration ------------------------------------------------------------


def test_the_demo_sets_up_both_modes(db: Any) -> None:
    from integrations.demo import _ensure_users

    _ensure_users()
    users = get_user_model().objects
    supervisor, ivanova, sidorova = (users.get(username=u) for u in ("supervisor", "ivanova", "sidorova"))
    assert supervisor.is_staff and not supervisor.is_superuser
    assert supervisor.has_perm("contacts.change_personal_manager") and supervisor.has_perm(
        "calls.view_reports"
    )
    assert not ivanova.has_perm("contacts.change_personal_manager")
    set_visibility(TEAM)
    petrov = users.get(username="petrov")
    assert users_visible_to(supervisor) == {supervisor.pk, ivanova.pk, petrov.pk}
    assert users_visible_to(sidorova) == {sidorova.pk}
    _ensure_users()  # again (every make run): nothing doubles
    assert users_visible_to(supervisor) == {supervisor.pk, ivanova.pk, petrov.pk}


def test_the_migration_grants_the_manager_permission_to_the_supervisors_group(db: Any) -> None:
    import importlib

    from django.apps import apps
    from django.contrib.auth.models import Group

    migration = importlib.import_module("contacts.migrations.0003_teams")
    group = Group.objects.create(name=migration.SUPERVISORS_GROUP)
    migration.grant_supervisors(apps, None)
    assert group.permissions.filter(codename="change_personal_manager").exists()

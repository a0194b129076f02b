"""The admin's forms follow "who sees what" (calls/admin_visibility.py, README "Security model"): in the
team mode a staff user who is not a superuser may neither link a row to another team's call, client or
person through a raw-id box, nor learn whose an id is by typing it (the box names the row next to it).

Before: the lists were narrowed, the forms were Django's — a team A supervisor allowed to change follow-up
tasks typed team B's contact id into the task's "contact" box and the page answered "Сергей Орлов" next to
it; saved, the task pointed at team B's client (and the call and assignee boxes took team B's too).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client, RequestFactory
from django.utils import timezone

from calls.models import CallbackTask, FollowUpTask
from contacts.models import AccessSettings
from tests.personas import OUTSIDER_NUMBER, World, build_world, client_for, set_visibility

pytestmark = pytest.mark.django_db

TEAM = AccessSettings.Visibility.TEAM
OUTSIDER_NAME = "Сергей Орлов"  # team B's client
OUTSIDER_DIGITS = OUTSIDER_NUMBER[2:]  # in the call's name


@pytest.fixture
def world(integration: Any) -> World:
    world = build_world(integration)
    supervisor = world.users["supervisor"]  # staff, team A's supervisor, not a superuser
    supervisor.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label__in=["calls", "contacts"], codename__regex=r"^(view|change)_"
        ).exclude(codename="view_all_teams")
    )
    return world


def _task(w: World) -> FollowUpTask:
    operator = w.users["operator"]
    return FollowUpTask.objects.create(
        call=w.own_call, contact=w.contact, assignee=operator, created_by=operator, due_at=timezone.now()
    )


def _callback(w: World) -> CallbackTask:
    return w.callback


# (the row of team A, its admin page, the field, the value of team B, what would name it on the page)
CASES: dict[str, tuple[Callable[[World], Any], str, str, Callable[[World], int], str]] = {
    "follow-up's contact": (_task, "calls/followuptask", "contact", lambda w: w.outsider_contact.pk, OUTSIDER_NAME),
    "follow-up's call": (_task, "calls/followuptask", "call", lambda w: w.outsider_call.pk, OUTSIDER_DIGITS),
    "follow-up's assignee": (_task, "calls/followuptask", "assignee", lambda w: w.users["outsider"].pk, "Outsider"),
    "callback's contact": (_callback, "calls/callbacktask", "contact", lambda w: w.outsider_contact.pk, OUTSIDER_NAME),
    "callback's call": (_callback, "calls/callbacktask", "closed_call", lambda w: w.outsider_call.pk, OUTSIDER_DIGITS),
    "call's contact": (lambda w: w.own_call, "calls/call", "contact", lambda w: w.outsider_contact.pk, OUTSIDER_NAME),
    "call's placed by": (lambda w: w.own_call, "calls/call", "initiated_by", lambda w: w.users["outsider"].pk, "Outsider"),
    "contact's manager": (lambda w: w.contact, "contacts/contact", "personal_manager", lambda w: w.users["outsider"].pk, "Outsider"),
}  # fmt: skip


def _post(client: Client, world: World, case: str) -> Any:
    row_of, page, field, value_of, _named = CASES[case]
    row = row_of(world)
    # Only this field: the form has errors anyway, and comes back with the box filled in as typed.
    return client.post(f"/admin/{page}/{row.pk}/change/", {field: value_of(world)})


@pytest.mark.parametrize("case", sorted(CASES))
def test_another_teams_row_is_neither_named_nor_accepted(world: World, case: str) -> None:
    set_visibility(TEAM)
    response = _post(client_for(world, "supervisor"), world, case)
    assert response.status_code == 200
    field, named = CASES[case][2], CASES[case][4]
    assert field in response.context["adminform"].form.errors
    assert named not in response.content.decode()


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_superuser_and_the_all_mode_are_as_before(world: World, case: str) -> None:
    row_of, _page, field, value_of, named = CASES[case]
    for role, mode in (("admin", TEAM), ("supervisor", AccessSettings.Visibility.ALL)):
        set_visibility(mode)
        response = _post(client_for(world, role), world, case)
        if response.status_code == 302:  # nothing else was required: saved
            row = row_of(world)
            row.refresh_from_db()
            assert getattr(row, f"{field}_id") == value_of(world), (role, mode)
            continue
        assert field not in response.context["adminform"].form.errors, (role, mode)
        assert named in response.content.decode(), (role, mode)


def test_a_row_keeps_what_it_holds_already(world: World) -> None:
    """A task of team A's operator about team B's client (made before the team mode): its form still
    accepts that client, so saving it unchanged never fails."""
    set_visibility(TEAM)
    task = _task(world)
    FollowUpTask.objects.filter(pk=task.pk).update(contact=world.outsider_contact)
    task.refresh_from_db()
    request = RequestFactory().get("/")
    request.user = world.users["supervisor"]
    model_admin = admin.site.get_model_admin(FollowUpTask)
    form = model_admin.get_form(request, task, change=True)(instance=task)
    contacts = form.fields["contact"].queryset
    assert set(contacts.values_list("pk", flat=True)) >= {world.outsider_contact.pk, world.contact.pk}
    assert not form.fields["call"].queryset.filter(pk=world.outsider_call.pk).exists()


# The lists' filters by person (operator, assignee, personal manager) name only the people the user sees.
PERSON_FILTERS = ["calls/call", "calls/callbacktask", "calls/followuptask", "contacts/contact"]


@pytest.mark.parametrize("mode", [TEAM, AccessSettings.Visibility.ALL])
@pytest.mark.parametrize("page", PERSON_FILTERS)
def test_a_lists_person_filter_names_only_the_people_the_user_sees(
    world: World, page: str, mode: str
) -> None:
    set_visibility(mode)
    response = client_for(world, "supervisor").get(f"/admin/{page}/")
    assert response.status_code == 200
    filters = [f for f in response.context["cl"].filter_specs if hasattr(f, "lookup_choices")]
    named = {label for spec in filters for _pk, label in spec.lookup_choices}
    assert ("Outsider" in named) == (mode == AccessSettings.Visibility.ALL)
    assert "Operator" in named or page != "calls/call"

"""Who the contact form offers as a client's personal manager (page and API): in the "team" mode only the
people the user sees (their teams), never another team's — as for a follow-up's assignee. tests/personas.py's
world: team A = operator, manager, other operator, supervised by the supervisor; team B = the outsider."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from contacts.models import AccessSettings, Contact
from tests.api.tokens import token_client
from tests.personas import World, build_world, set_visibility

pytestmark = pytest.mark.django_db

TEAM, ALL = AccessSettings.Visibility.TEAM, AccessSettings.Visibility.ALL
TEAM_A = {"operator", "manager", "other", "supervisor"}
EVERYONE = {*TEAM_A, "outsider", "admin"}


@pytest.fixture
def world(integration: Any) -> World:
    return build_world(integration)


def _page_choices(world: World, role: str, url: str) -> set[str]:
    client = Client()
    client.force_login(world.users[role])
    response = client.get(url)
    assert response.status_code == 200
    field = response.context["form"].fields["personal_manager"]
    names = {user.username for user in field.queryset}
    # What the page shows is what the field offers: no other team's name in the HTML either.
    page = response.content.decode()
    for username in EVERYONE - names:
        person = next(
            u for u in (*world.users.values(), world.other_operator) if u and u.username == username
        )
        assert f'value="{person.pk}"' not in page
    return names


@pytest.mark.parametrize(
    ("mode", "role", "offered"),
    [
        (TEAM, "supervisor", TEAM_A),
        (TEAM, "admin", EVERYONE),
        (ALL, "supervisor", EVERYONE),
    ],
)
def test_the_forms_offer_the_people_the_user_sees(
    world: World, mode: str, role: str, offered: set[str]
) -> None:
    set_visibility(mode)
    assert _page_choices(world, role, "/contacts/new/") == offered
    assert _page_choices(world, role, f"/contacts/{world.contact.pk}/edit/") == offered


def test_another_teams_manager_sent_anyway_is_refused_in_words_and_nothing_changes(world: World) -> None:
    set_visibility(TEAM)
    supervisor, outsider = world.users["supervisor"], world.users["outsider"]
    client = Client()
    client.force_login(supervisor)
    response = client.post(
        f"/contacts/{world.contact.pk}/edit/",
        {"name": world.contact.name, "numbers": "+7 921 946-27-61", "personal_manager": outsider.pk},
    )
    assert response.status_code == 200  # the form again, with the error
    assert response.context["form"].errors["personal_manager"]
    assert "Выберите корректный вариант" in response.content.decode()
    world.contact.refresh_from_db()
    assert world.contact.personal_manager_id is None
    # The API takes the same form: a 400 naming the field, nothing saved.
    api = token_client(supervisor)
    answer = api.patch(
        f"/api/v1/contacts/{world.contact.pk}/", {"personal_manager": outsider.pk}, format="json"
    )
    assert answer.status_code == 400 and "personal_manager" in answer.json()
    world.contact.refresh_from_db()
    assert world.contact.personal_manager_id is None
    # One of the supervisor's own team is taken.
    manager = world.users["manager"]
    assert (
        api.patch(
            f"/api/v1/contacts/{world.contact.pk}/", {"personal_manager": manager.pk}, format="json"
        ).status_code
        == 200
    )
    assert Contact.objects.get(pk=world.contact.pk).personal_manager_id == manager.pk


def test_a_contacts_current_manager_from_another_team_stays_on_its_form(world: World) -> None:
    """Set before the team mode (or by an admin): the contact keeps its manager when the form is saved."""
    set_visibility(TEAM)
    world.contact.personal_manager = world.users["outsider"]
    world.contact.save(update_fields=["personal_manager"])
    assert "outsider" in _page_choices(world, "supervisor", f"/contacts/{world.contact.pk}/edit/")
    assert "outsider" not in _page_choices(world, "supervisor", "/contacts/new/")

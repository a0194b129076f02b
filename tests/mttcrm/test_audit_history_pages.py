"""The audit trail's per-row page (the "View" link, ``<id>/auditlog/``) of a row that does not exist, or
that the admin user may not see (another team's, in the team mode), is a 404 like the row's own page.

Before: django-auditlog's view went on without the row and failed rendering the page: a 500, for any
staff user allowed to view the model who typed (or kept) such a link.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from contacts.models import AccessSettings
from tests.personas import World, build_world, client_for, set_visibility

pytestmark = pytest.mark.django_db

WITH_A_TRAIL = [
    "contacts/contact",
    "contacts/team",
    "integrations/integration",
    "integrations/workplace",
    "integrations/externalnumber",
]


@pytest.fixture
def world(integration: Any) -> World:
    return build_world(integration)


@pytest.mark.parametrize("model", WITH_A_TRAIL)
def test_no_such_row(world: World, model: str) -> None:
    assert client_for(world, "admin").get(f"/admin/{model}/999999/auditlog/").status_code == 404


def test_another_teams_contact(world: World) -> None:
    set_visibility(AccessSettings.Visibility.TEAM)
    clerk = world.users["supervisor"]  # staff of team A, not a superuser
    clerk.user_permissions.add(*Permission.objects.filter(codename="view_contact"))
    client = client_for(world, "supervisor")
    assert client.get(f"/admin/contacts/contact/{world.contact.pk}/auditlog/").status_code == 200
    page = client.get(f"/admin/contacts/contact/{world.outsider_contact.pk}/auditlog/")
    assert page.status_code == 404
    assert "Орлов" not in page.content.decode()


def test_a_superuser_still_reads_every_rows_trail(world: World, admin_client: Client) -> None:
    page = admin_client.get(f"/admin/contacts/contact/{world.outsider_contact.pk}/auditlog/")
    assert page.status_code == 200
    assert "Сергей Орлов" in page.content.decode()

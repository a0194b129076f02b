"""The admin's change lists given a date at the ends of the calendar (calls/admin_dates.py): Django admin's
own "invalid lookup" answer (a redirect to ?e=1), never an OverflowError (a 500). Every model in the admin
is checked: ours, and those other apps register (Django's users, django-axes, django-auditlog)."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.db import models
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

# Admins whose change list is a page of their own, not a filtered list of rows.
NOT_LISTS = {("contacts", "accesssettings"), ("monitoring", "integrationhealth")}


def _date_fields() -> dict[tuple[str, str], list[str]]:
    """(app, model) -> its date and datetime columns, for every model in the admin."""
    found: dict[tuple[str, str], list[str]] = {}
    for model in apps.get_models():
        meta = model._meta
        if not admin.site.is_registered(model):
            continue
        names = [f.name for f in meta.get_fields() if isinstance(f, models.DateField)]
        if names and (meta.app_label, meta.model_name) not in NOT_LISTS:
            found[(meta.app_label, meta.model_name or "")] = names
    return found


@pytest.fixture
def staff(client: Client, admin_user: Any) -> Client:
    client.force_login(admin_user)
    return client


def _changelist(app: str, model: str) -> str:
    return reverse(f"admin:{app}_{model}_changelist")


@pytest.mark.parametrize(
    "url",
    [
        "/admin/integrations/notificationevent/?received_at__gte=0001-01-01",
        "/admin/calls/call/?started_at__gte=0001-01-01",
    ],
)
def test_the_probes_dates_are_an_invalid_lookup(staff: Client, url: str) -> None:
    response = staff.get(url)
    assert response.status_code == 302
    assert response["Location"] == url.split("?")[0] + "?e=1"
    assert staff.get(response["Location"]).status_code == 200


BAD = [
    "{f}__gte=0001-01-01",
    "{f}__lt=0001-01-01T00:00:00",
    "{f}=0001-01-01",
    "{f}__lte=9999-12-31T23:59",
    "{f}__gt=9999-12-31",
    "{f}__date=0001-01-01",
    "{f}__date__gte=9999-12-31",
    "{f}__year=1",
    "{f}__year__gte=9999",
    "{f}__in=2026-01-01,0001-01-01",
    "{f}__range=0001-01-01,2026-01-01",
]


@pytest.mark.parametrize(("app", "model"), sorted(_date_fields()))
def test_every_date_column_of_every_change_list(staff: Client, app: str, model: str) -> None:
    url = _changelist(app, model)
    for field in _date_fields()[(app, model)]:
        for lookup in BAD:
            response = staff.get(f"{url}?{lookup.format(f=field)}")
            assert response.status_code == 302, (url, field, lookup)
            assert response["Location"] == f"{url}?e=1"


@pytest.mark.parametrize(
    "query",
    [
        "started_at__gte=2026-01-01",
        "started_at__lt=2100-12-31T23:59",
        "started_at__year=2026",
        "started_at__gte=x",
    ],
)
def test_dates_inside_the_range_still_filter(staff: Client, query: str) -> None:
    url = _changelist("calls", "call")
    response = staff.get(f"{url}?{query}")
    if query.endswith("=x"):  # Django's own answer to a value that is no date
        assert response["Location"] == f"{url}?e=1"
    else:
        assert response.status_code == 200


def test_the_date_hierarchy_at_the_ends_of_the_calendar(staff: Client) -> None:
    url = _changelist("integrations", "notificationevent")
    for query in (
        "received_at__year=9999",
        "received_at__year=1&received_at__month=1",
        "received_at__year=2026",
    ):
        response = staff.get(f"{url}?{query}")
        assert response.status_code == (200 if query.endswith("2026") else 302), query


def test_other_apps_admins_keep_their_own_behaviour(staff: Client, admin_user: Any) -> None:
    """Registered again with the mixin, Django's user admin is still Django's: its search, its
    password form."""
    url = _changelist("auth", "user")
    response = staff.get(f"{url}?q={admin_user.username}")
    assert response.status_code == 200
    assert admin_user.username in response.content.decode()
    password = reverse("admin:auth_user_password_change", args=[admin_user.pk])
    assert staff.get(password).status_code == 200

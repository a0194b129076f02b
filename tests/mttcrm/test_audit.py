"""The audit trail (issue 18): who changed contacts, personal managers, parking, routing settings, teams,
access and integrations, and when, readable in the admin; secrets never written in plain text."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
import responses
from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from contacts.models import AccessSettings, Contact, Team
from contacts.services import contact_create
from integrations.models import ExternalNumber, Integration, Workplace
from integrations.services import integration_rotate_notify_token
from tests.conftest import load_fixture

pytestmark = pytest.mark.django_db


def entries_for(obj: Any) -> list[LogEntry]:
    return list(LogEntry.objects.get_for_object(obj).order_by("pk"))


def updates_of(obj: Any) -> list[LogEntry]:
    return [e for e in entries_for(obj) if e.action == LogEntry.Action.UPDATE]


def every_stored_text() -> str:
    """Everything the audit table holds, as one string (changes, representations, extra data)."""
    rows = LogEntry.objects.values_list(
        "changes", "changes_text", "object_repr", "serialized_data", "additional_data"
    )
    return json.dumps(list(rows), ensure_ascii=False, default=str)


@pytest.fixture
def supervisor(db: Any) -> Any:
    user = get_user_model().objects.create_user("boss", password=None, first_name="Ольга")
    user.user_permissions.add(Permission.objects.get(codename="change_personal_manager"))
    return get_user_model().objects.get(pk=user.pk)


def test_a_personal_manager_change_names_who_when_and_from_where(
    client: Client, supervisor: Any, operator_user: Any, settings: Any
) -> None:
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    contact = contact_create(name="VIP", numbers=["+74957654321"])
    client.force_login(supervisor)
    before = timezone.now()
    response = client.post(
        f"/contacts/{contact.pk}/edit/",
        {"name": "VIP", "numbers": "+74957654321", "personal_manager": operator_user.pk},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9",  # the client wrote the first one: ignored
    )
    assert response.status_code == 302
    [entry] = [e for e in entries_for(contact) if e.action == LogEntry.Action.UPDATE]
    assert entry.actor == supervisor
    assert entry.remote_addr == "203.0.113.9"
    assert entry.timestamp >= before
    assert entry.changes_dict["personal_manager"] == ["None", str(operator_user.pk)]


def test_contacts_made_by_hand_are_recorded_and_from_calls_are_not(
    client: Client, operator_user: Any
) -> None:
    from contacts.services import contact_get_or_create_for_number

    client.force_login(operator_user)
    client.post("/contacts/new/", {"name": "Новый", "numbers": "+74951234567"})
    made = Contact.objects.get(name="Новый")
    [created] = entries_for(made)
    assert created.action == LogEntry.Action.CREATE and created.actor == operator_user
    from_call, was_created = contact_get_or_create_for_number(number="+79035556677")
    assert was_created and from_call is not None
    assert entries_for(from_call) == []


def test_the_integration_secret_and_tokens_never_reach_the_log(
    admin_user: Any, integration: Integration
) -> None:
    client = Client()
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:integrations_integration_change", args=[integration.pk]),
        {
            "name": "Test",
            "client_id": "client-2",
            "client_secret": "brand-new-secret-42",
            "oauth_url": integration.oauth_url,
            "api_url": integration.api_url,
            "_save": "Save",
        },
    )
    assert response.status_code == 302
    integration.refresh_from_db()
    assert integration.client_secret == "brand-new-secret-42"
    [entry] = [e for e in entries_for(integration) if e.action == LogEntry.Action.UPDATE]
    assert entry.actor == admin_user
    assert entry.changes_dict["client_id"] == ["client-1", "client-2"]
    # The secret's change is visible, its values are not.
    assert entry.changes_dict["client_secret"] == ["••••••••", "••••••••"]
    # A token refresh (a save of new tokens) and a rotation of the notify URL.
    integration.access_token = "fresh-access-token-77"
    integration.refresh_token = "fresh-refresh-token-77"
    integration.access_token_expires_at = timezone.now() + timedelta(hours=2)
    integration.save()
    old_token = integration.notify_token
    integration_rotate_notify_token(integration_id=integration.pk, grace=timedelta(hours=1))
    integration.refresh_from_db()
    stored = every_stored_text()
    for secret in (
        "brand-new-secret-42", "secret-1", "fresh-access-token-77", "fresh-refresh-token-77",
        "access-token-1", old_token, integration.notify_token,
    ):  # fmt: skip
        assert secret not in stored
    rotation = entries_for(integration)[-1]
    assert set(rotation.changes_dict) == {"notify_token", "previous_notify_token_expires_at"}


@responses.activate
def test_parking_switched_in_the_admin_is_recorded(
    admin_user: Any, integration: Integration, settings: Any
) -> None:
    settings.MTT_RATE_LIMIT_KEY_PREFIX = f"test-audit:{uuid.uuid4().hex}:"
    responses.post(
        "http://mtt.test/setParkingNumbers", json=load_fixture("api/setParkingNumbers_response.json")
    )
    line = ExternalNumber.objects.create(integration=integration, number="74996497803")
    other = ExternalNumber.objects.create(integration=integration, number="78005560251")
    client = Client()
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:integrations_externalnumber_change", args=[line.pk]),
        {"is_parking": "on", "is_active": "on", "_save": "Save"},
    )
    assert response.status_code == 302
    [on] = updates_of(line)
    assert on.actor == admin_user and on.changes_dict == {"is_parking": ["False", "True"]}
    # The bulk actions (one setParkingNumbers per integration): one entry per number that changed.
    client.post(
        reverse("admin:integrations_externalnumber_changelist"),
        {"action": "parking_off", "_selected_action": [line.pk, other.pk]},
    )
    assert [e.changes_dict for e in updates_of(line)] == [
        {"is_parking": ["False", "True"]},
        {"is_parking": ["True", "False"]},
    ]
    assert updates_of(other) == []  # it was off already


def test_workplace_links_teams_and_access_settings_are_recorded(
    admin_user: Any, integration: Integration, operator_user: Any
) -> None:
    client = Client()
    client.force_login(admin_user)
    workplace = Workplace.objects.create(integration=integration, sip_id="883140000000001", name="Иванова")
    client.post(
        reverse("admin:integrations_workplace_change", args=[workplace.pk]),
        {"name": "Иванова", "user": operator_user.pk, "is_active": "on", "_save": "Save"},
    )
    assert [e.changes_dict for e in updates_of(workplace)] == [{"user": ["None", str(operator_user.pk)]}]
    client.post(
        reverse("admin:contacts_team_add"),
        {"name": "Продажи", "members": [operator_user.pk], "supervisors": [], "_save": "Save"},
    )
    team = Team.objects.get(name="Продажи")
    logged = entries_for(team)
    assert logged and all(e.actor == admin_user for e in logged)
    assert any("members" in e.changes_dict for e in logged)
    client.post(reverse("admin:contacts_accesssettings_add"), {"visibility": "team", "_save": "Save"})
    settings_row = AccessSettings.objects.get()
    assert entries_for(settings_row)[0].changes_dict["visibility"] == ["None", "team"]


def test_the_audit_log_is_readable_in_the_admin(admin_user: Any, supervisor: Any) -> None:
    contact = contact_create(name="Аудит", numbers=["+74950001122"])
    client = Client()
    client.force_login(admin_user)
    page = client.get(reverse("admin:auditlog_logentry_changelist"))
    assert page.status_code == 200
    assert "Аудит" in page.content.decode()
    history = client.get(reverse("admin:contacts_contact_auditlog", args=[contact.pk]))
    assert history.status_code == 200
    supervisor.is_staff = True
    supervisor.save()
    client.force_login(supervisor)  # staff without the audit log's view permission
    assert client.get(reverse("admin:auditlog_logentry_changelist")).status_code == 403

"""The admin's "Integration health" page and the staff badge in the menu."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from integrations.models import Integration
from monitoring import context_processors, selectors
from monitoring.models import HealthWarning
from tests.monitoring.factories import request_log

PANEL = "/admin/monitoring/integrationhealth/"


@pytest.fixture
def staff_client(db: Any) -> Client:
    user = get_user_model().objects.create_user("desk", password="desk-pass-123", is_staff=True)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def operator_client(operator_user: Any) -> Client:
    client = Client()
    client.force_login(operator_user)
    return client


def test_panel_shows_every_fact_and_the_warnings(admin_client: Client, integration: Integration) -> None:
    now = timezone.now()
    Integration.objects.filter(pk=integration.pk).update(
        status=Integration.Status.NEEDS_RECONNECT,
        last_error="invalid_grant",
        tokens_refreshed_at=now - timedelta(hours=1),
        last_notification_at=now - timedelta(minutes=5),
    )
    request_log(integration, method="getWorkplaces", at=now - timedelta(minutes=1), ok=False, wait_ms=321)
    HealthWarning.objects.create(
        integration=integration,
        kind=HealthWarning.Kind.NEEDS_RECONNECT,
        opened_at=now,
        last_seen_at=now,
        mailed_at=now,
    )
    response = admin_client.get(PANEL)
    assert response.status_code == 200
    page = response.content.decode()
    for text in [
        "Integration health",
        "Test",
        "Needs reconnect",
        "press Reconnect",
        "invalid_grant",
        "Access token expires",
        "Refresh token expires",
        "Last successful token refresh",
        "Last notification received",
        "Notifications in the last hour",
        "Inbox rows not yet applied",
        "Limiter waits",
        "getWorkplaces",
        "321",
        "Waiting for download",
        "Failed in the last 24 h",
        "Not stored and deleted at MTT soon",
        "Open episode",
        "health-dot health-red",
    ]:
        assert text in page, text
    # The countdown, server-rendered.
    assert "(in 1\xa0hour" in page or "(in 2\xa0hours" in page
    assert 'style="' not in page.split('id="content-main"', 1)[1]  # Content-Security-Policy: no inline styles


def test_panel_for_one_integration(admin_client: Client, integration: Integration) -> None:
    Integration.objects.create(name="Second", client_id="c", client_secret="s")
    page = admin_client.get(f"{PANEL}?id={integration.pk}").content.decode()
    assert 'id="integration-' + str(integration.pk) + '"' in page and "Second" not in page
    response = admin_client.get(f"{PANEL}{integration.pk}/change/")
    assert response.status_code == 302 and response["Location"].endswith(f"?id={integration.pk}")


def test_panel_is_for_staff_only(
    staff_client: Client, operator_client: Client, integration: Integration
) -> None:
    assert staff_client.get(PANEL).status_code == 200  # any staff user, no model permission needed
    assert staff_client.get("/admin/monitoring/healthwarning/").status_code == 200
    assert operator_client.get("/admin/monitoring/healthwarning/").status_code == 302
    response = operator_client.get(PANEL)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert Client().get(PANEL).status_code == 302


def test_panel_is_linked_from_the_admin_index(staff_client: Client) -> None:
    page = staff_client.get("/admin/").content.decode()
    assert PANEL in page


def test_badge_for_staff_green(staff_client: Client, integration: Integration) -> None:
    page = staff_client.get("/").content.decode()
    assert 'class="health-badge health-green"' in page
    assert "MTT: OK" in page and f'href="{PANEL}"' in page


def test_badge_red_on_needs_reconnect(staff_client: Client, integration: Integration) -> None:
    Integration.objects.filter(pk=integration.pk).update(status=Integration.Status.NEEDS_RECONNECT)
    page = staff_client.get("/").content.decode()
    assert "health-badge health-red" in page and "MTT: reconnect needed" in page


def test_badge_amber_counts_open_warnings(staff_client: Client, integration: Integration) -> None:
    now = timezone.now()
    for kind in [HealthWarning.Kind.SILENCE, HealthWarning.Kind.INBOX_BACKLOG]:
        HealthWarning.objects.create(integration=integration, kind=kind, opened_at=now, last_seen_at=now)
    page = staff_client.get("/").content.decode()
    assert "health-badge health-amber" in page and "MTT: 2 warnings" in page


def test_badge_not_for_operators(operator_client: Client, integration: Integration) -> None:
    page = operator_client.get("/").content.decode()
    assert "health-badge" not in page


def test_badge_is_cached(staff_client: Client, integration: Integration, monkeypatch: Any) -> None:
    calls: list[int] = []
    real = selectors.badge_state

    def counting() -> selectors.BadgeState:
        calls.append(1)
        return real()

    monkeypatch.setattr(context_processors, "badge_state", counting)
    staff_client.get("/")
    staff_client.get("/")
    assert len(calls) == 1

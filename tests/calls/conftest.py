from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.utils import translation

from integrations.applier import applier_drain
from integrations.models import ExternalNumber, Integration, Terminal, Workplace
from tests.calls.payloads import LINE, WP_INCOMING, WP_OUTGOING, WP_RECORDED
from tests.calls.report_handworked import handworked_data
from tests.personas import World, build_world


@pytest.fixture
def world(integration: Integration) -> World:
    """The personas (tests/personas.py): operators, a supervisor, an admin, their calls and contacts."""
    return build_world(integration)


@pytest.fixture
def directory(integration: Integration) -> dict[str, Any]:
    """The PBX directory the guide's fixtures refer to, each workplace with its operator."""
    users = get_user_model().objects
    ivanova = users.create_user("ivanova", password="x-pass-123", first_name="Мария", last_name="Иванова")
    petrov = users.create_user("petrov", password="x-pass-123", first_name="Алексей", last_name="Петров")
    sidorova = users.create_user("sidorova", password="x-pass-123", first_name="Анна", last_name="Сидорова")
    wp_in = Workplace.objects.create(
        integration=integration, sip_id=WP_INCOMING, name="Иванова", user=ivanova
    )
    wp_out = Workplace.objects.create(integration=integration, sip_id=WP_OUTGOING, name="Петров", user=petrov)
    wp_rec = Workplace.objects.create(
        integration=integration, sip_id=WP_RECORDED, name="Сидорова", user=sidorova
    )
    Terminal.objects.create(integration=integration, sip_id="883140777380595", workplace=wp_in)
    line = ExternalNumber.objects.create(integration=integration, number=LINE)
    line_8800 = ExternalNumber.objects.create(integration=integration, number="78005560251", type="8800")
    return {
        "ivanova": ivanova, "petrov": petrov, "sidorova": sidorova,
        "wp_in": wp_in, "wp_out": wp_out, "wp_rec": wp_rec, "line": line, "line_8800": line_8800,
    }  # fmt: skip


@pytest.fixture
def notify(
    client: Client, integration: Integration, django_capture_on_commit_callbacks: Any
) -> Callable[[dict[str, Any]], Any]:
    """The production path: POST a notification through the real notify URL (stored, answered), then let the
    applier apply what is due (integrations/applier.py) and run what it sends after commit."""

    def post(body: dict[str, Any]) -> Any:
        response = client.post(
            integration.notify_path,
            data=json.dumps(body, ensure_ascii=False),
            content_type="application/json",
        )
        assert response.status_code == 200, response.content
        with django_capture_on_commit_callbacks(execute=True):
            applier_drain()
        return response

    return post


# --- the reports' tests (tests/calls/test_report_*.py) -----------------------------------------------


@pytest.fixture
def english_in_moscow(settings: Any) -> Iterator[None]:
    # The assertions read the English source strings, whatever the catalogue translates them to.
    settings.LANGUAGE_CODE = "en"
    settings.TIME_ZONE = "Europe/Moscow"
    with translation.override("en"):
        yield


@pytest.fixture
def data(integration: Integration) -> dict[str, Any]:
    """The reports' hand-worked data set (tests/calls/report_handworked.py)."""
    return handworked_data(integration)


@pytest.fixture
def supervisor(data: dict[str, Any]) -> Any:
    user = get_user_model().objects.create_user("boss", password="x-pass-123")
    group = Group.objects.create(name="Руководители")
    group.permissions.add(Permission.objects.get(codename="view_reports", content_type__app_label="calls"))
    user.groups.add(group)
    return user

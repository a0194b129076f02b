"""The "route to personal manager" switch: setParkingNumbers from the admin, our flag = what MTT confirmed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from integrations.models import ExternalNumber, Integration
from integrations.services import integration_oauth_complete
from integrations.tasks import sync_integration
from sandbox.testing import RunningSandbox, running_sandbox
from tests.mtt_sandbox import connect

LINE, LINE_8800 = "74996497803", "78005560251"


@pytest.fixture(autouse=True)
def _english(settings: Any) -> Iterator[None]:
    # The assertions read the English source strings, whatever the catalogue translates them to.
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(step_delay=0.01, auto_click_to_call=False) as sb:
        yield sb


@pytest.fixture(autouse=True)
def _own_limiter_keys(settings: Any) -> None:
    settings.MTT_RATE_LIMIT_KEY_PREFIX = f"test-parking:{uuid.uuid4().hex}:"


@pytest.fixture
def mtt(db: Any, sandbox: RunningSandbox, django_capture_on_commit_callbacks: Any) -> Integration:
    return connect(sandbox, django_capture_on_commit_callbacks)


@pytest.fixture
def admin_client(client: Client, admin_user: Any) -> Client:
    client.force_login(admin_user)
    return client


def parking_requests(sandbox: RunningSandbox) -> list[dict[str, Any]]:
    return [r for r in sandbox.control("GET", "requests") if r["path"] == "/setParkingNumbers"]


def number(value: str) -> ExternalNumber:
    return ExternalNumber.objects.get(number=value)


def change_url(row: ExternalNumber) -> str:
    return reverse("admin:integrations_externalnumber_change", args=[row.pk])


def test_the_switch_on_the_change_form_asks_mtt_first(
    sandbox: RunningSandbox, mtt: Integration, admin_client: Client
) -> None:
    row = number(LINE)
    response = admin_client.post(change_url(row), {"is_parking": "on", "is_active": "on", "_save": "Save"})
    assert response.status_code == 302
    [request] = parking_requests(sandbox)
    assert request["json"] == {"params": {"numbers": [LINE], "isParking": True}}
    assert request["status"] == 200
    assert number(LINE).is_parking is True
    assert sandbox.state.is_parking(LINE) is True

    admin_client.post(change_url(row), {"is_active": "on", "_save": "Save"})  # unticked
    assert parking_requests(sandbox)[-1]["json"] == {"params": {"numbers": [LINE], "isParking": False}}
    assert number(LINE).is_parking is False and sandbox.state.is_parking(LINE) is False


def test_saving_without_touching_the_switch_asks_mtt_nothing(
    sandbox: RunningSandbox, mtt: Integration, admin_client: Client
) -> None:
    admin_client.post(change_url(number(LINE)), {"is_active": "on", "_save": "Save"})
    assert parking_requests(sandbox) == []


def test_mtt_refusing_leaves_the_flag_and_shows_why(
    sandbox: RunningSandbox, mtt: Integration, admin_client: Client
) -> None:
    sandbox.control("POST", "faults", {"path": "/setParkingNumbers", "status": 400})
    response = admin_client.post(
        change_url(number(LINE)), {"is_parking": "on", "is_active": "on", "_save": "Save"}
    )
    assert response.status_code == 200  # the form again, with the error
    assert "Injected fault (HTTP 400)" in response.content.decode()  # MTT's own words
    assert number(LINE).is_parking is False
    assert sandbox.state.is_parking(LINE) is False


def list_form(switch_on: str) -> dict[str, str]:
    rows = list(ExternalNumber.objects.order_by("number"))
    data = {
        "form-TOTAL_FORMS": str(len(rows)),
        "form-INITIAL_FORMS": str(len(rows)),
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    for i, row in enumerate(rows):
        data[f"form-{i}-id"] = str(row.pk)
        if row.number == switch_on:
            data[f"form-{i}-is_parking"] = "on"
    return data


def test_the_switch_in_the_list(sandbox: RunningSandbox, mtt: Integration, admin_client: Client) -> None:
    url = reverse("admin:integrations_externalnumber_changelist")
    response = admin_client.post(url, list_form(switch_on=LINE_8800))
    assert response.status_code == 302, response.content.decode()[:2000]
    [request] = parking_requests(sandbox)
    assert request["json"] == {"params": {"numbers": [LINE_8800], "isParking": True}}
    assert number(LINE_8800).is_parking is True and number(LINE).is_parking is False


def test_the_switch_in_the_list_refused_by_mtt(
    sandbox: RunningSandbox, mtt: Integration, admin_client: Client
) -> None:
    sandbox.control("POST", "faults", {"path": "/setParkingNumbers", "status": 400})
    url = reverse("admin:integrations_externalnumber_changelist")
    response = admin_client.post(url, list_form(switch_on=LINE))
    assert response.status_code == 200
    assert "Injected fault (HTTP 400)" in response.content.decode()
    assert not ExternalNumber.objects.filter(is_parking=True).exists()


def test_bulk_actions_turn_parking_on_and_off_in_one_request(
    sandbox: RunningSandbox, mtt: Integration, admin_client: Client
) -> None:
    url = reverse("admin:integrations_externalnumber_changelist")
    pks = [str(pk) for pk in ExternalNumber.objects.values_list("pk", flat=True)]
    response = admin_client.post(url, {"action": "parking_on", "_selected_action": pks}, follow=True)
    assert "now go to the personal manager" in response.content.decode()
    assert parking_requests(sandbox)[-1]["json"] == {
        "params": {"numbers": [LINE, LINE_8800], "isParking": True}
    }
    assert set(ExternalNumber.objects.values_list("is_parking", flat=True)) == {True}

    admin_client.post(url, {"action": "parking_off", "_selected_action": pks[:1]})
    assert parking_requests(sandbox)[-1]["json"]["params"]["isParking"] is False
    assert ExternalNumber.objects.filter(is_parking=True).count() == 1


def test_bulk_action_refused_by_mtt_changes_nothing(
    sandbox: RunningSandbox, mtt: Integration, admin_client: Client
) -> None:
    sandbox.control("POST", "faults", {"path": "/setParkingNumbers", "status": 403})
    pks = [str(pk) for pk in ExternalNumber.objects.values_list("pk", flat=True)]
    response = admin_client.post(
        reverse("admin:integrations_externalnumber_changelist"),
        {"action": "parking_on", "_selected_action": pks},
        follow=True,
    )
    assert "MTT did not change parking, nothing was changed" in response.content.decode()
    assert not ExternalNumber.objects.filter(is_parking=True).exists()


def test_a_reconnect_applies_the_parking_flags_again(
    sandbox: RunningSandbox, mtt: Integration, django_capture_on_commit_callbacks: Any
) -> None:
    ExternalNumber.objects.filter(number=LINE).update(is_parking=True)
    sandbox.control("POST", "reset")  # MTT forgot (a new account, or flags changed in its portal)
    assert sandbox.state.is_parking(LINE) is False
    integration_oauth_complete(integration=mtt, code=sandbox.authorize(mtt.notify_url))
    sync_integration.delay(mtt.pk, reapply_parking=True)  # what the OAuth callback starts
    bodies = [r["json"] for r in parking_requests(sandbox)]
    assert {"params": {"numbers": [LINE], "isParking": True}} in bodies
    assert {"params": {"numbers": [LINE_8800], "isParking": False}} in bodies
    assert sandbox.state.is_parking(LINE) is True


def test_a_failed_re_apply_is_recorded_on_the_integration(
    sandbox: RunningSandbox, mtt: Integration, django_capture_on_commit_callbacks: Any
) -> None:
    ExternalNumber.objects.filter(number=LINE).update(is_parking=True)
    sandbox.control("POST", "faults", {"path": "/setParkingNumbers", "status": 400, "count": 5})
    connected = integration_oauth_complete(integration=mtt, code=sandbox.authorize(mtt.notify_url))
    sync_integration.delay(mtt.pk, reapply_parking=True)  # what the OAuth callback starts
    assert connected.status == Integration.Status.CONNECTED  # the connection itself stands
    mtt.refresh_from_db()
    assert mtt.last_error.startswith("Parking could not be re-applied")
    assert number(LINE).is_parking is True  # the admin's wish stays, for the next re-apply


@pytest.fixture(autouse=True)
def _english(settings: Any) -> Iterator[None]:
    """These tests read the English wording; the UI's default is Russian."""
    from django.utils import translation

    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield

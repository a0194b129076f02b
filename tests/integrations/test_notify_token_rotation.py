"""Rotating the notify URL: a new token, the old one accepted during the grace period, then refused."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from integrations.models import Integration, NotificationEvent
from integrations.selectors import integration_for_notify_token
from integrations.services import integration_expire_notify_tokens, integration_rotate_notify_token
from integrations.tasks import expire_notify_tokens
from sandbox.testing import RunningSandbox, running_sandbox
from tests.concurrency import at_once
from tests.conftest import load_fixture
from tests.integrations.connect_fixtures import portal_login, start_connect
from tests.mtt_sandbox import new_sandbox_integration

pytestmark = pytest.mark.django_db

GRACE = timedelta(hours=24)


def post(client: Client, path: str, fixture: str = "notifications/01_incoming_trying.json") -> Any:
    body = load_fixture(fixture)
    return client.post(path, data=json.dumps(body, ensure_ascii=False), content_type="application/json")


def path_of(url: str) -> str:
    return urlsplit(url).path


def test_rotation_gives_a_new_url_and_keeps_the_old_one_during_grace(
    client: Client, integration: Integration
) -> None:
    old_token, old_path = integration.notify_token, integration.notify_path
    rotation = integration_rotate_notify_token(integration_id=integration.pk, grace=GRACE)
    integration.refresh_from_db()

    assert integration.notify_token != old_token
    assert integration.previous_notify_token == old_token
    assert rotation.new_url == integration.notify_url
    assert path_of(rotation.previous_url) == old_path
    assert rotation.previous_valid_until == integration.previous_notify_token_expires_at
    expected = timezone.now() + GRACE
    assert abs((integration.previous_notify_token_expires_at - expected).total_seconds()) < 60

    # Both URLs reach the same integration; each notification is stored once.
    assert post(client, integration.notify_path).status_code == 200
    old = post(client, old_path, "notifications/07_incoming_finished.json")
    assert old.status_code == 200, old.content
    assert NotificationEvent.objects.filter(integration=integration).count() == 2


def test_old_token_is_refused_after_the_grace_period_and_then_cleared(
    client: Client, integration: Integration
) -> None:
    old_path = integration.notify_path
    integration_rotate_notify_token(integration_id=integration.pk, grace=GRACE)
    integration.refresh_from_db()
    # The grace period is over (time travel on the row: it ended a second ago).
    Integration.objects.filter(pk=integration.pk).update(
        previous_notify_token_expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert post(client, old_path).status_code == 404
    assert client.get(old_path + "?code=x&state=y").status_code == 404
    assert NotificationEvent.objects.count() == 0
    assert post(client, integration.notify_path).status_code == 200

    assert expire_notify_tokens.delay().get() == 1
    integration.refresh_from_db()
    assert integration.previous_notify_token == ""
    assert integration.previous_notify_token_expires_at is None
    assert integration_expire_notify_tokens() == 0  # nothing left to clear


def test_grace_boundary_is_exclusive(integration: Integration) -> None:
    old = integration.notify_token
    now = timezone.now()
    integration_rotate_notify_token(integration_id=integration.pk, grace=GRACE, now=now)
    assert integration_for_notify_token(token=old, now=now + GRACE - timedelta(seconds=1)) is not None
    assert integration_for_notify_token(token=old, now=now + GRACE) is None


def test_rotation_without_grace_refuses_the_old_url_at_once(client: Client, integration: Integration) -> None:
    old_path = integration.notify_path
    rotation = integration_rotate_notify_token(integration_id=integration.pk, grace=timedelta(0))
    assert rotation.previous_valid_until is None
    integration.refresh_from_db()
    assert integration.previous_notify_token == ""
    assert post(client, old_path).status_code == 404
    assert post(client, integration.notify_path).status_code == 200


def test_unknown_and_empty_tokens_are_refused(client: Client, integration: Integration) -> None:
    integration_rotate_notify_token(integration_id=integration.pk, grace=GRACE)
    assert post(client, "/mtt/not-a-token/").status_code == 404
    now = timezone.now()
    assert integration_for_notify_token(token="", now=now) is None
    assert integration_for_notify_token(token="not-a-token", now=now) is None
    # A never-rotated integration has an empty previous token: "" must not match it.
    other = Integration.objects.create(name="Other", client_id="c", client_secret="s")
    assert other.previous_notify_token == ""
    assert integration_for_notify_token(token=other.notify_token, now=now) == other


def test_a_second_rotation_replaces_the_previous_token(client: Client, integration: Integration) -> None:
    first_path = integration.notify_path
    integration_rotate_notify_token(integration_id=integration.pk, grace=GRACE)
    integration.refresh_from_db()
    second_path = integration.notify_path
    integration_rotate_notify_token(integration_id=integration.pk, grace=GRACE)
    integration.refresh_from_db()
    assert post(client, first_path).status_code == 404
    assert post(client, second_path).status_code == 200
    assert post(client, integration.notify_path, "notifications/07_incoming_finished.json").status_code == 200


def test_use_of_the_previous_url_is_logged_without_the_token(
    client: Client, integration: Integration, caplog: pytest.LogCaptureFixture
) -> None:
    old_token, old_path = integration.notify_token, integration.notify_path
    integration_rotate_notify_token(integration_id=integration.pk, grace=GRACE)
    integration.refresh_from_db()
    with caplog.at_level(logging.INFO):
        assert post(client, old_path).status_code == 200
    ours = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("integrations."))
    assert "previous notify URL" in ours
    assert old_token not in ours
    assert integration.notify_token not in ours


@pytest.mark.django_db(transaction=True)
def test_two_rotations_at_once_run_one_after_the_other(postgres_only: None) -> None:
    integration = Integration.objects.create(name="Race", client_id="c", client_secret="s")
    original = integration.notify_token
    results = at_once(
        [
            lambda: integration_rotate_notify_token(integration_id=integration.pk, grace=GRACE)
            for _ in range(2)
        ]
    )
    new_tokens = [path_of(r.new_url).strip("/").split("/")[-1] for r in results]
    previous_tokens = [path_of(r.previous_url).strip("/").split("/")[-1] for r in results]
    assert new_tokens[0] != new_tokens[1]
    integration.refresh_from_db()
    # Serialised by the row lock: one rotation started from the original token, the other from the
    # first one's new token (without the lock both would start from the original, and the URL shown to
    # one admin would be dead at once).
    assert sorted(previous_tokens) == sorted([original, integration.previous_notify_token])
    assert integration.notify_token in new_tokens
    assert integration.previous_notify_token in new_tokens
    assert integration.previous_notify_token != integration.notify_token


# --- the command and the admin action -------------------------------------------------------------


def test_command_prints_the_new_url_last(integration: Integration) -> None:
    out = StringIO()
    call_command("mtt", "rotate-notify-token", str(integration.pk), "--grace-hours", "2", stdout=out)
    integration.refresh_from_db()
    lines = out.getvalue().strip().splitlines()
    assert lines[-1] == integration.notify_url
    assert "accepted until" in out.getvalue()
    left = integration.previous_notify_token_expires_at - timezone.now()
    assert timedelta(hours=1, minutes=59) < left <= timedelta(hours=2)


def test_command_by_name_default_grace_and_zero(integration: Integration, settings: Any) -> None:
    settings.NOTIFY_TOKEN_GRACE_HOURS = 5
    call_command("mtt", "rotate-notify-token", integration.name, stdout=StringIO())
    integration.refresh_from_db()
    left = integration.previous_notify_token_expires_at - timezone.now()
    assert timedelta(hours=4, minutes=59) < left <= timedelta(hours=5)

    out = StringIO()
    call_command("mtt", "rotate-notify-token", integration.name, "--grace-hours", "0", stdout=out)
    integration.refresh_from_db()
    assert integration.previous_notify_token == ""
    assert "refused from now on" in out.getvalue()


def test_command_refuses_unknown_integration_and_negative_grace(integration: Integration) -> None:
    with pytest.raises(CommandError, match="No integration"):
        call_command("mtt", "rotate-notify-token", "999999", stdout=StringIO())
    with pytest.raises(CommandError, match="negative"):
        call_command("mtt", "rotate-notify-token", str(integration.pk), "--grace-hours", "-1")


def test_admin_action_rotates_and_shows_the_new_url(
    client: Client, admin_user: Any, integration: Integration, settings: Any
) -> None:
    settings.LANGUAGE_CODE = "en"
    client.force_login(admin_user)
    old_token = integration.notify_token
    response = client.post(
        reverse("admin:integrations_integration_changelist"),
        {"action": "rotate_notify_url", "_selected_action": [integration.pk]},
        follow=True,
    )
    assert response.status_code == 200
    integration.refresh_from_db()
    assert integration.notify_token != old_token
    assert integration.previous_notify_token == old_token
    page = response.content.decode()
    assert integration.notify_url in page
    assert "accepted until" in page
    change = client.get(reverse("admin:integrations_integration_change", args=[integration.pk]))
    assert "still accepted until" in change.content.decode()


def test_admin_action_needs_the_change_permission(client: Client, integration: Integration) -> None:
    from django.contrib.auth.models import Permission

    viewer = get_user_model().objects.create_user("viewer", password="viewer-pass-123", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_integration"))
    client.force_login(viewer)
    old_token = integration.notify_token
    client.post(
        reverse("admin:integrations_integration_changelist"),
        {"action": "rotate_notify_url", "_selected_action": [integration.pk]},
    )
    integration.refresh_from_db()
    assert integration.notify_token == old_token


# --- OAuth keeps working on the new URL -----------------------------------------------------------


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox() as sb:
        yield sb


def test_connect_during_grace_uses_the_new_url_as_redirect_uri(
    client: Client,
    admin_user: Any,
    sandbox: RunningSandbox,
    django_capture_on_commit_callbacks: Any,
) -> None:
    integration = new_sandbox_integration(sandbox)
    integration_rotate_notify_token(integration_id=integration.pk, grace=GRACE)
    integration.refresh_from_db()
    client.force_login(admin_user)
    params = start_connect(client, integration)
    assert params["redirect_uri"] == integration.notify_url
    answer = portal_login(sandbox, params)
    back = urlsplit(answer.headers["Location"])
    assert back.path == integration.notify_path
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(f"{back.path}?{back.query}")
    assert response.status_code == 302
    integration.refresh_from_db()
    assert integration.status == Integration.Status.CONNECTED

"""The admin's journey: Connect → the sandbox's portal login → back to the notify URL → connected and
synced. Everything real but the browser: Django's test client plays it, the sandbox runs in a thread."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from integrations.models import ExternalNumber, Integration, Terminal, Workplace
from integrations.mtt.client import MttClient
from integrations.tokens import integration_refresh_tokens
from sandbox.testing import RunningSandbox, running_sandbox
from tests.concurrency import at_once
from tests.integrations.connect_fixtures import portal_login, start_connect
from tests.mtt_sandbox import new_sandbox_integration


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox() as sb:
        yield sb


@pytest.fixture
def sandbox_integration(db: Any, sandbox: RunningSandbox) -> Integration:
    return new_sandbox_integration(sandbox)


def token_requests(sandbox: RunningSandbox) -> list[dict[str, Any]]:
    return [r for r in sandbox.control("GET", "requests") if r["path"] == "/oauth/token"]


def test_full_oauth_round_trip_connects_and_syncs(
    client: Client,
    admin_user: Any,
    sandbox: RunningSandbox,
    sandbox_integration: Integration,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client.force_login(admin_user)
    params = start_connect(client, sandbox_integration)
    assert params["client_id"] == sandbox.config.client_id
    assert params["redirect_uri"] == sandbox_integration.notify_url
    assert params["scope"] == settings.MTT_OAUTH_SCOPE
    assert params["response_type"] == "code"

    login_page = requests.get(f"{sandbox.url}/oauth/authorize", params=params, timeout=10)
    assert login_page.status_code == 200
    assert "password" in login_page.text

    answer = portal_login(sandbox, params)
    assert answer.status_code == 302
    back = urlsplit(answer.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == sandbox_integration.notify_url

    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(f"{back.path}?{back.query}")
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "admin:integrations_integration_change", args=[sandbox_integration.pk]
    )

    integration = Integration.objects.get(pk=sandbox_integration.pk)
    assert integration.status == Integration.Status.CONNECTED
    assert integration.access_token and integration.refresh_token
    assert integration.access_token_expires_at and integration.refresh_token_expires_at
    assert sandbox.state.client_for_access_token(integration.access_token) == sandbox.config.client_id
    # The sync started by the connection imported the sandbox's directory.
    assert Workplace.objects.filter(integration=integration).count() == len(
        sandbox.config.directory.workplaces
    )
    assert Terminal.objects.filter(integration=integration).count() == len(sandbox.config.directory.terminals)
    assert ExternalNumber.objects.filter(integration=integration).count() == len(
        sandbox.config.directory.numbers
    )
    assert integration.last_sync_at is not None
    # ...and told MTT again which numbers park (none yet: all of them off).
    parking = [r["json"] for r in sandbox.control("GET", "requests") if r["path"] == "/setParkingNumbers"]
    assert parking and all(body["params"]["isParking"] is False for body in parking)

    page = client.get(
        reverse("admin:integrations_integration_change", args=[integration.pk])
    ).content.decode()
    assert integration.notify_url in page


def test_bad_state_is_refused_and_nothing_is_stored(
    client: Client, admin_user: Any, sandbox: RunningSandbox, sandbox_integration: Integration
) -> None:
    client.force_login(admin_user)
    params = start_connect(client, sandbox_integration)
    answer = portal_login(sandbox, {**params, "state": "forged-state"})
    back = urlsplit(answer.headers["Location"])
    response = client.get(f"{back.path}?{back.query}")
    assert response.status_code == 403
    integration = Integration.objects.get(pk=sandbox_integration.pk)
    assert integration.status == Integration.Status.NOT_CONNECTED
    assert integration.access_token == ""
    assert token_requests(sandbox) == []  # the code was never even exchanged


def test_state_is_bound_to_the_admin_who_started(
    client: Client, admin_user: Any, sandbox: RunningSandbox, sandbox_integration: Integration
) -> None:
    client.force_login(admin_user)
    params = start_connect(client, sandbox_integration)
    back = urlsplit(portal_login(sandbox, params).headers["Location"])
    # Another admin (another session) opening the same link is refused.
    other = get_user_model().objects.create_superuser("other", "o@example.com", "other-pass-123")
    intruder = Client()
    intruder.force_login(other)
    assert intruder.get(f"{back.path}?{back.query}").status_code == 403
    assert Client().get(f"{back.path}?{back.query}").status_code == 403  # anonymous
    assert Integration.objects.get(pk=sandbox_integration.pk).status == Integration.Status.NOT_CONNECTED


def test_wrong_portal_password_does_not_redirect(
    client: Client, admin_user: Any, sandbox: RunningSandbox, sandbox_integration: Integration
) -> None:
    client.force_login(admin_user)
    params = start_connect(client, sandbox_integration)
    answer = portal_login(sandbox, params, password="wrong")
    assert answer.status_code == 200
    assert "Location" not in answer.headers


def connect(sandbox: RunningSandbox, integration: Integration) -> Integration:
    from integrations.services import integration_oauth_complete

    code = sandbox.authorize(integration.notify_url)
    return integration_oauth_complete(integration=integration, code=code)


def test_expired_token_answered_401_is_refreshed_once_and_the_call_retried(
    sandbox: RunningSandbox, sandbox_integration: Integration
) -> None:
    integration = connect(sandbox, sandbox_integration)
    sandbox.control("POST", "expire-tokens")
    numbers = MttClient(integration).external_numbers_info()
    assert [n.number for n in numbers] == [n["number"] for n in sandbox.config.directory.numbers]
    log = sandbox.control("GET", "requests")
    calls = [(r["path"], r["status"]) for r in log if r["path"] != "/oauth/authorize"]
    assert calls[-3:] == [("/externalNumbersInfo", 401), ("/oauth/token", 200), ("/externalNumbersInfo", 200)]
    assert [r["json"]["grant_type"] for r in token_requests(sandbox)] == [
        "authorization_code",
        "refresh_token",
    ]


def test_short_lived_token_is_refreshed_before_use(
    sandbox: RunningSandbox, sandbox_integration: Integration, settings: Any
) -> None:
    sandbox.control("POST", "config", {"access_token_lifetime": 2})
    settings.MTT_TOKEN_REFRESH_MARGIN = 5  # a 2-second token is always "about to expire"
    integration = connect(sandbox, sandbox_integration)
    first_token = integration.access_token
    MttClient(Integration.objects.get(pk=integration.pk)).workplaces_info()
    log = sandbox.control("GET", "requests")
    assert [(r["path"], r["status"]) for r in log][-2:] == [("/oauth/token", 200), ("/workplacesInfo", 200)]
    assert Integration.objects.get(pk=integration.pk).access_token != first_token


def test_refused_refresh_needs_reconnect(sandbox: RunningSandbox, sandbox_integration: Integration) -> None:
    integration = connect(sandbox, sandbox_integration)
    sandbox.control("POST", "config", {"refuse_refresh": True})
    sandbox.control("POST", "expire-tokens")
    from integrations.mtt.errors import MttReconnectRequired

    with pytest.raises(MttReconnectRequired):
        MttClient(integration).workplaces_info()
    with pytest.raises(MttReconnectRequired):
        MttClient(Integration.objects.get(pk=integration.pk)).workplaces_info()
    assert Integration.objects.get(pk=integration.pk).status == Integration.Status.NEEDS_RECONNECT
    assert [r["json"]["grant_type"] for r in token_requests(sandbox)] == [
        "authorization_code",
        "refresh_token",
    ]


@pytest.mark.django_db(transaction=True)
def test_single_flight_refresh_against_the_sandbox(postgres_only: None, sandbox: RunningSandbox) -> None:
    integration = new_sandbox_integration(sandbox, name="Race")
    integration = connect(sandbox, integration)
    sandbox.control("POST", "expire-tokens")
    # Each caller holds the now-dead token, as callers in other processes would.
    stale = Integration.objects.get(pk=integration.pk).access_token
    at_once(
        [
            lambda: integration_refresh_tokens(integration_id=integration.pk, stale_access_token=stale)
            for _ in range(6)
        ]
    )
    assert [r["json"]["grant_type"] for r in token_requests(sandbox)] == [
        "authorization_code",
        "refresh_token",
    ]


def test_sync_now_button_and_deactivation(
    client: Client, admin_user: Any, sandbox: RunningSandbox, sandbox_integration: Integration
) -> None:
    integration = connect(sandbox, sandbox_integration)
    client.force_login(admin_user)
    response = client.post(reverse("admin:integrations_integration_sync", args=[integration.pk]), follow=True)
    assert response.status_code == 200
    first_wp = sandbox.config.directory.workplaces[0]["workplace"]
    wp = Workplace.objects.get(integration=integration, sip_id=first_wp)
    wp.user = admin_user
    wp.save()

    directory = sandbox.config.directory.as_dict()
    directory["workplaces"] = [w for w in directory["workplaces"] if w["workplace"] != first_wp] + [
        {"workplace": "883140000000999", "name": "Новый сотрудник"}
    ]
    directory["workplaces"][0]["name"] = "Переименован"
    directory["terminals"] = [t for t in directory["terminals"] if t["workplace"] != first_wp]
    directory["numbers"] = directory["numbers"][:1]
    sandbox.control("POST", "directory", directory)
    client.post(reverse("admin:integrations_integration_sync", args=[integration.pk]))

    wp.refresh_from_db()
    assert wp.is_active is False
    assert wp.user == admin_user  # kept: calls and the operator link survive
    assert Workplace.objects.get(integration=integration, sip_id="883140000000999").is_active
    assert (
        Workplace.objects.get(integration=integration, sip_id=directory["workplaces"][0]["workplace"]).name
        == "Переименован"
    )
    assert ExternalNumber.objects.filter(integration=integration, is_active=True).count() == 1
    assert ExternalNumber.objects.filter(integration=integration, is_active=False).count() == 1
    assert not Terminal.objects.filter(integration=integration, workplace=wp, is_active=True).exists()


def test_sync_now_shows_mtt_errors_in_words(
    client: Client, admin_user: Any, sandbox: RunningSandbox, sandbox_integration: Integration
) -> None:
    integration = connect(sandbox, sandbox_integration)
    sandbox.control("POST", "faults", {"path": "*", "status": 500, "count": 100})
    client.force_login(admin_user)
    response = client.post(reverse("admin:integrations_integration_sync", args=[integration.pk]), follow=True)
    text = response.content.decode()
    assert response.status_code == 200
    assert "MTT" in text
    assert Integration.objects.get(pk=integration.pk).last_error


def test_mtt_sync_command(sandbox: RunningSandbox, sandbox_integration: Integration) -> None:
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    connect(sandbox, sandbox_integration)
    Workplace.objects.all().delete()
    out = StringIO()
    call_command("mtt", "sync", "Sandbox", stdout=out)
    assert out.getvalue().startswith("Sandbox: 3 workplaces")
    assert Workplace.objects.count() == 3
    sandbox.control("POST", "faults", {"path": "*", "status": 500, "count": 100})
    err = StringIO()
    with pytest.raises(CommandError, match="failed to sync"):
        call_command("mtt", "sync", stdout=StringIO(), stderr=err)
    assert "Sandbox: sync failed" in err.getvalue()
    with pytest.raises(CommandError, match="No integration named"):
        call_command("mtt", "sync", "Nope")


def test_refusal_at_the_portal_is_shown_to_the_admin(
    client: Client, admin_user: Any, sandbox: RunningSandbox, sandbox_integration: Integration
) -> None:
    client.force_login(admin_user)
    params = start_connect(client, sandbox_integration)
    response = client.get(
        sandbox_integration.notify_path,
        {"error": "access_denied", "error_description": "User cancelled", "state": params["state"]},
        follow=True,
    )
    assert response.status_code == 200
    assert "User cancelled" in response.content.decode()
    assert Integration.objects.get(pk=sandbox_integration.pk).status == Integration.Status.NOT_CONNECTED

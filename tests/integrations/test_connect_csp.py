"""The CSP form-action that lets Connect reach the OAuth portal: the integration's change page allows its own
OAuth origin (browsers check the 302 of /connect/ against the page's form-action), every other page keeps
``form-action 'self'``. The browser side is tests/browser/test_connect.py."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from integrations.admin import oauth_form_action_origin
from integrations.models import Integration

pytestmark = pytest.mark.django_db


def _directives(header: str) -> dict[str, list[str]]:
    parts = (part.split() for part in header.split(";") if part.strip())
    return {name: values for name, *values in parts}


def _policy(client: Client, url: str, header: str = "Content-Security-Policy") -> dict[str, list[str]]:
    response = client.get(url)
    assert response.status_code == 200, url
    return _directives(response.headers[header])


@pytest.fixture
def admin_client_(admin_user: Any) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def _change(integration: Integration) -> str:
    return reverse("admin:integrations_integration_change", args=[integration.pk])


def test_the_change_page_allows_its_own_oauth_origin_only(
    admin_client_: Client, integration: Integration
) -> None:
    Integration.objects.filter(pk=integration.pk).update(oauth_url="https://OAuth.MTT.ru:8443/some/path")
    policy = _policy(admin_client_, _change(integration))
    assert policy["form-action"] == ["'self'", "https://oauth.mtt.ru:8443"]
    # Nothing else of the policy moves.
    assert policy["script-src"] == ["'self'"] and policy["default-src"] == ["'self'"]


def test_every_other_page_keeps_form_action_self(admin_client_: Client, integration: Integration) -> None:
    other = Integration.objects.create(
        name="Other", client_id="c", client_secret="s", oauth_url="https://oauth.elsewhere.test"
    )
    for url in (
        reverse("admin:integrations_integration_changelist"),
        reverse("admin:integrations_integration_add"),
        reverse("admin:index"),
        reverse("calls:workspace"),
        reverse("contacts:list"),
    ):
        assert _policy(admin_client_, url)["form-action"] == ["'self'"], url
    # Another integration's page names its own OAuth server, not this one's.
    assert _policy(admin_client_, _change(other))["form-action"] == ["'self'", "https://oauth.elsewhere.test"]


@pytest.mark.parametrize(
    "oauth_url",
    [
        "https://oauth.mtt.ru; script-src *",
        "https://evil.test;script-src",
        "https://user:pw@oauth.mtt.ru",
        "ftp://oauth.mtt.ru",
        "javascript:alert(1)",
        "",
    ],
)
def test_an_oauth_url_a_policy_cannot_name_safely_adds_nothing(
    admin_client_: Client, integration: Integration, oauth_url: str
) -> None:
    # The form refuses such URLs; the model (the `mtt add` command, the shell) may still hold one.
    Integration.objects.filter(pk=integration.pk).update(oauth_url=oauth_url)
    policy = _policy(admin_client_, _change(integration))
    assert policy["form-action"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert oauth_form_action_origin(oauth_url) is None


def test_report_only_mode_reports_with_the_same_allowance(
    admin_client_: Client, integration: Integration, settings: Any
) -> None:
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = settings.CONTENT_SECURITY_POLICY
    del settings.CONTENT_SECURITY_POLICY
    response = admin_client_.get(_change(integration))
    assert "Content-Security-Policy" not in response.headers
    policy = _directives(response.headers["Content-Security-Policy-Report-Only"])
    assert policy["form-action"] == ["'self'", "http://oauth.mtt.test"]


def test_an_unknown_integration_is_still_djangos_answer(admin_client_: Client) -> None:
    response = admin_client_.get(reverse("admin:integrations_integration_change", args=[999999]))
    # The admin's "not found" redirect to its index, with the unchanged policy.
    assert response.status_code == 302
    assert _directives(response.headers["Content-Security-Policy"])["form-action"] == ["'self'"]

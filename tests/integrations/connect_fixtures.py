"""The admin's Connect and the portal's login, as the OAuth tests drive them against the sandbox."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests
from django.test import Client
from django.urls import reverse

from integrations.models import Integration
from sandbox.testing import RunningSandbox


def start_connect(client: Client, integration: Integration) -> dict[str, str]:
    response = client.post(reverse("admin:integrations_integration_connect", args=[integration.pk]))
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(integration.oauth_url + "/oauth/authorize?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def portal_login(
    sandbox: RunningSandbox, params: dict[str, str], password: str | None = None
) -> requests.Response:
    form = {**params, "login": sandbox.config.login, "password": password or sandbox.config.password}
    return requests.post(f"{sandbox.url}/oauth/authorize", data=form, allow_redirects=False, timeout=10)

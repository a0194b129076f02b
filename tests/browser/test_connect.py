"""Connect and Reconnect on an integration's admin page in Chromium, against the sandbox's OAuth portal.

The button POSTs to /connect/, which answers 302 to the portal on another origin. Browsers apply the page's
CSP ``form-action`` to that redirect too: with ``form-action 'self'`` alone the button did nothing (Chromium:
"Sending form data to '…/connect/' violates … form-action 'self'"). The change page allows its own
integration's OAuth origin; every other page keeps ``form-action 'self'``.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from sandbox.testing import running_sandbox
from tests.browser.test_csp import violations, watch
from tests.mtt_sandbox import new_sandbox_integration

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN = ("boss", "boss-pass-123")


@pytest.fixture
def oauth_settings(live_server: Any, settings: Any) -> None:
    # The Redirect URI (the notify URL) must bring the browser back to this server, and the sandbox speaks http.
    settings.SITE_URL = live_server.url
    settings.MTT_ALLOW_INSECURE_OAUTH = True
    settings.MTT_RATE_LIMIT_KEY_PREFIX = f"test-browser:{uuid.uuid4().hex}:"


def _log_in(page: Any, base: str) -> None:
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser(ADMIN[0], "boss@example.com", ADMIN[1])
    page.goto(base + reverse("login"))
    page.fill("input[name=username]", ADMIN[0])
    page.fill("input[name=password]", ADMIN[1])
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


@pytest.mark.parametrize(
    ("status", "button"),
    [("not_connected", "Подключить"), ("needs_reconnect", "Переподключить")],
    ids=["connect", "reconnect"],
)
def test_the_button_takes_the_admin_to_the_portal_and_back_connected(
    live_server: Any, page: Any, artifacts: Path, oauth_settings: None, status: str, button: str
) -> None:
    from integrations.models import Integration, Workplace

    with running_sandbox() as sandbox:
        integration = new_sandbox_integration(sandbox, status=status)
        change_url = live_server.url + reverse("admin:integrations_integration_change", args=[integration.pk])
        console = watch(page)
        _log_in(page, live_server.url)
        page.goto(change_url)

        page.get_by_role("button", name=button, exact=True).click()

        # The portal's login page, on the sandbox's origin: the browser was not stopped by the CSP.
        page.wait_for_url(re.compile(re.escape(sandbox.url + "/oauth/authorize?") + ".*"))
        assert page.locator("h1").inner_text().startswith("МТТ Бизнес — вход в личный кабинет")
        assert violations(page, console) == []
        page.screenshot(path=str(artifacts / f"connect_portal_{status}.png"))

        page.fill("input[name=login]", sandbox.config.login)
        page.fill("input[name=password]", sandbox.config.password)
        page.click("button[type=submit]")

        # Back on the integration's page, connected, with its directory synced from the sandbox.
        page.wait_for_url(change_url)
        assert "Подключено к МТТ" in page.locator(".messagelist").inner_text()
        integration.refresh_from_db()
        assert integration.status == Integration.Status.CONNECTED
        assert integration.access_token
        assert Workplace.objects.filter(integration=integration).exists()
        assert page.get_by_role("button", name="Переподключить", exact=True).is_visible()
        assert violations(page, console) == []


def test_another_origin_stays_blocked_on_the_integration_page(
    live_server: Any, page: Any, oauth_settings: None
) -> None:
    """Only the integration's own OAuth origin is allowed: a form on its page that posts to (or is redirected
    to) any other host is still blocked by the browser."""

    with running_sandbox() as sandbox, running_sandbox() as elsewhere:
        integration = new_sandbox_integration(sandbox)
        _log_in(page, live_server.url)
        change_url = live_server.url + reverse("admin:integrations_integration_change", args=[integration.pk])
        console = watch(page)
        sent: list[str] = []
        page.on("request", lambda r: sent.append(r.url) if r.url.startswith(elsewhere.url) else None)
        page.goto(change_url)
        # A form injected into the page, aimed at another origin (another port of the same host).
        page.evaluate(
            "url => { const f = document.createElement('form'); f.method = 'post'; f.action = url;"
            " f.id = 'elsewhere'; document.body.appendChild(f); }",
            elsewhere.url + "/oauth/authorize",
        )
        page.evaluate("document.getElementById('elsewhere').submit()")
        page.wait_for_function("window.__cspViolations.length > 0")
        assert page.url == change_url
        assert any("form-action" in v for v in violations(page, console))
        assert sent == []


@pytest.mark.parametrize("width", [1024, 1280, 1366])
def test_the_redirect_uri_fits_the_integration_page(live_server: Any, page: Any, width: int) -> None:
    """Its box had a fixed size and ran past the form's right edge at 1024 px, cutting the token off."""
    from integrations.models import Integration

    integration = Integration.objects.create(
        name="Sandbox",
        client_id="c",
        client_secret="s",
        oauth_url="https://oauth.mtt.test",
        api_url="https://mtt.test",
    )
    page.set_viewport_size({"width": width, "height": 900})
    _log_in(page, live_server.url)
    page.goto(live_server.url + reverse("admin:integrations_integration_change", args=[integration.pk]))
    box = page.locator("#redirect-uri").bounding_box()
    form = page.locator("#content-main").bounding_box()
    assert box is not None and form is not None
    assert box["x"] + box["width"] <= form["x"] + form["width"]
    assert page.locator("#redirect-uri").input_value() == integration.notify_url

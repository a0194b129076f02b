"""The Content-Security-Policy in Chromium: every main page, ours and the admin's, loads with no
violation (no inline script, handler or style anywhere), and the behaviours moved out of inline
handlers still work."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from django.urls import NoReverseMatch, reverse

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Recorded by the page itself: Playwright's init scripts are not subject to the page's policy.
CATCH_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " +
    (e.sourceFile || "") + ":" + (e.lineNumber || 0));
});
"""


@pytest.fixture
def data(db: Any) -> dict[str, Any]:
    from django.contrib.auth import get_user_model

    from contacts.models import Contact, PhoneNumber
    from integrations.models import Integration

    admin = get_user_model().objects.create_superuser("boss", "boss@example.com", "boss-pass-123")
    integration = Integration.objects.create(name="Sandbox", client_id="demo-client", client_secret="s")
    contact = Contact.objects.create(name="Ольга Смирнова", company="ООО «Ромашка»")
    PhoneNumber.objects.create(contact=contact, e164="+79219462761", raw="+79219462761")
    return {"admin": admin, "integration": integration, "contact": contact}


def pages(data: dict[str, Any]) -> list[str]:
    paths = [
        reverse("calls:workspace"),
        reverse("calls:log"),
        reverse("calls:board"),
        reverse("calls:callbacks"),
        reverse("contacts:list"),
        reverse("contacts:detail", args=[data["contact"].pk]),
        reverse("contacts:create"),
        reverse("admin:index"),
        reverse("admin:integrations_integration_changelist"),
        reverse("admin:integrations_integration_change", args=[data["integration"].pk]),
        reverse("admin:contacts_contact_change", args=[data["contact"].pk]),
        reverse("admin:auth_user_changelist"),
        reverse("admin:monitoring_integrationhealth_changelist"),
    ]
    with contextlib.suppress(NoReverseMatch):  # another feature's page, when it is there
        paths.append(reverse("calls:reports"))
    return paths


def watch(page: Any) -> list[str]:
    console: list[str] = []
    page.add_init_script(CATCH_VIOLATIONS)
    page.on(
        "console",
        lambda msg: console.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    return console


def violations(page: Any, console: list[str]) -> list[str]:
    return [*console, *page.evaluate("window.__cspViolations || []")]


def test_every_main_page_loads_without_a_csp_violation(
    live_server: Any, page: Any, data: dict[str, Any]
) -> None:
    console = watch(page)
    page.goto(live_server.url + reverse("login"))
    # The login page itself (with the policy).
    response = page.request.get(live_server.url + reverse("login"))
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert violations(page, console) == []
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", "boss-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")

    found: dict[str, list[str]] = {}
    for path in pages(data):
        console.clear()
        answer = page.goto(live_server.url + path)
        assert answer is not None and answer.status == 200, path
        page.wait_for_load_state("load")
        page.wait_for_timeout(150)  # late violations (scripts run after load)
        seen = violations(page, console)
        if seen:
            found[path] = seen
    assert found == {}


def test_click_to_call_looks_come_from_the_stylesheet(
    live_server: Any, page: Any, data: dict[str, Any]
) -> None:
    console = watch(page)
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", "boss-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    page.goto(live_server.url + reverse("contacts:detail", args=[data["contact"].pk]))
    phone = page.locator(".c2c").first
    phone.wait_for()
    # The dashed underline is css/click_to_call.css's rule, applied although no <style> was injected.
    assert phone.evaluate("el => getComputedStyle(el).borderBottomStyle") == "dashed"
    assert page.locator("style#c2c-style").count() == 0
    assert violations(page, console) == []


def test_language_switch_and_copy_button_work_without_inline_handlers(
    live_server: Any, page: Any, data: dict[str, Any]
) -> None:
    console = watch(page)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(live_server.url + reverse("login"))
    assert page.locator("html").get_attribute("lang") == "ru"
    page.select_option("select[name=language]", "en")
    page.wait_for_function("document.documentElement.lang === 'en'")
    assert page.locator("h1").inner_text() == "Log in"

    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", "boss-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    page.goto(
        live_server.url + reverse("admin:integrations_integration_change", args=[data["integration"].pk])
    )
    page.click("button[data-copy-from=redirect-uri]")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == data["integration"].notify_url
    page.click("#redirect-uri")
    page.wait_for_timeout(50)
    selected = page.evaluate(
        "(() => { const f = document.getElementById('redirect-uri'); return f.selectionEnd - f.selectionStart; })()"
    )
    assert selected == len(data["integration"].notify_url)
    assert violations(page, console) == []


def test_an_inline_script_would_be_caught(live_server: Any, page: Any, data: dict[str, Any]) -> None:
    """The watch itself works: an inline handler added to a page is blocked and reported."""
    console = watch(page)
    page.goto(live_server.url + reverse("login"))
    page.evaluate(
        "(() => { const b = document.createElement('button'); b.id = 'evil';"
        " b.setAttribute('onclick', 'window.__ran = true'); document.body.appendChild(b); })()"
    )
    page.click("#evil")
    page.wait_for_timeout(100)
    assert page.evaluate("window.__ran === true") is False
    assert any("script-src" in v for v in violations(page, console))


def test_the_api_docs_load_without_a_csp_violation(live_server: Any, page: Any, data: dict[str, Any]) -> None:
    """Swagger UI (/api/docs/) from our own static files, its script a file of its own: no violation, and the
    operations are listed."""
    console = watch(page)
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", "boss-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    answer = page.goto(live_server.url + "/api/docs/")
    assert answer is not None and answer.status == 200
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() >= 15
    assert violations(page, console) == []

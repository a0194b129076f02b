"""What the browser tests do on the product's pages."""

from __future__ import annotations

from typing import Any

from tests.browser.stack import OPERATOR

# The laptop widths every page must fit (issue 16), and the password of the layout world's users
# (tests/browser/conftest.py, ``world``).
WIDTHS = (1024, 1280, 1366)
PASSWORD = "layout-pass-123"


def log_in(page: Any, base: str, who: tuple[str, str] = OPERATOR, path: str = "/") -> None:
    page.goto(base + path)
    assert "/accounts/login/" in page.url
    page.fill("input[name=username]", who[0])
    page.fill("input[name=password]", who[1])
    page.click("button[type=submit]")
    page.wait_for_url(base + path)
    page.wait_for_selector("#live-status[data-state=open]")


def log_in_as(page: Any, base: str, username: str) -> None:
    """Log in as one of the layout world's users (any page after the login will do)."""
    page.context.clear_cookies()
    page.goto(base + "/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)

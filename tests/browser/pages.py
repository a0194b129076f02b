"""What the browser tests do on the product's pages."""

from __future__ import annotations

from typing import Any

from tests.browser.stack import (
    OPERATOR,
)


def log_in(page: Any, base: str, who: tuple[str, str] = OPERATOR, path: str = "/") -> None:
    page.goto(base + path)
    assert "/accounts/login/" in page.url
    page.fill("input[name=username]", who[0])
    page.fill("input[name=password]", who[1])
    page.click("button[type=submit]")
    page.wait_for_url(base + path)
    page.wait_for_selector("#live-status[data-state=open]")

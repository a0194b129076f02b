"""Playwright driving Debian's Chromium (never a downloaded browser).

Without /usr/bin/chromium the browser tests skip with the reason; in CI (CI=true or
MTTCRM_REQUIRE_BROWSER=1), where .ci/run installs it, a missing browser is a failure instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("MTTCRM_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _browser_required() -> bool:
    return os.environ.get("MTTCRM_REQUIRE_BROWSER") == "1" or os.environ.get("CI") == "true"


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if _browser_required():
            pytest.fail(message + " — browser tests must run in CI")
        pytest.skip(message)
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still
    # synchronous code, so tell Django not to refuse them.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(locale="ru-RU")
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS

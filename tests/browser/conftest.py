"""Playwright driving Debian's Chromium (never a downloaded browser).

Without /usr/bin/chromium the browser tests skip with the reason; in CI (CI=true or
MTTCRM_REQUIRE_BROWSER=1), where .ci/run installs it, a missing browser is a failure instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

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


@pytest.fixture
def world(integration: Any) -> Any:
    """tests/personas.py's world with what makes pages wide (a long comment, a line number, a number with an
    extension, a due task, the health panel's table), its users logging in with ``pages.PASSWORD``: the
    layout, time and every-page tests."""
    from calls.models import Call, CallResult, FollowUpTask
    from contacts.services import contact_create
    from integrations.models import MttRequestLog
    from tests.browser.pages import PASSWORD
    from tests.personas import build_world

    world = build_world(integration)
    for role in ("operator", "supervisor", "admin"):
        user = world.users[role]
        user.set_password(PASSWORD)
        user.save()
    operator = world.users["operator"]
    # What makes pages wide: a long comment, a line number, a number with an extension, a due task.
    Call.objects.filter(pk=world.own_call.pk).update(
        line_number="74996497803",
        # (get_or_create: a transactional test before this one may have flushed the seeded results)
        result=CallResult.objects.get_or_create(name="Консультация")[0],
        comment="Клиент спрашивал про тарифы для филиалов в Казани и Екатеринбурге, просил перезвонить",
        wrapped_up_by=operator,
        wrapped_up_at=timezone.now(),
    )
    contact_create(name="ООО «Северная строительная компания»", numbers=["8 (800) 555-35-35 доб. 1234"])
    # The health panel's table of MTT requests by method (seven columns beside the admin's menu).
    for method in ("externalNumbersInfo", "terminalsinfo", "workplacesInfo", "makeCall", "transferCall"):
        MttRequestLog.objects.create(
            integration=integration,
            method=method,
            status_code=200,
            ok=True,
            duration_ms=1234,
            limiter_wait_ms=254,
        )
    FollowUpTask.objects.create(
        call=world.own_call,
        contact=world.contact,
        assignee=operator,
        created_by=operator,
        due_at=timezone.now() - timedelta(minutes=5),
        note="Отправить коммерческое предложение",
    )
    return world

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_operator_logs_in_and_sees_the_workspace(live_server: Any, page: Any, artifacts: Path) -> None:
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("ivanova", password="demo-pass-123", first_name="Мария")
    page.goto(live_server.url + "/")
    assert "/accounts/login/" in page.url
    assert page.locator("html").get_attribute("lang") == "ru"
    page.fill("input[name=username]", "ivanova")
    page.fill("input[name=password]", "demo-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    assert page.locator("h1").inner_text() == "Рабочее место"
    page.screenshot(path=str(artifacts / "workspace.png"))
    page.click("text=Выйти")
    page.wait_for_url("**/accounts/login/")
    assert page.locator("input[name=username]").is_visible()

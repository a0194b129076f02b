"""A call's time reads the same on the page's server-written parts (the call log, the call's page: the
CRM's TIME_ZONE) and on its script-written parts (the workspace's recent calls, the call cards, the live
board), whatever the zone of the computer the browser runs on: before, the script wrote the browser's zone,
and a browser in another zone than the CRM's showed the same call at 10:15 on the workspace and 13:15 in
the call log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.utils import dateformat, timezone

from tests.browser.pages import log_in_as

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_workspace_writes_a_calls_time_in_the_crms_zone_not_the_browsers(
    live_server: Any,
    chromium: Any,
    artifacts: Path,
    settings: Any,
    world: Any,
) -> None:
    settings.TIME_ZONE = "Europe/Moscow"
    # Seven hours from Moscow: any time written in the browser's zone differs.
    context = chromium.new_context(locale="ru-RU", timezone_id="Asia/Vladivostok")
    page = context.new_page()
    page.set_default_timeout(15_000)
    log_in_as(page, live_server.url, world.users["operator"].username)
    page.goto(live_server.url + "/")
    shown = page.locator(f'#recent [data-call-id="{world.own_call.pk}"] time').first.inner_text()
    page.screenshot(path=str(artifacts / "times-workspace.png"))
    context.close()
    with timezone.override("Europe/Moscow"):
        server = dateformat.format(timezone.localtime(world.own_call.started_at), "d.m.Y H:i")
    assert shown == server

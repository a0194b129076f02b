"""The workspace in a real browser while Redis (the channel layer) is stopped and started again: the
socket reconnects with backoff and the page resyncs its card from /calls/active.json; pushes resume.

A private Redis (tests/faults/servers.py), never the shared one; the rest is tests/faults/test_redis_down.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sandbox.testing import running_sandbox
from tests.browser.stack import CLIENT_NUMBER, LINE, OPERATOR, WORKPLACE, running_stack
from tests.faults.fixtures import private_redis, redis_server  # noqa: F401
from tests.faults.servers import PrivateRedis, redis_env
from tests.waiting import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.faults]


def test_the_workspace_reconnects_and_resyncs_its_card_after_redis_comes_back(
    redis_server: PrivateRedis,  # noqa: F811 - the fixture imported above
    page: Any,
    tmp_path: Path,
    artifacts: Path,
) -> None:
    with (
        running_stack(tmp_path / "stack", extra_env=redis_env(redis_server)) as stack,
        running_sandbox() as sandbox,
    ):
        page.goto(stack.url + "/")
        page.fill("input[name=username]", OPERATOR[0])
        page.fill("input[name=password]", OPERATOR[1])
        page.click("button[type=submit]")
        page.wait_for_selector("#live-status[data-state=open]")

        redis_server.stop()
        try:
            # The socket's channel-layer connection is gone: the page notices and keeps retrying.
            page.wait_for_selector("#live-status:not([data-state=open])", timeout=30_000)
            sandbox.control(
                "POST",
                "scenario",
                {
                    "scenario": "incoming_answered",
                    "caller": CLIENT_NUMBER,
                    "workplace": WORKPLACE,
                    "external_number": LINE,
                    "notify_url": stack.notify_url,
                    "step_delay": 2.5,
                    "duration": 30,
                },
            )
            # The employee's leg rings (trying, showing) while Redis is down: stored, applied, no push.
            wait_until(
                lambda: sum(1 for n in sandbox.control("GET", "notifications") if n["status"] == 200) >= 3,
                60,
                "three notifications delivered",
            )
            assert page.locator(".call-card").count() == 0
        finally:
            redis_server.start()
        # Reconnected (backoff), the page resyncs from /calls/active.json: the card is there.
        page.wait_for_selector("#live-status[data-state=open]", timeout=60_000)
        page.wait_for_selector(".call-card", timeout=30_000)
        page.screenshot(path=str(artifacts / "faults-redis-resync.png"))
        # Pushes flow again: the rest of the call arrives live and the card turns into the wrap-up (the
        # operator took the call: issue 16), which "Later" closes.
        page.wait_for_selector(".call-card.wrap-up-card", timeout=60_000)
        page.click(".wrap-up-card button:text('Позже')")
        page.wait_for_selector(".call-card", state="detached", timeout=10_000)
        statuses = [n["status"] for n in sandbox.control("GET", "notifications")]
        assert statuses and set(statuses) == {200}

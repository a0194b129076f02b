"""The real page acknowledges the cards it shows: /metrics times the screen pop, the log keeps no token."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from sandbox.testing import running_sandbox
from tests.browser.pages import log_in
from tests.browser.stack import LINE, WORKPLACE, running_stack

pytestmark = pytest.mark.browser

TOKEN = "browser-metrics-token-0123456789"


def screen_pops(base: str) -> float:
    response = requests.get(base + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "mttcrm_screen_pop_latency_seconds_count":
                return float(sample.value)
    raise AssertionError("no screen-pop histogram in /metrics")


def test_a_shown_card_is_timed_and_the_token_stays_out_of_the_log(page: Any, tmp_path: Path) -> None:
    extra = {
        "METRICS_TOKEN": TOKEN,
        "METRICS_DIR": str(tmp_path / "metrics"),
        "LOG_LEVEL": "INFO",
    }
    with running_stack(tmp_path / "stack", extra_env=extra) as stack, running_sandbox() as sandbox:
        log_in(page, stack.url)
        assert screen_pops(stack.url) == 0
        sandbox.control(
            "POST",
            "scenario",
            {
                "scenario": "incoming_missed",
                "caller": "+79219462761",
                "workplace": WORKPLACE,
                "external_number": LINE,
                "notify_url": stack.notify_url,
                "step_delay": 0.5,
            },
        )
        page.wait_for_selector(".call-card[data-phase=ringing]")
        deadline = time.monotonic() + 10
        while screen_pops(stack.url) < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert screen_pops(stack.url) >= 1
        token = stack.notify_url.rstrip("/").rsplit("/", 1)[-1]
        log = stack.log.read_text(errors="replace")
        assert "/mtt/***/" in log  # the requests were logged…
        assert token not in log  # …without the notify URL's token

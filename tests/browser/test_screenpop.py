"""The screen pop in a real browser: Daphne (ASGI, WebSockets), the sandbox playing a call, Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sandbox.testing import running_sandbox
from tests.browser.pages import log_in
from tests.browser.stack import (
    CLIENT_NAME,
    CLIENT_NUMBER,
    LINE,
    SUPERVISOR,
    WORKPLACE,
    running_stack,
)

pytestmark = pytest.mark.browser


def test_card_pops_up_turns_into_a_conversation_and_closes(
    page: Any, artifacts: Path, tmp_path: Path
) -> None:
    with running_stack(tmp_path / "stack") as stack, running_sandbox() as sandbox:
        log_in(page, stack.url)
        # A second tab of the same operator, in the background with notifications allowed: the card
        # shows and closes there too, and it raises a desktop notification.
        other_tab = page.context.new_page()
        other_tab.add_init_script(BACKGROUND_TAB)
        other_tab.goto(stack.url + "/")
        other_tab.wait_for_selector("#live-status[data-state=open]")
        assert other_tab.locator("#notify-permission").is_hidden()  # already granted: nothing to ask
        assert (
            page.locator("#notify-permission").is_visible()
            or page.evaluate("Notification.permission") != "default"
        )

        sandbox.control(
            "POST",
            "scenario",
            {
                "scenario": "incoming_answered",
                "caller": CLIENT_NUMBER,
                "workplace": WORKPLACE,
                "external_number": LINE,
                "notify_url": stack.notify_url,
                "step_delay": 1.5,
                "duration": 4,
            },
        )
        card = page.locator(".call-card")
        page.wait_for_selector(".call-card[data-phase=ringing]")
        assert card.locator(".contact-name").inner_text() == CLIENT_NAME
        assert card.locator(".number").inner_text() == "+7 921 946-27-61"
        assert "ООО «Ромашка»" in card.inner_text()
        assert "Анна Сидорова" in card.inner_text()
        assert "Просила перезвонить после обеда." in card.inner_text()
        other_tab.wait_for_selector(".call-card[data-phase=ringing]")
        page.screenshot(path=str(artifacts / "screenpop-ringing.png"))
        # One tab rings and notifies (the first to claim the call); a desktop notification only from a
        # hidden tab: the background one, when it is the one that claimed.
        call_id = card.get_attribute("data-call-id")
        rang = [
            tab
            for tab in (page, other_tab)
            if call_id in tab.evaluate("document.body.dataset.rang || ''").split()
        ]
        assert len(rang) == 1
        notes = other_tab.evaluate("window.__notifications")
        if rang == [other_tab]:
            assert [n["tag"] for n in notes] == [f"mttcrm-call-{call_id}"]
            assert CLIENT_NAME in notes[0]["body"]
        else:
            assert notes == []

        page.wait_for_selector(".call-card[data-phase=connected]")
        # The conversation timer runs.
        page.wait_for_function(
            "() => /^0:0[1-9]$/.test(document.querySelector('.call-card .timer').textContent)"
        )
        page.screenshot(path=str(artifacts / "screenpop-connected.png"))

        # After hang-up the card stays in both tabs for the wrap-up; "Later" closes it in both.
        page.wait_for_selector(".call-card.wrap-up-card", timeout=20_000)
        other_tab.wait_for_selector(".call-card.wrap-up-card", timeout=10_000)
        page.screenshot(path=str(artifacts / "screenpop-wrap-up.png"))
        page.click(".wrap-up-card button:text('Позже')")
        page.wait_for_selector(".call-card", state="detached", timeout=10_000)
        other_tab.wait_for_selector(".call-card", state="detached", timeout=10_000)
        recent = page.locator("#recent .recent-item").first
        assert CLIENT_NAME in recent.inner_text()
        assert recent.locator("textarea[name=text]").is_visible()
        assert other_tab.evaluate("window.__closed") == [n["tag"] for n in notes]  # closed with the card

        # The note field of the finished call saves into the contact's notes (CSRF-protected POST).
        recent.locator("textarea[name=text]").fill("Хочет счёт на оплату")
        recent.locator("button[type=submit]").click()
        page.wait_for_selector("#recent .recent-item .note-result.ok")
        page.screenshot(path=str(artifacts / "screenpop-finished.png"))
        page.click("#recent .recent-item a >> text=" + CLIENT_NAME)
        page.wait_for_selector("text=Хочет счёт на оплату")

        # The sound switch is remembered.
        page.goto(stack.url + "/")
        page.uncheck("#sound-toggle")
        page.reload()
        assert not page.locator("#sound-toggle").is_checked()
        other_tab.close()


def test_supervisor_board_follows_calls_live(page: Any, artifacts: Path, tmp_path: Path) -> None:
    with running_stack(tmp_path / "stack") as stack, running_sandbox() as sandbox:
        log_in(page, stack.url, SUPERVISOR, "/calls/live/")
        sandbox.control(
            "POST",
            "scenario",
            {
                "scenario": "incoming_missed",
                "caller": CLIENT_NUMBER,
                "workplace": WORKPLACE,
                "external_number": LINE,
                "notify_url": stack.notify_url,
                "step_delay": 1.0,
            },
        )
        row = page.locator("#board-rows tr")
        page.wait_for_selector("#board-rows tr .operators .phase-ringing")
        assert CLIENT_NAME in row.inner_text()
        assert "Мария Иванова" in row.locator(".operators").inner_text()
        assert page.locator("#board-count").inner_text() == "1"
        page.screenshot(path=str(artifacts / "screenpop-board.png"))
        page.wait_for_selector("#board-rows tr", state="detached", timeout=15_000)
        assert page.locator("#board-count").inner_text() == "0"


BACKGROUND_TAB = """
Object.defineProperty(document, "hidden", { get: () => true });
window.__notifications = [];
window.__closed = [];
window.Notification = class {
  static permission = "granted";
  static requestPermission() { return Promise.resolve("granted"); }
  constructor(title, options) {
    this.tag = options.tag;
    window.__notifications.push({ title: title, body: options.body, tag: options.tag });
  }
  close() { window.__closed.push(this.tag); }
};
"""

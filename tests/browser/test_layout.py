"""Fits a laptop (issue 16): every page reachable from the menu of each persona (operator, supervisor,
admin), at 1024, 1280 and 1366 px wide, has no horizontal page scroll and no serious or critical axe-core
violation (axe-playwright-python bundles axe-core: nothing is downloaded); the menu does not wrap at
1280 and 1366 px (every persona, test_the_menu_is_one_line_…); the call tables keep their columns in view
beside a docked card. Screenshots of every page and width go to test-artifacts/ (look at them)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from tests.browser.pages import WIDTHS, log_in_as

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SERIOUS = ("serious", "critical")


def menu_pages(page: Any, base: str, world: Any) -> list[str]:
    page.goto(base + "/")
    hrefs = page.eval_on_selector_all(
        "header.topbar nav a[href]", "links => links.map(a => a.getAttribute('href'))"
    )
    paths = [h for h in dict.fromkeys(hrefs) if h.startswith("/")]
    # A record of each kind the menu's lists lead to.
    return [*paths, f"/calls/{world.own_call.pk}/", f"/contacts/{world.contact.pk}/", "/contacts/new/"]


def test_every_menu_page_fits_each_width_with_no_serious_axe_violation(
    live_server: Any, chromium: Any, artifacts: Path, world: Any
) -> None:
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    problems: list[str] = []
    for role in ("operator", "supervisor", "admin"):
        context = chromium.new_context(locale="ru-RU")
        page = context.new_page()
        page.set_default_timeout(15_000)
        log_in_as(page, live_server.url, world.users[role].username)
        for path in menu_pages(page, live_server.url, world):
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 800})
                answer = page.goto(live_server.url + path)
                assert answer is not None and answer.status == 200, (role, path, answer and answer.status)
                page.wait_for_load_state("load")
                slug = path.strip("/").replace("/", "-") or "home"
                page.screenshot(path=str(artifacts / f"layout-{role}-{slug}-{width}.png"), full_page=True)
                scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
                if scroll > inner:
                    problems.append(f"{role} {path} @{width}: page is {scroll}px wide")
                if width == WIDTHS[0] and page.locator("main table.calls").count():
                    # Room to spare for the call table: a classic scrollbar (17 px) and a system font a
                    # little wider than this machine's leave ~1000 px of a 1024 px screen.
                    page.set_viewport_size({"width": 1000, "height": 800})
                    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
                    if scroll > inner:
                        problems.append(f"{role} {path} @1024 less a scrollbar: page is {scroll}px wide")
                    page.set_viewport_size({"width": width, "height": 800})
                if width >= 1280:
                    tops = page.eval_on_selector_all(
                        "header.topbar nav > a, header.topbar .right > *",
                        "nodes => nodes.map(n => Math.round(n.getBoundingClientRect().top))",
                    )
                    # One row: the items' tops differ by their own heights' centring only (a link, a select).
                    if tops and max(tops) - min(tops) > 12:
                        problems.append(f"{role} {path} @{width}: the header wraps ({sorted(set(tops))})")
                if width == WIDTHS[0]:
                    results = axe.run(page)
                    for violation in results.response["violations"]:
                        if violation["impact"] in SERIOUS:
                            targets = [n["target"] for n in violation["nodes"]][:3]
                            problems.append(
                                f"{role} {path}: axe {violation['id']} ({violation['impact']}) {targets}"
                            )
        context.close()
    assert problems == [], "\n".join(problems)


# The page's controls a panel must never cover, with the part of each that is not clipped by a scrolling box.
CONTROLS_UNDER_DESK = """
() => {
  const desk = document.querySelector('.desk');
  if (!desk || !desk.querySelector('.call-card')) return {cards: 0, covered: []};
  const d = desk.getBoundingClientRect();
  const covered = [];
  for (const node of document.querySelectorAll('main a, main button, main input, main select, main textarea, main th, main td, main dd')) {
    let r = node.getBoundingClientRect();
    if (!r.width || !r.height) continue;
    let left = r.left, right = r.right;
    for (let box = node.parentElement; box && box !== document.body; box = box.parentElement) {
      if (getComputedStyle(box).overflowX !== 'visible') {
        const b = box.getBoundingClientRect();
        left = Math.max(left, b.left); right = Math.min(right, b.right);
      }
    }
    // The panel is fixed: whatever scrolls past its column is covered at some scroll position.
    if (right > d.left + 1 && left < d.right - 1) covered.push((node.textContent || node.name || node.tagName).trim().slice(0, 30));
  }
  return {cards: desk.querySelectorAll('.call-card').length, covered};
}
"""


def test_the_call_panel_never_covers_the_page(
    live_server: Any, chromium: Any, artifacts: Path, world: Any
) -> None:
    from tests.personas import _call

    # Three calls the operator took and has not wrapped up: three wrap-up cards on every page.
    for n in range(3):
        _call(world.integration, f"pending-{n}", world.own_call.workplace, world.contact)
    context = chromium.new_context(locale="ru-RU")
    page = context.new_page()
    page.set_default_timeout(15_000)
    log_in_as(page, live_server.url, world.users["operator"].username)
    problems: list[str] = []
    paths = ["/calls/", f"/contacts/{world.contact.pk}/", f"/calls/{world.own_call.pk}/", "/calls/callbacks/"]
    for path in paths:
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 768})
            page.goto(live_server.url + path)
            # No live socket under live_server: the page's resync on becoming visible brings the cards.
            page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
            page.wait_for_selector(".desk .call-card.wrap-up-card >> nth=2")
            slug = path.strip("/").replace("/", "-")
            page.screenshot(path=str(artifacts / f"layout-desk-{slug}-{width}.png"))
            found = page.evaluate(CONTROLS_UNDER_DESK)
            if found["covered"]:
                problems.append(f"{path} @{width}: the panel covers {found['covered'][:5]}")
            scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            if scroll > inner:
                problems.append(f"{path} @{width}: page is {scroll}px wide with the panel")
            # Every card is reachable: one open, the others fold to a line with a button that opens them.
            folded = page.locator(".desk .call-card.folded")
            assert folded.count() == 2, path
            folded.first.locator("button.unfold-card").click()
            assert page.locator(".desk .call-card:not(.folded)").count() == 1
        # The whole panel folds to a strip, and the page takes the room back.
        page.locator(".desk button.desk-fold").click()
        assert page.locator(".desk .call-card").first.is_hidden()
        found = page.evaluate(CONTROLS_UNDER_DESK)
        assert found["covered"] == [], (path, found)
        page.locator(".desk button.desk-fold").click()
    context.close()
    assert problems == [], "\n".join(problems)


# Each column a call table shows, with the part of it that a scrolling box or the panel hides.
TABLE_COLUMNS_CUT = """
() => {
  const desk = document.querySelector('.desk');
  const deskLeft = desk && desk.querySelector('.call-card') ? desk.getBoundingClientRect().left : window.innerWidth;
  const cut = [];
  for (const table of document.querySelectorAll('main table.calls')) {
    for (const th of table.querySelectorAll('thead th')) {
      const r = th.getBoundingClientRect();
      if (!r.width) continue;  // a column the layout folds away
      let right = Math.min(deskLeft, window.innerWidth);
      for (let box = th.parentElement; box && box !== document.body; box = box.parentElement) {
        if (getComputedStyle(box).overflowX !== 'visible') right = Math.min(right, box.getBoundingClientRect().right);
      }
      if (r.right > right + 1) cut.push(`${(th.textContent || '').trim()}: ${Math.round(r.right - right)}px`);
    }
  }
  return cut;
}
"""


def test_call_tables_show_every_column_next_to_the_docked_desk(
    live_server: Any, chromium: Any, artifacts: Path, world: Any
) -> None:
    """An operator waiting to wrap up always has a card docked: the log's and the contact's call tables,
    with the wrap-up and the recording columns last, and the callbacks list with its "Take it" button, stay
    whole beside it at every laptop width."""
    from tests.personas import _call

    _call(world.integration, "pending", world.own_call.workplace, world.contact)
    # The operator may listen to recordings: the last column is the recording's.
    operator = world.users["operator"]
    operator.user_permissions.add(Permission.objects.get(codename="listen_recording"))
    context = chromium.new_context(locale="ru-RU")
    page = context.new_page()
    page.set_default_timeout(15_000)
    log_in_as(page, live_server.url, operator.username)
    problems: list[str] = []
    for path in ("/calls/?period=all", f"/contacts/{world.contact.pk}/", "/calls/callbacks/"):
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 768})
            page.goto(live_server.url + path)
            page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
            page.wait_for_selector("body.desk-docked .desk .call-card.wrap-up-card")
            if "callbacks" not in path:
                assert page.locator("main table.calls th").last.inner_text() == "Запись", path
            slug = path.strip("/").split("?")[0].replace("/", "-")
            page.screenshot(path=str(artifacts / f"layout-docked-table-{slug}-{width}.png"))
            cut = page.evaluate(TABLE_COLUMNS_CUT)
            if cut:
                problems.append(f"{path} @{width}: columns cut off {cut}")
    context.close()
    assert problems == [], "\n".join(problems)


# The menu's items (the links and badges, the language, the user, log out) as boxes.
MENU_BOXES = """
() => [...document.querySelectorAll('header.topbar .brand, header.topbar nav > a, header.topbar .right > *')]
  .map(n => { const r = n.getBoundingClientRect();
    return {text: (n.innerText || n.tagName).trim(), top: r.top, bottom: r.bottom, left: r.left, right: r.right}; })
"""


def test_the_menu_is_one_line_at_1280_and_1366_and_wraps_tidily_at_1024(
    live_server: Any, chromium: Any, artifacts: Path, world: Any
) -> None:
    """Every persona's menu (the admin's and the supervisor's are the longest: the live board, reports,
    administration and the MTT health badge) is one row at 1280 and 1366 px; at 1024 px, or with the badge's
    longer words of MTT's warnings, it may wrap, but no item overlaps another or leaves the screen."""
    from django.core.cache import cache

    from monitoring.context_processors import CACHE_KEY
    from monitoring.models import HealthWarning

    # Names as long as real ones (the demo's supervisor is "Ольга Руководитель").
    for role, first, last in (
        ("operator", "Мария", "Иванова"),
        ("supervisor", "Ольга", "Руководитель"),
        ("admin", "Константин", "Администраторов"),
    ):
        world.users[role].first_name, world.users[role].last_name = first, last
        world.users[role].save()
    problems: list[str] = []
    for role, state in (("operator", ""), ("supervisor", ""), ("admin", ""), ("admin", "warnings")):
        if state == "warnings":  # the badge's longer words when something is wrong
            now = timezone.now()
            for kind in (HealthWarning.Kind.SILENCE, HealthWarning.Kind.INBOX_BACKLOG):
                HealthWarning.objects.create(
                    integration=world.integration, kind=kind, opened_at=now, last_seen_at=now
                )
        cache.delete(CACHE_KEY)
        context = chromium.new_context(locale="ru-RU")
        page = context.new_page()
        page.set_default_timeout(15_000)
        log_in_as(page, live_server.url, world.users[role].username)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 768})
            page.goto(live_server.url + "/calls/")
            if state:
                assert "МТТ: 2 предупреждения" in page.inner_text("header.topbar")
            page.screenshot(
                path=str(artifacts / f"layout-menu-{role}{state and '-' + state}-{width}.png"),
                clip={"x": 0, "y": 0, "width": width, "height": 120},
            )
            boxes = page.evaluate(MENU_BOXES)
            texts = " | ".join(b["text"] for b in boxes)
            if role != "operator":
                assert "МТТ" in texts, (role, texts)  # the health badge is in the menu
            for box in boxes:
                if box["left"] < 0 or box["right"] > width:
                    problems.append(f"{role} @{width}: {box['text']!r} leaves the screen")
            for n, a in enumerate(boxes):
                for b in boxes[n + 1 :]:
                    if (
                        a["left"] < b["right"] - 1
                        and b["left"] < a["right"] - 1
                        and a["top"] < b["bottom"] - 1
                        and b["top"] < a["bottom"] - 1
                    ):
                        problems.append(f"{role} @{width}: {a['text']!r} overlaps {b['text']!r}")
            tops = [round(b["top"]) for b in boxes]
            # One row: the items' tops differ by their own heights' centring only (a link, a select).
            if width >= 1280 and not state and max(tops) - min(tops) > 12:
                problems.append(f"{role} {state} @{width}: the menu wraps ({texts})")
        context.close()
    assert problems == [], "\n".join(problems)


def _long_words_world(world: Any) -> dict[str, str]:
    """The layout world with what real people type and what MTT's calls end as: an operator with a double
    surname, a client with a long name and a company, a result whose name is a long phrase, a call missed,
    one not answered, one closed without notification, and a call with recordings that are not (yet) files."""
    from calls.models import Call, CallResult, Direction, Recording
    from contacts.services import contact_create

    now = timezone.now()
    operator = world.users["operator"]
    operator.first_name, operator.last_name = "Александра", "Константинопольская-Преображенская"
    operator.save()
    operator.user_permissions.add(Permission.objects.get(codename="listen_recording"))
    client = contact_create(
        name="Мария-Антуанетта Владиславовна Преображенская-Стрельцова",
        company="ООО «Научно-производственное объединение «Северо-Западные технологии автоматизации»»",
        numbers=["+74951234567"],
    )
    workplace = world.own_call.workplace
    for n, status in enumerate((Call.Status.MISSED, Call.Status.NOT_ANSWERED, Call.Status.UNFINISHED)):
        Call.objects.create(
            integration=world.integration,
            call_key=f"long-{n}",
            direction=Direction.INCOMING,
            status=status,
            client_number="+74951234567",
            contact=client,
            operator=operator,
            workplace=workplace,
            line_number="74996497803",
            started_at=now - timedelta(hours=n + 1),
            wait_seconds=35,
        )
    Call.objects.filter(pk=world.own_call.pk).update(
        contact=client,
        result=CallResult.objects.create(name="Требуется повторный звонок руководителю отдела закупок"),
    )
    for n, status in enumerate((Recording.Status.FAILED, Recording.Status.PENDING, Recording.Status.EXPIRED)):
        Recording.objects.create(
            integration=world.integration,
            call=world.own_call,
            leg_call_id=f"own-call~{n}o",
            source_url=f"https://records.mtt.ru/long-{n}.mp3",
            storage_key=f"long/{n}.mp3",
            mtt_expires_at=now + timedelta(days=90),
            status=status,
        )
    return {"log": "/calls/?period=all", "contact": f"/contacts/{client.pk}/"}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("where", ["log", "contact"])
def test_call_tables_fit_with_long_names_results_and_every_status(
    live_server: Any, chromium: Any, artifacts: Path, world: Any, where: str, width: int
) -> None:
    """A surname like Константинопольская-Преображенская under "Оператор", a company in «» under "Клиент",
    a result named by a phrase and the longest status words pushed the call log and a contact's calls
    209 px past a 1024 px screen: a long word in what people type now breaks inside its cell. A call's
    recordings that are no file yet read one status a line ("Ошибка", "Ожидает загрузки"), never run
    together ("ОшибкаОжидает загрузки")."""
    paths = _long_words_world(world)
    context = chromium.new_context(locale="ru-RU")
    page = context.new_page()
    page.set_default_timeout(15_000)
    log_in_as(page, live_server.url, world.users["operator"].username)
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(live_server.url + paths[where])
    page.screenshot(path=str(artifacts / f"layout-long-words-{where}-{width}.png"), full_page=True)
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll <= inner, f"{paths[where]} @{width}: page is {scroll}px wide"
    statuses = page.locator(f"main tr:has(a[href='/calls/{world.own_call.pk}/']) td.recording").inner_text()
    assert statuses.split("\n") == ["Ошибка", "Ожидает загрузки", "Удалена в МТТ"]
    context.close()


# The page's controls the reminders of due tasks cover (the fixed desk that holds them: whatever scrolls past
# its column is covered at some scroll position), as CONTROLS_UNDER_DESK for the cards.
CONTROLS_UNDER_REMINDERS = """
() => {
  const reminders = document.getElementById('desk-reminders');
  if (!reminders || reminders.hidden) return {shown: false, covered: []};
  const d = reminders.closest('.desk').getBoundingClientRect();
  const covered = [];
  for (const node of document.querySelectorAll('main a, main button, main input, main select, main textarea, main th, main td, main dd, main li')) {
    const r = node.getBoundingClientRect();
    if (!r.width || !r.height) continue;
    let left = r.left, right = r.right;
    for (let box = node.parentElement; box && box !== document.body; box = box.parentElement) {
      if (getComputedStyle(box).overflowX !== 'visible') {
        const b = box.getBoundingClientRect();
        left = Math.max(left, b.left); right = Math.min(right, b.right);
      }
    }
    if (right > d.left + 1 && left < d.right - 1) covered.push((node.textContent || node.tagName).trim().slice(0, 30));
  }
  return {shown: true, covered};
}
"""


@pytest.mark.parametrize("width", WIDTHS)
def test_the_reminders_of_due_tasks_never_cover_the_page(
    live_server: Any, chromium: Any, artifacts: Path, world: Any, width: int
) -> None:
    """An operator with a task come due and no call to wrap up: the reminders floated over the page's
    bottom right corner and covered the call log's last columns ("Подвести итог"), a contact's calls and the
    workspace's recent calls until "Скрыть". The desk now docks for them as it does for call cards: the
    page makes room, and hiding the reminders gives the room back."""
    operator = world.users["operator"]
    context = chromium.new_context(locale="ru-RU")
    page = context.new_page()
    page.set_default_timeout(15_000)
    log_in_as(page, live_server.url, operator.username)
    page.set_viewport_size({"width": width, "height": 768})
    problems: list[str] = []
    paths = ["/", "/calls/?period=all", f"/contacts/{world.contact.pk}/", "/tasks/", "/calls/callbacks/"]
    for path in paths:
        page.goto(live_server.url + path)
        # No live socket under live_server: the page's resync on becoming visible brings the reminders.
        page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
        page.wait_for_selector("#desk-reminders:not([hidden]) .reminder")
        slug = path.split("?")[0].strip("/").replace("/", "-") or "home"
        page.screenshot(path=str(artifacts / f"layout-reminders-{slug}-{width}.png"))
        found = page.evaluate(CONTROLS_UNDER_REMINDERS)
        if found["covered"]:
            problems.append(f"{path} @{width}: the reminders cover {found['covered'][:5]}")
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        if scroll > inner:
            problems.append(f"{path} @{width}: page is {scroll}px wide with the reminders")
    # "Скрыть" puts them away and the page takes its room back.
    page.locator("#desk-reminders button.hide-reminders").click()
    assert page.locator("#desk-reminders").is_hidden()
    assert not page.evaluate("document.body.classList.contains('desk-docked')")
    context.close()
    assert problems == [], "\n".join(problems)

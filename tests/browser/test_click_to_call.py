"""A real browser: an operator opens a contact, clicks the number, MTT (the sandbox) gets makeCall."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError

from sandbox.testing import running_sandbox

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WP1 = "883140000000001"


def test_operator_clicks_a_number_and_their_phone_rings(
    live_server: Any, page: Any, artifacts: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from django.contrib.auth import get_user_model

    from calls.models import Call
    from contacts.models import Contact
    from contacts.services import contact_add_number
    from integrations.applier import applier_drain
    from integrations.models import Workplace
    from tests.mtt_sandbox import connect

    settings.MTT_RATE_LIMIT_KEY_PREFIX = f"test-browser:{uuid.uuid4().hex}:"
    with running_sandbox(step_delay=0.05, auto_click_to_call=False) as sandbox:
        mtt = connect(sandbox, django_capture_on_commit_callbacks)
        user = get_user_model().objects.create_user(
            "ivanova", password="demo-pass-123", first_name="Мария", last_name="Иванова"
        )
        Workplace.objects.filter(integration=mtt, sip_id=WP1).update(user=user)
        contact = Contact.objects.create(name="Пётр Клиентов", company="ООО Ромашка")
        contact_add_number(contact=contact, number="+79219462761")

        page.goto(f"{live_server.url}/accounts/login/?next=/contacts/{contact.pk}/")
        page.fill("input[name=username]", "ivanova")
        page.fill("input[name=password]", "demo-pass-123")
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/contacts/{contact.pk}/")

        number = page.locator('.phone[data-e164="+79219462761"]')
        assert number.get_attribute("role") == "button"  # the script made it a call button
        number.click()
        notice = page.locator("#c2c-notice")
        notice.filter(has_text="Пётр Клиентов").wait_for()
        assert notice.is_visible()
        text = notice.inner_text()
        assert "Пётр Клиентов" in text and ("ringing" in text.lower() or "звонит" in text.lower())
        page.screenshot(path=str(artifacts / "click_to_call.png"))

        [request] = [r for r in sandbox.control("GET", "requests") if r["path"] == "/makeCall"]
        assert request["json"] == {"params": {"callerId": WP1, "calleid": "79219462761"}}

        # From here on it is an ordinary outgoing call: the PBX's notifications fill the same row.
        sandbox.control(
            "POST",
            "scenario",
            {
                "scenario": "click_to_call",
                "caller": "79219462761",
                "workplace": WP1,
                "call_id": sandbox.state.calls[0]["call_id"],
                "notify_url": live_server.url + mtt.notify_path,
            },
        )
        time.sleep(1.0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                applier_drain()  # what the applier process does with the stored notifications
                calls = list(Call.objects.all())
            except OperationalError:  # SQLite: another writer holds the database for a moment
                calls = []
            if len(calls) == 1 and calls[0].answered_at is not None:
                break
            time.sleep(0.5)
        [call] = calls
        assert call.call_key == sandbox.state.calls[0]["call_id"]
        assert call.initiated_by_id == user.pk and call.operator_id == user.pk
        assert call.answered_at is not None and call.contact_id == contact.pk


def test_call_back_on_a_missed_call_card_rings_the_operators_phone(
    live_server: Any, page: Any, artifacts: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from calls.models import Call, CallbackTask, CallLeg, Direction
    from contacts.models import Contact
    from contacts.services import contact_add_number
    from integrations.models import Workplace
    from tests.mtt_sandbox import connect

    settings.MTT_RATE_LIMIT_KEY_PREFIX = f"test-browser:{uuid.uuid4().hex}:"
    with running_sandbox(step_delay=0.05, auto_click_to_call=False) as sandbox:
        mtt = connect(sandbox, django_capture_on_commit_callbacks)
        user = get_user_model().objects.create_user("ivanova", password="demo-pass-123")
        workplace = Workplace.objects.get(integration=mtt, sip_id=WP1)
        Workplace.objects.filter(pk=workplace.pk).update(user=user)
        contact = Contact.objects.create(name="Пётр Клиентов")
        contact_add_number(contact=contact, number="+79219462761")
        # A call that rang her workplace a minute ago and nobody answered: the desk's red notice.
        now = timezone.now()
        call = Call.objects.create(
            integration=mtt,
            call_key="missed-1",
            direction=Direction.INCOMING,
            status=Call.Status.MISSED,
            client_number="+79219462761",
            contact=contact,
            started_at=now,
            ended_at=now,
        )
        CallLeg.objects.create(
            call=call,
            integration=mtt,
            leg_id="missed-1~1o",
            workplace=workplace,
            direction=Direction.INCOMING,
        )
        CallbackTask.objects.create(
            client_number="+79219462761",
            contact=contact,
            missed_count=1,
            first_missed_at=now,
            last_missed_at=now,
        )

        page.goto(f"{live_server.url}/accounts/login/?next=/calls/callbacks/")
        page.fill("input[name=username]", "ivanova")
        page.fill("input[name=password]", "demo-pass-123")
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/calls/callbacks/")
        # No live socket under live_server: the resync on becoming visible brings the notice.
        page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
        card = page.locator(".desk .call-card.phase-missed")
        button = card.get_by_role("button", name="Перезвонить")
        button.click()
        notice = page.locator("#c2c-notice")
        notice.filter(has_text="Пётр Клиентов").wait_for()
        assert page.url == f"{live_server.url}/calls/callbacks/"  # no navigation: the call is placed
        page.screenshot(path=str(artifacts / "desk-missed-call-back.png"))
        [request] = [r for r in sandbox.control("GET", "requests") if r["path"] == "/makeCall"]
        assert request["json"] == {"params": {"callerId": WP1, "calleid": "79219462761"}}

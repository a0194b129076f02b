"""A call's times (start, answer, end, wait, talk) from MTT's notifications, through the production path (the
notification stored as the notify URL stores it, at its arrival time, then the applier), and as the call's
page shows them in Russian. The rule when MTT's figures disagree with the arrival times: README, "Calls"."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from calls.models import Call
from integrations.applier import applier_drain
from integrations.inbox import notification_store
from integrations.models import Integration
from integrations.mtt.notifications import parse_body
from tests.calls import payloads as p
from tests.calls.apply_helpers import only_call

pytestmark = pytest.mark.django_db

MSK = ZoneInfo("Europe/Moscow")
BASE = "0f5c3f6e2b9d4a1c8e7f6a5b4c3d2e1f_00015ED635780FC7"


def msk(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=MSK)


def deliver(integration: Integration, sequence: list[tuple[str, dict[str, Any]]]) -> None:
    """Each body stored as arriving at its time (Moscow), in this order, then applied by the applier."""
    for arrived, body in sequence:
        envelope = parse_body(json.dumps(body, ensure_ascii=False).encode())
        notification_store(integration_id=integration.pk, envelope=envelope, received_at=msk(arrived))
    applier_drain()


def page_facts(client: Client, call: Call) -> dict[str, str]:
    """The call page's facts as a Russian reader sees them: label → value."""
    response = client.get(reverse("calls:detail", args=[call.pk]), HTTP_ACCEPT_LANGUAGE="ru")
    assert response.status_code == 200
    html = response.content.decode()
    pairs = re.findall(r"<dt>([^<]+)</dt><dd>([^<]*)</dd>", html)
    return {label.strip(): value.strip() for label, value in pairs}


def incoming(start: str, connected: str, *, line_talk: int, talk: int) -> list[dict[str, Any]]:
    """The sandbox's incoming_answered, as it sent it: startTime on all but finished (Moscow, no zone)."""
    line_leg, staff_leg = f"{BASE}~1o", f"{BASE}~2o"
    inc: dict[str, Any] = {"type": "incoming", "caller": p.client_party()}
    return [
        p.note(line_leg, "trying", callee=p.line_party(), tag="l.o", start=start, **inc),
        p.note(staff_leg, "trying", callee=p.workplace_party(), tag="s.o", start=start, **inc),
        p.note(staff_leg, "showing", callee=p.workplace_party(), tag="s.o", start=start, **inc),
        p.note(staff_leg, "connected", callee=p.workplace_party(), tag="s.o", start=connected, **inc),
        p.note(line_leg, "finished", callee=p.line_party(), tag="l.o", duration=line_talk, **inc),
        p.note(staff_leg, "finished", callee=p.workplace_party(), tag="s.o", duration=talk,
               reason="Answer leg disconnected", **inc),
    ]  # fmt: skip


def test_a_duration_longer_than_the_call_lasted_is_bounded_by_what_arrived(
    client: Client, integration: Integration, directory: dict[str, Any]
) -> None:
    """The report: notifications from 16:04:34 to 16:04:36, answered at once, yet finished says 90 s. The page
    showed "Начало 16:03", "Окончание 16:06", "Ожидание 1:29", "Разговор 1:30"."""
    notes = incoming("2026-12-04 16:04:34", "2026-12-04 16:04:34", line_talk=90, talk=90)
    arrivals = ["16:04:34.1", "16:04:34.4", "16:04:34.7", "16:04:35.0", "16:04:36.3", "16:04:36.6"]
    deliver(integration, [(f"2026-12-04 {at}", body) for at, body in zip(arrivals, notes, strict=True)])
    call = only_call()
    assert call.status == Call.Status.ANSWERED
    assert call.started_at == msk("2026-12-04 16:04:34")
    assert call.answered_at == msk("2026-12-04 16:04:34")
    # The staff leg's finished arrived 2.6 s after the answer: the talk cannot have been longer.
    assert call.talk_seconds == 2
    assert call.ended_at == msk("2026-12-04 16:04:36")
    assert call.wait_seconds == 0
    client.force_login(directory["ivanova"])
    facts = page_facts(client, call)
    assert facts["Начало"] == "04.12.2026 16:04"
    assert facts["Отвечен"] == "04.12.2026 16:04"
    assert facts["Окончание"] == "04.12.2026 16:04"
    assert facts["Ожидание"] == "0:00"
    assert facts["Разговор"] == "0:02"
    # The supervisor's report repeated it ("Среднее ожидание 1:29").
    boss = get_user_model().objects.create_user("boss", password="x-pass-123")
    boss.user_permissions.add(
        Permission.objects.get(codename="view_reports", content_type__app_label="calls")
    )
    client.force_login(boss)
    period = {"period": "custom", "date_from": "2026-12-04", "date_to": "2026-12-04"}
    response = client.get(reverse("calls:reports"), period, HTTP_ACCEPT_LANGUAGE="ru")
    assert response.status_code == 200
    kpis = dict(re.findall(r"<div><dt>([^<]+)</dt><dd[^>]*>([^<]*)</dd></div>", response.content.decode()))
    assert kpis["Среднее ожидание"] == "0:00"
    assert kpis["Общее время разговоров"] == "0:02"


def test_mtts_duration_stands_when_the_history_allows_it(
    client: Client, integration: Integration, directory: dict[str, Any]
) -> None:
    """Real MTT: ringing 9 s, a 42 s talk, the finished arriving a second after it ended: MTT's figures as
    they are (the line leg's duration, the whole call, moves nothing)."""
    notes = incoming("2026-12-04 11:18:16", "2026-12-04 11:18:25", line_talk=51, talk=42)
    arrivals = ["11:18:16.2", "11:18:16.5", "11:18:16.8", "11:18:25.3", "11:19:08.1", "11:19:08.4"]
    deliver(integration, [(f"2026-12-04 {at}", body) for at, body in zip(arrivals, notes, strict=True)])
    call = only_call()
    assert (call.wait_seconds, call.talk_seconds) == (9, 42)
    assert call.started_at == msk("2026-12-04 11:18:16")
    assert call.ended_at == msk("2026-12-04 11:19:07")
    client.force_login(directory["ivanova"])
    facts = page_facts(client, call)
    assert (facts["Начало"], facts["Окончание"]) == ("04.12.2026 11:18", "04.12.2026 11:19")
    assert (facts["Ожидание"], facts["Разговор"]) == ("0:09", "0:42")


def test_mtts_duration_stands_when_it_exceeds_what_we_measured_by_a_second(
    integration: Integration, directory: dict[str, Any]
) -> None:
    """MTT's startTime in whole seconds, on its own clock: its connected says 11:18:26 while ours read
    11:18:25.4, and the 35 s talk's finished arrives 34.6 s after that startTime. An honest figure a second
    over what we measured stands (TALK_SLACK_SECONDS): trimming it would make every such talk a second short."""
    notes = incoming("2026-12-04 11:18:16", "2026-12-04 11:18:26", line_talk=45, talk=35)
    arrivals = ["11:18:16.2", "11:18:16.5", "11:18:16.8", "11:18:25.4", "11:19:00.6", "11:19:00.6"]
    deliver(integration, [(f"2026-12-04 {at}", body) for at, body in zip(arrivals, notes, strict=True)])
    call = only_call()
    assert call.talk_seconds == 35
    assert call.ended_at == msk("2026-12-04 11:19:01")


def test_a_click_to_call_waits_from_its_first_notification_not_from_the_duration(
    integration: Integration, directory: dict[str, Any]
) -> None:
    """The report's click-to-call: placed, answered and hung up within seconds, finished saying 34 s — the
    wait was "0:33". The wait counts from the call's first notification."""
    notes = p.outgoing(answered=True)
    # The sandbox's plan: trying, showing, connected (its own startTime), hiding, finished.
    for body, start in zip(notes, ["16:10:00", "16:10:00", "16:10:01", "16:10:00"], strict=False):
        body["result"]["callInfo"]["startTime"] = f"2026-12-04 {start}"
    notes[-1]["result"]["callInfo"]["duration"] = 34
    arrivals = ["16:10:00.1", "16:10:00.4", "16:10:01.2", "16:10:01.5", "16:10:02.4"]
    deliver(integration, [(f"2026-12-04 {at}", body) for at, body in zip(arrivals, notes, strict=True)])
    call = only_call()
    assert call.started_at == msk("2026-12-04 16:10:00")
    assert call.wait_seconds == 1
    assert call.talk_seconds == 1
    assert call.ended_at == msk("2026-12-04 16:10:02")


def test_the_end_is_never_before_the_start_when_the_pbx_clock_runs_ahead(
    integration: Integration, directory: dict[str, Any]
) -> None:
    """A missed call whose startTimes run ahead of our clock (or name another zone): the finished's arrival
    comes 'before' the call began. The call ends when it began, not earlier."""
    notes = p.incoming_missed(base=BASE)
    for body in notes[:4]:
        body["result"]["callInfo"]["startTime"] = "2026-12-04 16:20:00"
    arrivals = ["16:19:00.1", "16:19:00.3", "16:19:00.5", "16:19:10.0", "16:19:10.2", "16:19:10.4"]
    deliver(integration, [(f"2026-12-04 {at}", body) for at, body in zip(arrivals, notes, strict=True)])
    call = only_call()
    assert call.status == Call.Status.MISSED
    assert call.started_at == msk("2026-12-04 16:20:00")
    assert call.ended_at == call.started_at
    assert call.wait_seconds == 0


def test_a_call_seen_only_through_its_finished_starts_duration_before_it(
    integration: Integration, directory: dict[str, Any]
) -> None:
    """Guide §6.1: only finished came (its duration the talk): the call is placed before its arrival."""
    body = p.note(f"{BASE}~2o", "finished", type="incoming", caller=p.client_party(),
                  callee=p.workplace_party(), duration=4, reason="Answer leg disconnected")  # fmt: skip
    deliver(integration, [("2026-12-04 12:00:10.5", body)])
    call = only_call()
    assert call.status == Call.Status.ANSWERED
    assert call.talk_seconds == 4
    assert call.answered_at == call.started_at
    assert call.ended_at == msk("2026-12-04 12:00:10.5")
    assert call.started_at == msk("2026-12-04 12:00:06.5")

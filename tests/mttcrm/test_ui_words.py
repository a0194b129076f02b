"""The UI's words (issue 16): MTT's raw values in Russian words on the pages (raw ones stay in the admin
and the exports), the directory sync's summary with Russian plural forms, and the admin's headings in a
grammatical form whatever the model's gender."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils import translation

from calls.models import Call, CallEvent, CallLeg
from calls.words import end_reason_words, leg_state_words
from integrations.models import NotificationEvent
from integrations.services import SyncResult
from tests.personas import World, build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(integration: Any) -> World:
    return build_world(integration)


@pytest.mark.parametrize(
    ("reason", "code", "words"),
    [
        ("Answer leg disconnected", "", "вызываемая сторона положила трубку"),
        ("Originate leg disconnected", "", "звонящий положил трубку"),
        ("No answer", "19", "никто не ответил"),
        ("", "17", "занято"),
        ("Something new", "", "другая причина"),
        ("", "", ""),
    ],
)
def test_end_reasons_in_words(reason: str, code: str, words: str) -> None:
    with translation.override("ru"):
        assert end_reason_words(reason, code) == words


def test_leg_states_in_words() -> None:
    with translation.override("ru"):
        assert [leg_state_words(s) for s in ("trying", "showing", "connected", "hiding", "finished", "x")] == [
            "вызов", "звонит телефон", "разговор", "звонок прекращён", "звонок окончен", "другое событие",
        ]  # fmt: skip


def test_the_call_page_shows_words_not_mtt_values(world: World) -> None:
    call = world.own_call
    Call.objects.filter(pk=call.pk).update(end_reason="Answer leg disconnected")
    leg = CallLeg.objects.get(call=call)
    event = NotificationEvent.objects.create(integration=world.integration, body={}, fingerprint="k1")
    CallEvent.objects.create(call=call, leg=leg, notification=event, state="showing",
                             occurred_at=call.started_at, received_at=call.started_at)  # fmt: skip
    client = Client()
    client.force_login(world.users["operator"])
    page = client.get(f"/calls/{call.pk}/").content.decode()
    assert "вызываемая сторона положила трубку" in page and "Answer leg disconnected" not in page
    assert "звонит" in page and leg.leg_id not in page and ">showing<" not in page


def test_sync_summary_in_russian_plurals() -> None:
    with translation.override("ru"):
        text = SyncResult(workplaces=3, terminals=4, numbers=5, deactivated=1).for_people()
    assert text == "3 рабочих места, 4 терминала, 5 номеров, 1 отключено"
    assert str(SyncResult(workplaces=3, terminals=4)) == "3 workplaces, 4 terminals, 0 numbers, 0 deactivated"


def test_admin_headings_are_grammatical(world: World) -> None:
    client = Client()
    client.force_login(world.users["admin"])
    page = client.get("/admin/integrations/integration/").content.decode()
    assert "Выберите для изменения: интеграция" in page or "Выберите для изменения: Интеграция" in page
    assert "Выберите интеграция" not in page

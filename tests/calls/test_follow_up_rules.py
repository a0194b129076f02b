"""A wrap-up's follow-up task needs words saying what to do and a due time that has not passed
(calls/wrapup.py: call_wrap_up, follow_up_passed). A user saved a task with no text due yesterday: the page
said "Итог звонка сохранён." and the task went straight to "Пора выполнить". Now the call's page, the desk's
card (the same URL, JSON) and the API refuse it with the reason on the field, save nothing, and the page keeps
everything typed. "Passed" is read in TIME_ZONE, with FOLLOW_UP_GRACE for a form slow to send.

The clock is fixed (django.utils.timezone.now) at 03.12.2026 10:07:30 in Moscow: nothing here depends on when
the tests run or how fast."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone, translation

from calls.models import Call, CallResult, FollowUpTask
from calls.wrapup import FOLLOW_UP_GRACE, call_wrap_up, follow_up_passed
from tests.api.tokens import token_client
from tests.personas import World, build_world

pytestmark = pytest.mark.django_db

MOSCOW = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 12, 3, 10, 7, 30, tzinfo=MOSCOW)
PASSED_RU = "Срок 03.12.2026 10:01 уже прошёл (сейчас 03.12.2026 10:07). Укажите время позже."
NO_WORDS_RU = "Напишите, что сделать."


@pytest.fixture
def world(integration: Any, settings: Any, monkeypatch: pytest.MonkeyPatch) -> World:
    settings.TIME_ZONE = "Europe/Moscow"
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    return build_world(integration)


def _client(world: World) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="ru")
    client.force_login(world.users["operator"])
    return client


def _nothing_saved(world: World) -> None:
    assert Call.objects.get(pk=world.own_call.pk).wrapped_up_at is None
    assert not FollowUpTask.objects.exists()


@pytest.mark.parametrize(
    ("due", "passed"),
    [
        (datetime(2026, 12, 3, 10, 7, 30, tzinfo=MOSCOW), False),  # now
        (datetime(2026, 12, 3, 10, 2, tzinfo=MOSCOW), False),  # the current minute less the grace
        (datetime(2026, 12, 3, 10, 1, 59, tzinfo=MOSCOW), True),
        (datetime(2026, 12, 3, 7, 2, tzinfo=UTC), False),  # 10:02 in Moscow, written in UTC
        (datetime(2026, 12, 3, 7, 1, tzinfo=UTC), True),
        (datetime(2026, 12, 2, 10, 7, tzinfo=MOSCOW), True),  # yesterday
        (datetime(2027, 12, 3, 10, 7, tzinfo=MOSCOW), False),
    ],
)
def test_what_has_passed(settings: Any, due: datetime, passed: bool) -> None:
    settings.TIME_ZONE = "Europe/Moscow"
    assert FOLLOW_UP_GRACE.total_seconds() == 5 * 60  # the rows below are written for it
    assert bool(follow_up_passed(due, now=NOW)) is passed


def test_the_service_refuses_a_task_without_words_or_passed_and_a_note_without_a_time(world: World) -> None:
    operator = world.users["operator"]
    cases: list[tuple[dict[str, Any], dict[str, list[str]]]] = [
        ({"follow_up_at": NOW + timedelta(days=1), "follow_up_note": "  "}, {"follow_up_note": [NO_WORDS_RU]}),
        ({"follow_up_at": NOW - timedelta(minutes=6, seconds=30), "follow_up_note": "Позвонить"}, {"follow_up_at": [PASSED_RU]}),
        ({"follow_up_at": None, "follow_up_note": "Позвонить"}, {"follow_up_at": ["Укажите срок задачи."]}),
    ]  # fmt: skip
    with translation.override("ru"):
        for given, errors in cases:
            with pytest.raises(ValidationError) as caught:
                call_wrap_up(call=world.own_call, user=operator, result=None, comment="Итог", **given)
            assert caught.value.message_dict == errors
    _nothing_saved(world)


def test_the_calls_page_refuses_and_keeps_what_was_typed(world: World) -> None:
    result = CallResult.objects.get(name="Перезвонить")
    typed = {
        "result": str(result.pk),
        "comment": "Клиент просил перезвонить",
        "follow_up_at": "2026-12-03T10:01",
        "follow_up_for": str(world.other_operator.pk),
        "follow_up_note": "",
    }
    response = _client(world).post(f"/calls/{world.own_call.pk}/wrap-up/", typed)
    assert response.status_code == 400
    form = response.context["wrap_form"]
    assert form.errors == {"follow_up_at": [PASSED_RU], "follow_up_note": [NO_WORDS_RU]}
    html = response.content.decode()
    assert f'<p class="error">{PASSED_RU}</p>' in html and f'<p class="error">{NO_WORDS_RU}</p>' in html
    assert "Итог звонка сохранён" not in html
    # What was typed is on the form again, to correct.
    assert 'value="2026-12-03T10:01"' in html
    assert "Клиент просил перезвонить</textarea>" in html
    assert f'<option value="{result.pk}" selected>' in html
    assert f'<option value="{world.other_operator.pk}" selected>' in html
    _nothing_saved(world)


def test_the_calls_page_saves_a_task_due_within_the_grace(world: World) -> None:
    client = _client(world)
    answer = client.post(
        f"/calls/{world.own_call.pk}/wrap-up/",
        {"comment": "x", "follow_up_at": "2026-12-03T10:02", "follow_up_note": " Отправить КП "},
    )
    assert answer.status_code == 302
    task = FollowUpTask.objects.get()
    assert (task.due_at, task.note) == (datetime(2026, 12, 3, 10, 2, tzinfo=MOSCOW), "Отправить КП")


def test_the_page_reads_the_time_in_time_zone(world: World, settings: Any) -> None:
    # 10:05 in Yekaterinburg (UTC+5) is 08:05 in Moscow: two hours ago, whatever the server's clock zone.
    settings.TIME_ZONE = "Asia/Yekaterinburg"
    url = f"/calls/{world.own_call.pk}/wrap-up/"
    response = _client(world).post(
        url, {"comment": "x", "follow_up_at": "2026-12-03T10:05", "follow_up_note": "n"}
    )
    assert response.status_code == 400
    assert response.context["wrap_form"].errors == {
        "follow_up_at": ["Срок 03.12.2026 10:05 уже прошёл (сейчас 03.12.2026 12:07). Укажите время позже."]
    }
    assert (
        _client(world)
        .post(url, {"comment": "x", "follow_up_at": "2026-12-03T12:05", "follow_up_note": "n"})
        .status_code
        == 302
    )


def test_the_desk_card_gets_the_errors_per_field(world: World) -> None:
    url = f"/calls/{world.own_call.pk}/wrap-up/"
    client = _client(world)
    typed = {"comment": "x", "follow_up_at": "2026-12-02T10:00", "follow_up_for": "", "follow_up_note": ""}
    answer = client.post(url, typed, HTTP_ACCEPT="application/json")
    assert answer.status_code == 400
    errors = answer.json()["errors"]
    assert errors["follow_up_note"] == [NO_WORDS_RU]
    assert errors["follow_up_at"] == [
        "Срок 02.12.2026 10:00 уже прошёл (сейчас 03.12.2026 10:07). Укажите время позже."
    ]
    _nothing_saved(world)
    # A note without a time (the card sends the note whatever the time field holds) is not dropped silently.
    answer = client.post(
        url, {**typed, "follow_up_at": "", "follow_up_note": "Позвонить"}, HTTP_ACCEPT="application/json"
    )
    assert answer.status_code == 400 and answer.json()["errors"] == {"follow_up_at": ["Укажите срок задачи."]}
    _nothing_saved(world)
    # Corrected, it is saved.
    fixed = {**typed, "follow_up_at": "2026-12-04T10:00", "follow_up_note": "Позвонить"}
    assert client.post(url, fixed, HTTP_ACCEPT="application/json").status_code == 200
    assert FollowUpTask.objects.get().note == "Позвонить"


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"follow_up_at": "2026-12-03T07:01:00Z", "follow_up_note": "n"}, {"follow_up_at"}),
        ({"follow_up_at": "2026-12-03T10:05:00+05:00", "follow_up_note": "n"}, {"follow_up_at"}),  # 08:05 MSK
        ({"follow_up_at": "2026-12-04T10:00:00+03:00"}, {"follow_up_note"}),
        ({"follow_up_at": "2026-12-04T10:00:00+03:00", "follow_up_note": "   "}, {"follow_up_note"}),
        ({"follow_up_note": "Позвонить"}, {"follow_up_at"}),
    ],
)
def test_the_api_refuses_the_same(world: World, body: dict[str, str], errors: set[str]) -> None:
    api = token_client(world.users["operator"])
    response = api.post(
        f"/api/v1/calls/{world.own_call.pk}/wrap-up/", {"comment": "x", **body}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()) == errors
    _nothing_saved(world)


def test_the_api_saves_a_task_due_within_the_grace(world: World) -> None:
    api = token_client(world.users["operator"])
    body = {"comment": "x", "follow_up_at": "2026-12-03T07:02:00Z", "follow_up_note": "Отправить КП"}
    assert api.post(f"/api/v1/calls/{world.own_call.pk}/wrap-up/", body, format="json").status_code == 200
    assert FollowUpTask.objects.get().due_at == datetime(2026, 12, 3, 10, 2, tzinfo=MOSCOW)

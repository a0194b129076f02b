"""The missed-call callback queue: opening, merging repeated misses, closing itself, the page and the badge."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import translation

from calls.callbacks import callback_open_count_for_user, callback_register_miss
from calls.models import Call, CallbackTask
from contacts.models import Contact
from contacts.services import contact_add_number
from tests.calls import payloads
from tests.concurrency import at_once

CLIENT = "79219462761"  # as the PBX sends it; stored as +79219462761
E164 = "+79219462761"


@pytest.fixture(autouse=True)
def _english(settings: Any) -> Iterator[None]:
    # The assertions read the English source strings, whatever the catalogue translates them to.
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


def at(notes: list[dict[str, Any]], start: str) -> list[dict[str, Any]]:
    """The same call, started at another time (every startTime moved by the same offset)."""
    moved = copy.deepcopy(notes)
    first = datetime.strptime(moved[0]["result"]["callInfo"]["startTime"], "%Y-%m-%d %H:%M:%S")
    offset = datetime.strptime(start, "%Y-%m-%d %H:%M:%S") - first
    for body in moved:
        info = body["result"]["callInfo"]
        if "startTime" in info:
            when = datetime.strptime(info["startTime"], "%Y-%m-%d %H:%M:%S") + offset
            info["startTime"] = when.strftime("%Y-%m-%d %H:%M:%S")
    return moved


def play(notify: Callable[[dict[str, Any]], Any], notes: list[dict[str, Any]]) -> None:
    for body in notes:
        notify(body)


def missed(base: str, start: str) -> list[dict[str, Any]]:
    return at(payloads.incoming_missed(base=base, client=CLIENT), start)


def test_a_missed_call_opens_a_task_for_the_number(directory: dict[str, Any], notify: Any) -> None:
    play(notify, missed("miss1", "2020-06-02 11:00:00"))
    task = CallbackTask.objects.get()
    call = Call.objects.get()
    assert call.status == Call.Status.MISSED
    assert task.client_number == E164 and task.is_open
    assert task.missed_count == 1
    assert list(task.missed_calls.all()) == [call]
    assert task.first_missed_at == task.last_missed_at == call.started_at
    assert task.assignee is None  # the auto-created contact has no manager
    assert task.contact == call.contact


def test_repeated_misses_extend_one_task_and_duplicates_count_once(
    directory: dict[str, Any], notify: Any
) -> None:
    first, second = missed("miss1", "2020-06-02 11:00:00"), missed("miss2", "2020-06-02 11:30:00")
    play(notify, first)
    play(notify, second)
    # A copy of a finished notification (the mobile app doubles them, §6.5) changes nothing.
    doubled = copy.deepcopy(second[-1])
    doubled["result"]["callInfo"]["reason"] = "No answer (copy)"
    notify(doubled)

    task = CallbackTask.objects.get()
    calls = list(Call.objects.order_by("started_at"))
    assert task.missed_count == 2
    assert set(task.missed_calls.all()) == set(calls)
    assert task.first_missed_at == calls[0].started_at
    assert task.last_missed_at == calls[1].started_at


def test_the_task_is_assigned_to_the_personal_manager(directory: dict[str, Any], notify: Any) -> None:
    contact = Contact.objects.create(name="Пётр Клиентов", personal_manager=directory["petrov"])
    contact_add_number(contact=contact, number=E164)
    play(notify, missed("miss1", "2020-06-02 11:00:00"))
    task = CallbackTask.objects.get()
    assert task.assignee == directory["petrov"] and task.contact == contact


def test_a_later_incoming_call_that_connects_closes_the_task(directory: dict[str, Any], notify: Any) -> None:
    play(notify, missed("miss1", "2020-06-02 11:00:00"))
    play(notify, at(payloads.incoming_answered(base="back1", client=CLIENT), "2020-06-02 12:00:00"))
    task = CallbackTask.objects.get()
    answered = Call.objects.get(call_key="back1")
    assert not task.is_open
    assert task.closed_at == answered.answered_at
    assert task.closed_by == directory["ivanova"]  # who took the call
    assert task.closed_call == answered
    # A new miss afterwards opens a new task; the closed one stays as history.
    play(notify, missed("miss2", "2020-06-02 13:00:00"))
    assert CallbackTask.objects.filter(closed_at__isnull=True).count() == 1
    assert CallbackTask.objects.count() == 2


def test_a_later_outgoing_call_that_connects_closes_the_task(directory: dict[str, Any], notify: Any) -> None:
    play(notify, missed("miss1", "2020-06-02 11:00:00"))
    play(notify, payloads.outgoing(answered=True))  # 2020-06-24, to +79219462761
    task = CallbackTask.objects.get()
    assert not task.is_open
    assert task.closed_by == directory["petrov"]


def test_an_outgoing_call_nobody_answered_leaves_the_task_open(
    directory: dict[str, Any], notify: Any
) -> None:
    play(notify, missed("miss1", "2020-06-02 11:00:00"))
    play(notify, payloads.outgoing(answered=False))
    assert CallbackTask.objects.get().is_open


def test_a_connected_call_older_than_the_last_miss_does_not_close_it(
    directory: dict[str, Any], notify: Any
) -> None:
    # Applied out of order: the miss at 12:00 arrives first, then the call answered at 11:00.
    play(notify, missed("miss1", "2020-06-02 12:00:00"))
    play(notify, at(payloads.incoming_answered(base="early", client=CLIENT), "2020-06-02 11:00:00"))
    assert CallbackTask.objects.get().is_open


def test_a_miss_older_than_a_connected_call_opens_nothing(directory: dict[str, Any], notify: Any) -> None:
    play(notify, at(payloads.incoming_answered(base="later", client=CLIENT), "2020-06-02 12:00:00"))
    play(notify, missed("miss1", "2020-06-02 11:00:00"))
    assert CallbackTask.objects.count() == 0


def test_a_call_counted_as_missed_that_turns_out_answered_leaves_the_task(
    directory: dict[str, Any], notify: Any
) -> None:
    notes = at(payloads.incoming_answered(base="late", client=CLIENT), "2020-06-02 11:00:00")
    connected = notes.pop(3)  # every leg finished before "connected" arrives
    assert connected["result"]["callInfo"]["state"] == "connected"
    # With zero talk time the finished legs alone look like a miss.
    for body in notes:
        if body["result"]["callInfo"]["state"] == "finished":
            body["result"]["callInfo"]["duration"] = 0
    play(notify, notes)
    assert Call.objects.get().status == Call.Status.MISSED
    assert CallbackTask.objects.get().missed_count == 1
    notify(connected)
    assert Call.objects.get().status == Call.Status.ANSWERED
    assert CallbackTask.objects.count() == 0


def test_one_open_task_per_number_is_a_database_rule(directory: dict[str, Any]) -> None:
    when = datetime(2020, 6, 2, 11, 0).astimezone()
    CallbackTask.objects.create(client_number=E164, first_missed_at=when, last_missed_at=when)
    with pytest.raises(IntegrityError), transaction.atomic():
        CallbackTask.objects.create(client_number=E164, first_missed_at=when, last_missed_at=when)


@pytest.mark.django_db(transaction=True)
def test_simultaneous_misses_from_one_number_meet_on_one_task(postgres_only: None, integration: Any) -> None:
    calls = [
        Call.objects.create(
            integration=integration,
            call_key=f"race{i}",
            direction="incoming",
            status=Call.Status.MISSED,
            client_number=E164,
            started_at=datetime(2020, 6, 2, 11, i).astimezone(),
        )
        for i in range(4)
    ]

    def miss(call: Call) -> Callable[[], Any]:
        def run() -> Any:
            with transaction.atomic():
                return callback_register_miss(call=call)

        return run

    at_once([miss(c) for c in calls])
    task = CallbackTask.objects.get()
    assert task.missed_count == 4
    assert task.first_missed_at == calls[0].started_at and task.last_missed_at == calls[3].started_at


# --- The page and the badge ----------------------------------------------------------------------------


def _task(number: str, assignee: Any, minute: int) -> CallbackTask:
    when = datetime(2020, 6, 2, 11, minute).astimezone()
    return CallbackTask.objects.create(
        client_number=number, assignee=assignee, missed_count=1, first_missed_at=when, last_missed_at=when
    )


def test_page_lists_mine_first_then_unassigned_with_call_buttons(
    directory: dict[str, Any], client: Client
) -> None:
    ivanova, petrov = directory["ivanova"], directory["petrov"]
    unassigned = _task("+79035550101", None, 30)
    mine = _task("+79035550102", ivanova, 10)
    _task("+79035550103", petrov, 50)  # someone else's
    client.force_login(ivanova)
    page = client.get(reverse("calls:callbacks")).content.decode()
    assert page.index(f'data-task="{mine.pk}"') < page.index(f'data-task="{unassigned.pk}"')
    assert "+79035550103" not in page
    assert '<span class="phone" data-e164="+79035550102">' in page
    assert "click_to_call.js" in page
    assert callback_open_count_for_user(user_id=ivanova.pk) == 2
    badge = client.get(reverse("calls:log")).content.decode()
    assert 'class="badge badge-count"' in badge and ">2</span>" in badge


def test_taking_an_unassigned_task(directory: dict[str, Any], client: Client) -> None:
    task = _task("+79035550101", None, 30)
    client.force_login(directory["ivanova"])
    response = client.post(reverse("calls:callback_take", args=[task.pk]))
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.assignee == directory["ivanova"]
    client.force_login(directory["petrov"])
    client.post(reverse("calls:callback_take", args=[task.pk]))
    task.refresh_from_db()
    assert task.assignee == directory["ivanova"]  # first click wins


def test_no_badge_when_nothing_to_call_back(db: Any, client: Client) -> None:
    client.force_login(get_user_model().objects.create_user("op", password="x-pass-123"))
    page = client.get(reverse("calls:log")).content.decode()
    assert "To call back" in page or "Перезвонить" in page
    # The badge is on the page for the desk's live count (static/js/live/desk.js), hidden at 0.
    assert re.search(r'data-badge="callbacks"[^>]* hidden>0</span>', page)

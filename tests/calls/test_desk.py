"""The operator's desk (issue 16): the wrap-up endpoint (the card's JSON and the call page's form), the
pending wrap-up cards of the resync, the tasks list and its "done", the desk's badge counts and
reminders, naming a contact made from a call in place (a missed call pushed as missed: test_realtime.py)."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from calls.models import Call, CallResult, FollowUpTask
from contacts.models import AccessSettings, Contact
from tests.personas import World, set_visibility

JSON = {"HTTP_ACCEPT": "application/json"}


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def sale() -> CallResult:
    return CallResult.objects.get(name="Продажа")


@pytest.mark.django_db
def test_the_card_saves_a_wrap_up_with_a_task_and_every_page_shows_it(world: World) -> None:
    operator, call = world.users["operator"], world.own_call
    client = client_for(operator)
    due = (timezone.localtime() + timedelta(days=1)).replace(second=0, microsecond=0)
    answer = client.post(
        f"/calls/{call.pk}/wrap-up/",
        {
            "result": sale().pk,
            "comment": "Выставить счёт",
            "follow_up_at": due.strftime("%Y-%m-%dT%H:%M"),
            "follow_up_for": world.other_operator.pk,
            "follow_up_note": "Отправить договор",
        },
        **JSON,
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["ok"] and body["call"]["result"] == "Продажа" and body["call"]["comment"] == "Выставить счёт"
    task = FollowUpTask.objects.get()
    assert (task.assignee, task.due_at, task.note, task.contact) == (
        world.other_operator,
        due,
        "Отправить договор",
        world.contact,
    )
    assert "Выставить счёт" in client.get(f"/calls/{call.pk}/").content.decode()
    assert "Выставить счёт" in client.get("/calls/", {"period": "all"}).content.decode()
    assert "Выставить счёт" in client.get(f"/contacts/{world.contact.pk}/").content.decode()
    tasks_page = client_for(world.other_operator).get("/tasks/").content.decode()
    assert "Отправить договор" in tasks_page
    export = b"".join(client.get("/calls/export.csv", {"period": "all"}).streaming_content).decode()
    rows = {row["call_id"]: row for row in csv.DictReader(io.StringIO(export[1:]))}
    assert (rows["own-call"]["result"], rows["own-call"]["comment"]) == ("Продажа", "Выставить счёт")


@pytest.mark.django_db
def test_a_refused_wrap_up_answers_per_field(world: World) -> None:
    client = client_for(world.users["operator"])
    answer = client.post(
        f"/calls/{world.own_call.pk}/wrap-up/", {"follow_up_for": world.other_operator.pk}, **JSON
    )
    assert answer.status_code == 400
    assert set(answer.json()["errors"]) == {"result", "follow_up_at"}
    page = client.post(f"/calls/{world.own_call.pk}/wrap-up/", {"result": "999999"})
    assert page.status_code == 400 and 'class="error"' in page.content.decode()
    assert Call.objects.get(pk=world.own_call.pk).wrapped_up_at is None


@pytest.mark.django_db
def test_wrap_up_json_for_anonymous_and_hidden_calls(world: World) -> None:
    assert Client().post(f"/calls/{world.own_call.pk}/wrap-up/", {"comment": "x"}, **JSON).status_code == 401
    set_visibility(AccessSettings.Visibility.TEAM)
    outsider = client_for(world.users["outsider"])
    assert outsider.post(f"/calls/{world.own_call.pk}/wrap-up/", {"comment": "x"}, **JSON).status_code == 404
    assert Call.objects.get(pk=world.own_call.pk).comment == ""


@pytest.mark.django_db
def test_the_call_page_form_saves_and_redirects(world: World) -> None:
    client = client_for(world.users["operator"])
    page = client.get(f"/calls/{world.own_call.pk}/").content.decode()
    assert 'id="wrap-up"' in page and "Продажа" in page
    answer = client.post(f"/calls/{world.own_call.pk}/wrap-up/", {"result": sale().pk, "comment": "ok"})
    assert answer.status_code == 302 and answer["Location"] == f"/calls/{world.own_call.pk}/"
    assert Call.objects.get(pk=world.own_call.pk).result == sale()


@pytest.mark.django_db
def test_the_resync_brings_back_the_wrap_up_card_until_it_is_saved(world: World, settings: Any) -> None:
    operator, call = world.users["operator"], world.own_call
    client = client_for(operator)
    ended = [c for c in client.get("/calls/active.json").json()["calls"] if c["phase"] == "ended"]
    assert [(c["id"], c["operator_id"], c["wrapped_up"]) for c in ended] == [(call.pk, operator.pk, False)]
    assert ended[0]["wrap_up_url"] == f"/calls/{call.pk}/wrap-up/"
    # Someone else's ended call is not on this operator's desk.
    other = client_for(world.other_operator).get("/calls/active.json").json()["calls"]
    assert call.pk not in [c["id"] for c in other]
    client.post(f"/calls/{call.pk}/wrap-up/", {"result": sale().pk}, **JSON)
    assert client.get("/calls/active.json").json()["calls"] == []
    # Too old for the card (CALLS_WRAPUP_CARD_MINUTES): finished from the call log instead.
    Call.objects.filter(pk=world.other_call.pk).update(ended_at=timezone.now() - timedelta(hours=2))
    assert client_for(world.other_operator).get("/calls/active.json").json()["calls"] == []
    settings.CALLS_WRAPUP_CARD_MINUTES = 0
    Call.objects.filter(pk=call.pk).update(wrapped_up_at=None)
    assert client.get("/calls/active.json").json()["calls"] == []


@pytest.mark.django_db
def test_the_saved_wrap_up_answers_with_a_version_newer_than_any_card_sent_before(world: World) -> None:
    # The page compares: a card (a resync, a push) at this version or older was sent before the save.
    client = client_for(world.users["operator"])
    [before] = [c for c in client.get("/calls/active.json").json()["calls"] if c["id"] == world.own_call.pk]
    answer = client.post(f"/calls/{world.own_call.pk}/wrap-up/", {"result": sale().pk}, **JSON).json()
    assert answer["call"]["version"] > before["version"]
    again = client.post(f"/calls/{world.own_call.pk}/wrap-up/", {"comment": "ещё"}, **JSON).json()
    assert again["call"]["version"] > answer["call"]["version"]


@pytest.mark.django_db
def test_desk_counts_and_reminders(world: World) -> None:
    operator = world.users["operator"]
    client = client_for(operator)
    now = timezone.now()
    due = FollowUpTask.objects.create(assignee=operator, due_at=now - timedelta(minutes=1), note="Позвонить")
    FollowUpTask.objects.create(assignee=operator, due_at=now + timedelta(days=1), note="Завтра")
    FollowUpTask.objects.create(assignee=world.other_operator, due_at=now, note="Чужая")
    state = client.get("/calls/desk.json").json()
    assert (state["callbacks"], state["tasks_due"], state["tasks_open"]) == (1, 1, 2)
    assert [(t["id"], t["note"]) for t in state["due"]] == [(due.pk, "Позвонить")]
    page = client.get("/calls/").content.decode()
    assert re.search(r'data-badge="tasks" aria-label="[^"]+">1</span>', page)
    assert client.post(state["due"][0]["done_url"], **JSON).json() == {"ok": True}
    state = client.get("/calls/desk.json").json()
    assert (state["tasks_due"], state["due"]) == (0, [])
    assert Client().get("/calls/desk.json").status_code == 401


@pytest.mark.django_db
def test_the_tasks_list_highlights_due_ones_and_marks_them_done(world: World) -> None:
    operator = world.users["operator"]
    client = client_for(operator)
    now = timezone.now()
    due = FollowUpTask.objects.create(assignee=operator, due_at=now - timedelta(hours=1), note="Просрочено")
    later = FollowUpTask.objects.create(assignee=operator, due_at=now + timedelta(days=2), note="Потом")
    page = client.get("/tasks/").content.decode()
    assert f'class="task due mine" data-task="{due.pk}"' in page
    assert f'class="task mine" data-task="{later.pk}"' in page
    answer = client.post(f"/tasks/{due.pk}/done/", {"next": "/tasks/"})
    assert answer.status_code == 302 and answer["Location"] == "/tasks/"
    assert FollowUpTask.objects.get(pk=due.pk).done_by == operator
    assert "Просрочено" not in client.get("/tasks/").content.decode()
    # "next" goes back to a page of this site only.
    elsewhere = client.post(f"/tasks/{later.pk}/done/", {"next": "https://evil.example/"})
    assert elsewhere["Location"] == "/tasks/"
    assert "Просрочено" in client.get("/tasks/", {"show": "done"}).content.decode()


@pytest.mark.django_db
def test_naming_a_contact_made_from_a_call_in_place(world: World) -> None:
    contact = Contact.objects.create(source=Contact.Source.CALL)
    client = client_for(world.users["operator"])
    answer = client.post(f"/contacts/{contact.pk}/name/", {"name": " Ирина ", "company": "ООО Луч"})
    assert answer.json() == {"ok": True, "contact": {"id": contact.pk, "name": "Ирина", "company": "ООО Луч"}}
    assert Contact.objects.count() == 4  # the world's three and this one: no second contact
    refused = client.post(f"/contacts/{contact.pk}/name/", {"name": " ", "company": ""})
    assert refused.status_code == 400 and "name" in refused.json()["errors"]
    page = client.get(f"/contacts/{contact.pk}/").content.decode()
    assert "Created from a call" in page or "Создан из звонка" in page

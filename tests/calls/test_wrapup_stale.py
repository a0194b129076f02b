"""A wrap-up form opened before someone else saved the call's wrap-up (a supervisor's correction, a
colleague's first wrap-up, a card whose closing push was lost) never silently overwrites it: the save is
refused in words (409), the page shows the wrap-up that stands and keeps what the user typed. The user's
own repeated save (a double click, a replayed POST, their second tab) is no conflict."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from calls.models import Call, CallResult, FollowUpTask
from calls.wrapup import call_wrap_up, follow_up_complete
from tests.personas import World

pytestmark = pytest.mark.django_db


def result(name: str) -> CallResult:
    return CallResult.objects.get(name=name)


def seen_on_page(client: Client, call: Call) -> str:
    page = client.get(reverse("calls:detail", args=[call.pk])).content.decode()
    found = re.search(r'<input type="hidden" name="seen" value="([^"]*)"', page)
    assert found, "the wrap-up form carries the wrap-up it was opened on"
    return found.group(1)


def test_a_page_form_opened_before_a_supervisors_change_does_not_overwrite_it(
    world: World, client: Client
) -> None:
    operator, supervisor = world.users["operator"], world.users["supervisor"]
    call = world.own_call
    call_wrap_up(call=call, user=operator, result=result("Продажа"), comment="Купил")
    client.force_login(operator)
    seen = seen_on_page(client, call)
    # Meanwhile the supervisor corrects the result.
    call_wrap_up(
        call=Call.objects.get(pk=call.pk), user=supervisor, result=result("Жалоба"), comment="Жалоба"
    )

    url = reverse("calls:wrap_up", args=[call.pk])
    typed = {"result": result("Консультация").pk, "comment": "Мой <b>текст</b>", "seen": seen}
    response = client.post(url, typed, HTTP_ACCEPT_LANGUAGE="ru")
    assert response.status_code == 409
    saved = Call.objects.get(pk=call.pk)
    assert (saved.result, saved.comment, saved.wrapped_up_by) == (result("Жалоба"), "Жалоба", supervisor)
    page = response.content.decode()
    assert "сохранил(а) итог" in page and "Ваш итог не сохранён" in page
    assert "Мой &lt;b&gt;текст&lt;/b&gt;" in page  # what they typed is kept (and escaped)
    form = response.context["wrap_form"]
    assert form["result"].value() == str(result("Консультация").pk)
    # The form now carries the wrap-up that stands: saving it again replaces it knowingly.
    assert form["seen"].value() != seen
    again = client.post(url, {**typed, "seen": form["seen"].value()})
    assert again.status_code == 302
    saved = Call.objects.get(pk=call.pk)
    assert (saved.result, saved.wrapped_up_by) == (result("Консультация"), operator)


def test_a_card_of_an_unwrapped_call_gets_409_when_a_supervisor_wrapped_it_meanwhile(
    world: World, client: Client
) -> None:
    operator, supervisor = world.users["operator"], world.users["supervisor"]
    call = world.own_call
    call_wrap_up(call=call, user=supervisor, result=result("Жалоба"), comment="Разобрано")
    client.force_login(operator)
    response = client.post(
        reverse("calls:wrap_up", args=[call.pk]),
        {"result": result("Продажа").pk, "comment": "", "seen": "none"},
        HTTP_ACCEPT="application/json",
        HTTP_ACCEPT_LANGUAGE="ru",
    )
    assert response.status_code == 409
    answer = response.json()
    assert answer["ok"] is False and "Ваш итог не сохранён" in answer["error"]
    saved = Call.objects.get(pk=call.pk)
    assert (saved.result, saved.wrapped_up_by) == (result("Жалоба"), supervisor)
    # The card's second save, with the token the 409 gave, replaces the supervisor's wrap-up knowingly.
    again = client.post(
        reverse("calls:wrap_up", args=[call.pk]),
        {"result": result("Продажа").pk, "comment": "", "seen": answer["seen"]},
        HTTP_ACCEPT="application/json",
    )
    assert again.status_code == 200
    assert Call.objects.get(pk=call.pk).wrapped_up_by == operator


def test_the_users_own_repeated_save_is_no_conflict_and_adds_no_second_task(
    world: World, client: Client
) -> None:
    """A double click on the card, a replayed POST, the same form in two tabs: each carries the token of
    the call before the first save, and each is saved (the later one wins), with one follow-up task."""
    operator = world.users["operator"]
    call = world.own_call
    client.force_login(operator)
    url = reverse("calls:wrap_up", args=[call.pk])
    posted = {
        "result": result("Перезвонить").pk,
        "comment": "Перезвонить завтра",
        "follow_up_at": "2099-01-10T10:00",
        "follow_up_note": "Позвонить",
        "seen": "none",
    }
    for _ in range(2):
        response = client.post(url, posted, HTTP_ACCEPT="application/json")
        assert response.status_code == 200, response.content
    assert FollowUpTask.objects.filter(call=call).count() == 1


def test_without_a_token_there_is_no_check(world: World) -> None:
    """The REST API and an older card send no token: the rights alone decide, as before."""
    operator, supervisor = world.users["operator"], world.users["supervisor"]
    call = world.own_call
    call_wrap_up(call=call, user=supervisor, result=result("Жалоба"), comment="")
    call_wrap_up(call=Call.objects.get(pk=call.pk), user=operator, result=result("Продажа"), comment="")
    assert Call.objects.get(pk=call.pk).result == result("Продажа")


@pytest.mark.parametrize("json", [False, True])
def test_a_result_retired_after_the_form_was_opened_is_refused_in_words_keeping_the_comment(
    world: World, client: Client, json: bool
) -> None:
    client.force_login(world.users["operator"])
    call = world.own_call
    retired = result("Нецелевой")
    CallResult.objects.filter(pk=retired.pk).update(is_active=False)  # by an admin, after the page opened
    headers: dict[str, str] = {"HTTP_ACCEPT_LANGUAGE": "ru"}
    if json:
        headers["HTTP_ACCEPT"] = "application/json"
    response = client.post(
        reverse("calls:wrap_up", args=[call.pk]),
        {"result": retired.pk, "comment": "Ошибся номером", "seen": "none"},
        **headers,  # type: ignore[arg-type]
    )
    assert response.status_code == 400
    said = "Этот результат больше не используется, выберите другой."
    if json:
        assert response.json()["errors"]["result"] == [said]
    else:
        page = response.content.decode()
        assert said in page and "Ошибся номером" in page
    assert Call.objects.get(pk=call.pk).wrapped_up_at is None


def test_done_on_a_task_a_colleague_did_meanwhile_says_who_did_it(world: World, client: Client) -> None:
    operator, supervisor = world.users["operator"], world.users["supervisor"]
    task = FollowUpTask.objects.create(assignee=operator, due_at=timezone.now(), note="Перезвонить")
    url = reverse("calls:task_done", args=[task.pk])
    client.force_login(operator)
    mine = client.post(url, HTTP_ACCEPT_LANGUAGE="ru", follow=True)
    assert [str(m) for m in mine.context["messages"]] == ["Задача выполнена."]
    other = FollowUpTask.objects.create(assignee=operator, due_at=timezone.now(), note="Отправить счёт")
    follow_up_complete(other, supervisor)  # while the operator's list was open
    late = client.post(reverse("calls:task_done", args=[other.pk]), HTTP_ACCEPT_LANGUAGE="ru", follow=True)
    done = FollowUpTask.objects.get(pk=other.pk)
    assert done.done_by == supervisor and done.done_at is not None
    when = timezone.localtime(done.done_at).strftime("%d.%m.%Y %H:%M")
    assert [str(m) for m in late.context["messages"]] == [
        f"Supervisor уже отметил(а) эту задачу выполненной в {when}."
    ]


def test_a_colleague_refused_on_a_stale_page_gets_back_what_they_wrote(world: World, client: Client) -> None:
    """The page was opened before the operator saved the first wrap-up; the colleague may not replace it
    (403), and what they typed is shown back, escaped, to copy — not silently dropped."""
    call = world.own_call
    client.force_login(world.users["manager"])
    seen = seen_on_page(client, call)
    call_wrap_up(call=call, user=world.users["operator"], result=result("Продажа"), comment="Купил")
    response = client.post(
        reverse("calls:wrap_up", args=[call.pk]),
        {
            "result": result("Жалоба").pk,
            "comment": "Клиент <script>alert(1)</script>\nнедоволен",
            "follow_up_at": "2099-01-10T10:00",
            "follow_up_note": "Перезвонить в понедельник",
            "seen": seen,
        },
        HTTP_ACCEPT_LANGUAGE="ru",
    )
    assert response.status_code == 403
    page = response.content.decode()
    assert "Что вы написали (не сохранено):" in page
    assert "Клиент &lt;script&gt;alert(1)&lt;/script&gt;<br>недоволен" in page and "<script>alert" not in page
    assert "Перезвонить в понедельник" in page
    assert Call.objects.get(pk=call.pk).comment == "Купил"


@pytest.mark.parametrize("status", [Call.Status.RINGING, Call.Status.IN_PROGRESS])
def test_a_call_still_going_on_is_wrapped_up_only_by_those_on_it(
    world: World, client: Client, status: str
) -> None:
    """A supervisor's (or a colleague's) wrap-up of a live call would be one of a talk still to come, and
    would take the operator's card away at hang-up: refused in words; the operator may (a late finished)."""
    call = world.own_call
    Call.objects.filter(pk=call.pk).update(status=status, ended_at=None)
    for role in ("supervisor", "manager"):
        client.force_login(world.users[role])
        page = client.get(reverse("calls:detail", args=[call.pk]), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
        assert "Звонок ещё идёт: итог подведёт его оператор после разговора." in page
        assert "wrap-up-form" not in page
        response = client.post(
            reverse("calls:wrap_up", args=[call.pk]),
            {"result": result("Жалоба").pk, "comment": ""},
            HTTP_ACCEPT="application/json",
            HTTP_ACCEPT_LANGUAGE="ru",
        )
        assert response.status_code == 403
        assert response.json()["error"] == "Звонок ещё идёт: итог подведёт его оператор после разговора."
    assert Call.objects.get(pk=call.pk).wrapped_up_at is None
    call_wrap_up(
        call=Call.objects.get(pk=call.pk), user=world.users["operator"], result=result("Продажа"), comment=""
    )
    assert Call.objects.get(pk=call.pk).result == result("Продажа")

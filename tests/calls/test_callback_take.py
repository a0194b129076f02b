"""Taking a callback ("Взять себе"): two operators at once get one winner; the winner's double click or
replayed request is no failure; a loser reads who took it, or that the client was reached."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from calls.callbacks import callback_take
from calls.models import CallbackTask
from tests.api.tokens import token_client
from tests.concurrency import at_once


def _task() -> CallbackTask:
    when = datetime(2020, 6, 2, 11, 30).astimezone()
    return CallbackTask.objects.create(
        client_number="+79035550101", missed_count=1, first_missed_at=when, last_missed_at=when
    )


def _said(response: Any) -> list[str]:
    """What the list the POST redirects to says (follow=True: read, so not said again)."""
    assert response.redirect_chain[-1][0] == reverse("calls:callbacks")
    return [str(m) for m in response.context["messages"]]


@pytest.mark.django_db(transaction=True)
def test_two_operators_taking_at_once_get_one_winner(postgres_only: None, directory: dict[str, Any]) -> None:
    task = _task()
    ivanova, petrov = directory["ivanova"], directory["petrov"]
    won = at_once(
        [
            lambda: callback_take(task_id=task.pk, user=ivanova),
            lambda: callback_take(task_id=task.pk, user=petrov),
        ]
    )
    task.refresh_from_db()
    assert sorted(won) == [False, True]
    assert task.assignee == (ivanova if won[0] else petrov)


@pytest.mark.django_db
def test_a_double_click_is_no_failure_and_the_loser_reads_who_took_it(
    directory: dict[str, Any], client: Client
) -> None:
    task = _task()
    url = reverse("calls:callback_take", args=[task.pk])
    client.force_login(directory["ivanova"])
    first = client.post(url, HTTP_ACCEPT_LANGUAGE="ru", follow=True)
    again = client.post(
        url, HTTP_ACCEPT_LANGUAGE="ru", follow=True
    )  # the same button twice, or a replayed POST
    assert _said(first) == ["Теперь эта задача ваша."] and _said(again) == ["Теперь эта задача ваша."]
    client.force_login(directory["petrov"])
    late = client.post(url, HTTP_ACCEPT_LANGUAGE="ru", follow=True)
    assert _said(late) == ["Эту задачу уже взял(а) Мария Иванова."]
    task.refresh_from_db()
    assert task.assignee == directory["ivanova"]


@pytest.mark.django_db
def test_taking_a_callback_whose_client_was_reached_says_so(
    directory: dict[str, Any], client: Client
) -> None:
    task = _task()
    CallbackTask.objects.filter(pk=task.pk).update(closed_at=timezone.now())
    client.force_login(directory["petrov"])
    response = client.post(
        reverse("calls:callback_take", args=[task.pk]), HTTP_ACCEPT_LANGUAGE="ru", follow=True
    )
    assert _said(response) == ["Клиенту уже дозвонились: эта задача закрыта."]
    task.refresh_from_db()
    assert task.assignee is None


@pytest.mark.django_db
def test_the_api_take_replayed_by_the_taker_answers_200(directory: dict[str, Any]) -> None:
    task = _task()
    api = token_client(directory["ivanova"])
    url = f"/api/v1/callbacks/{task.pk}/take/"
    assert api.post(url).status_code == 200
    assert api.post(url).status_code == 200
    assert token_client(directory["petrov"]).post(url).status_code == 409

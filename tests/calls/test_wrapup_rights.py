"""Who may change a call's wrap-up (calls.wrapup.wrap_up_refusal): the first one anyone who sees the call
may write; once saved, it is its author's, the call's operators' and the supervisors' (the permission
calls.change_others_wrap_up) — the same answer from the service, the call's page, the card and the API."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from calls.models import Call, CallLeg, CallResult
from calls.wrapup import WrapUpNotYours, call_wrap_up, wrap_up_refusal
from tests.api.tokens import token_client
from tests.personas import World

pytestmark = pytest.mark.django_db


def result(name: str) -> CallResult:
    return CallResult.objects.get(name=name)


def wrapped_by_operator(world: World) -> Call:
    """The operator's own call, wrapped up by them: a sale."""
    call_wrap_up(call=world.own_call, user=world.users["operator"], result=result("Продажа"), comment="Купил")
    return Call.objects.get(pk=world.own_call.pk)


def unchanged(world: World) -> bool:
    call = Call.objects.get(pk=world.own_call.pk)
    return (call.result, call.comment, call.wrapped_up_by) == (
        result("Продажа"),
        "Купил",
        world.users["operator"],
    )


def test_anyone_who_sees_the_call_may_write_the_first_wrap_up(world: World) -> None:
    colleague = world.users["manager"]  # same team, did not take the call
    call_wrap_up(call=world.own_call, user=colleague, result=result("Перезвонить"), comment="Перезвонил")
    assert Call.objects.get(pk=world.own_call.pk).wrapped_up_by == colleague


@pytest.mark.parametrize("role", ["manager", "outsider"])
def test_a_colleague_may_not_overwrite_a_saved_wrap_up(world: World, role: str) -> None:
    call = wrapped_by_operator(world)
    colleague = world.users[role]  # outsider: sees it only in "everyone sees everything" mode
    with pytest.raises(WrapUpNotYours) as refused:
        call_wrap_up(call=call, user=colleague, result=result("Жалоба"), comment="Не так")
    assert "Operator" in refused.value.message  # says whose it is (first name "Operator")
    assert unchanged(world)
    # Wrong input too gets the refusal, not field errors about a form they may not send.
    with pytest.raises(WrapUpNotYours):
        call_wrap_up(call=call, user=colleague, result=None, comment="")


@pytest.mark.parametrize("role", ["operator", "supervisor", "admin"])
def test_the_author_and_supervisors_may_change_it(world: World, role: str) -> None:
    call = wrapped_by_operator(world)
    user = world.users[role]
    call_wrap_up(call=call, user=user, result=result("Консультация"), comment="Исправлено")
    saved = Call.objects.get(pk=call.pk)
    assert (saved.result, saved.comment, saved.wrapped_up_by) == (result("Консультация"), "Исправлено", user)


def test_the_calls_operators_may_change_what_a_colleague_wrote(world: World) -> None:
    operator, colleague, offered = world.users["operator"], world.users["manager"], world.other_operator
    call_wrap_up(call=world.own_call, user=colleague, result=result("Перезвонить"), comment="")
    call = Call.objects.get(pk=world.own_call.pk)
    assert wrap_up_refusal(operator, call) == ""  # the call's operator
    assert wrap_up_refusal(offered, call) != ""
    # A leg of the call rang the other operator (offered, not taken): they took part too.
    CallLeg.objects.create(
        call=call,
        integration=world.integration,
        leg_id="own-call~offered",
        workplace=offered.workplace,
        offered_at=timezone.now(),
    )
    assert wrap_up_refusal(offered, call) == ""
    call_wrap_up(call=call, user=offered, result=result("Продажа"), comment="")
    assert Call.objects.get(pk=call.pk).wrapped_up_by == offered


def test_the_check_is_made_on_the_saved_row_not_on_a_stale_copy(world: World) -> None:
    """Two colleagues open the same unwrapped call; the first saves; the second's save (with the copy
    read before) is refused instead of silently replacing the first."""
    stale = Call.objects.get(pk=world.own_call.pk)
    wrapped_by_operator(world)
    assert stale.wrapped_up_at is None
    with pytest.raises(WrapUpNotYours):
        call_wrap_up(call=stale, user=world.users["manager"], result=result("Жалоба"), comment="")
    assert unchanged(world)


def test_the_card_gets_the_reason_in_russian(world: World, client: Client) -> None:
    wrapped_by_operator(world)
    client.force_login(world.users["manager"])
    response = client.post(
        reverse("calls:wrap_up", args=[world.own_call.pk]),
        {"result": result("Жалоба").pk, "comment": "Не так"},
        HTTP_ACCEPT="application/json",
        HTTP_ACCEPT_LANGUAGE="ru",
    )
    assert response.status_code == 403
    answer = response.json()
    assert answer["ok"] is False
    assert "Изменить его могут только автор" in answer["error"] and "Operator" in answer["error"]
    assert unchanged(world)


def test_the_calls_page_shows_the_wrap_up_without_the_form(world: World, client: Client) -> None:
    wrapped_by_operator(world)
    url = reverse("calls:detail", args=[world.own_call.pk])
    client.force_login(world.users["manager"])
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Продажа" in page and "Купил" in page
    assert "wrap-up-form" not in page and "wrap-up-not-yours" in page
    # A POST from a page opened before the wrap-up was saved: 403, the wrap-up that stands, the reason.
    response = client.post(
        reverse("calls:wrap_up", args=[world.own_call.pk]),
        {"result": result("Жалоба").pk, "comment": "Не так"},
        HTTP_ACCEPT_LANGUAGE="ru",
    )
    assert response.status_code == 403
    page = response.content.decode()
    assert "Итог звонка не сохранён." in page and "Купил" in page and "wrap-up-form" not in page
    assert unchanged(world)
    # The author still gets the form.
    client.force_login(world.users["operator"])
    assert "wrap-up-form" in client.get(url).content.decode()


def test_the_api_answers_403_in_words(world: World) -> None:
    wrapped_by_operator(world)
    api = token_client(world.users["manager"])
    response = api.post(f"/api/v1/calls/{world.own_call.pk}/wrap-up/", {"comment": "Не так"}, format="json")
    assert response.status_code == 403
    assert "Изменить его могут только автор" in response.json()["detail"]
    assert unchanged(world)
    ok = token_client(world.users["supervisor"]).post(
        f"/api/v1/calls/{world.own_call.pk}/wrap-up/", {"comment": "Проверено"}, format="json"
    )
    assert ok.status_code == 200 and ok.json()["comment"] == "Проверено"


def test_the_migration_grants_the_permission_to_the_supervisors_group(db: Any) -> None:
    import importlib

    from django.apps import apps
    from django.contrib.auth.models import Group

    migration = importlib.import_module("calls.migrations.0011_others_wrap_up")
    group = Group.objects.create(name=migration.SUPERVISORS_GROUP)
    migration.grant_supervisors(apps, None)
    assert group.permissions.filter(codename="change_others_wrap_up").exists()
    migration.grant_supervisors(apps, None)  # again: nothing doubles
    assert group.permissions.filter(codename="change_others_wrap_up").count() == 1

"""The wrap-up's data and services (calls/wrapup.py): results seeded by the migration, a call's result,
comment and follow-up saved together, re-saved in place, refused with a message per field, and follow-up
tasks completed once, by people who may see them (tests/personas.py's world)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import ProtectedError
from django.utils import timezone

from calls.models import Call, CallResult, FollowUpTask
from calls.visibility import tasks_visible_to
from calls.wrapup import assignees_for, call_wrap_up, follow_up_complete
from contacts.models import AccessSettings
from tests.personas import World, set_visibility

pytestmark = pytest.mark.django_db


def result(name: str) -> CallResult:
    return CallResult.objects.get(name=name)


def test_the_migration_seeds_the_results_in_russian_in_order() -> None:
    names = list(CallResult.objects.filter(is_active=True).values_list("name", flat=True))
    assert names == ["Продажа", "Консультация", "Жалоба", "Нецелевой", "Перезвонить"]


def test_a_wrap_up_saves_result_comment_and_who(world: World) -> None:
    operator = world.users["operator"]
    done = call_wrap_up(
        call=world.own_call, user=operator, result=result("Продажа"), comment="  Купил тариф "
    )
    assert done.task is None
    call = Call.objects.get(pk=world.own_call.pk)
    assert (call.result, call.comment, call.wrapped_up_by) == (result("Продажа"), "Купил тариф", operator)
    assert call.wrapped_up_at is not None


def test_a_follow_up_task_goes_to_the_chosen_person_with_the_calls_contact(world: World) -> None:
    operator, other = world.users["operator"], world.other_operator
    due = timezone.now() + timedelta(days=1)
    done = call_wrap_up(
        call=world.own_call,
        user=operator,
        result=result("Перезвонить"),
        comment="",
        follow_up_at=due,
        follow_up_for=other,
        follow_up_note="Отправить КП",
    )
    task = FollowUpTask.objects.get()
    assert task == done.task
    assert (task.assignee, task.created_by, task.contact, task.call) == (
        other,
        operator,
        world.contact,
        world.own_call,
    )
    assert (task.due_at, task.note, task.done_at) == (due, "Отправить КП", None)


def test_a_follow_up_time_alone_gives_the_task_to_the_author(world: World) -> None:
    operator = world.users["operator"]
    due = timezone.now() + timedelta(hours=2)
    done = call_wrap_up(
        call=world.own_call,
        user=operator,
        result=None,
        comment="",
        follow_up_at=due,
        follow_up_note="Позвонить",
    )
    assert done.task is not None and done.task.assignee == operator


def test_saving_again_updates_the_call_and_its_open_task_instead_of_adding(world: World) -> None:
    operator = world.users["operator"]
    due = timezone.now() + timedelta(days=1)
    call_wrap_up(
        call=world.own_call,
        user=operator,
        result=result("Жалоба"),
        comment="a",
        follow_up_at=due,
        follow_up_note="написать",
    )
    later = due + timedelta(days=1)
    call_wrap_up(
        call=world.own_call,
        user=operator,
        result=result("Консультация"),
        comment="b",
        follow_up_at=later,
        follow_up_note="позвонить",
    )
    call = Call.objects.get(pk=world.own_call.pk)
    assert (call.result, call.comment) == (result("Консультация"), "b")
    task = FollowUpTask.objects.get()
    assert (task.due_at, task.note) == (later, "позвонить")
    # Without a follow-up time, a re-save leaves the task alone.
    call_wrap_up(call=world.own_call, user=operator, result=result("Продажа"), comment="c")
    assert FollowUpTask.objects.get().due_at == later
    # Once the task is done, a new follow-up makes a new task.
    follow_up_complete(task, operator)
    call_wrap_up(
        call=world.own_call, user=operator, result=None, comment="c", follow_up_at=later, follow_up_note="ещё"
    )
    assert FollowUpTask.objects.count() == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"result": None, "comment": "  "}, "result"),
        ({"comment": "x" * 5001}, "comment"),
        ({"follow_up_for": "other"}, "follow_up_at"),
        ({"follow_up_at": "tomorrow", "follow_up_note": "x" * 2001}, "follow_up_note"),
        ({"result": "inactive"}, "result"),
    ],
)
def test_wrong_input_is_refused_per_field_and_nothing_is_saved(
    world: World, kwargs: dict[str, Any], field: str
) -> None:
    retired = CallResult.objects.create(name="Старый", is_active=False)
    given: dict[str, Any] = {"result": result("Продажа"), "comment": "ok", **kwargs}
    if given.get("follow_up_for") == "other":
        given["follow_up_for"] = world.other_operator
    if given.get("follow_up_at") == "tomorrow":
        given["follow_up_at"] = timezone.now() + timedelta(days=1)
    if given["result"] == "inactive":
        given["result"] = retired
    with pytest.raises(ValidationError) as caught:
        call_wrap_up(call=world.own_call, user=world.users["operator"], **given)
    assert field in caught.value.message_dict
    call = Call.objects.get(pk=world.own_call.pk)
    assert (call.result, call.comment, call.wrapped_up_at) == (None, "", None)
    assert not FollowUpTask.objects.exists()


def test_a_retired_result_already_on_the_call_may_be_kept(world: World) -> None:
    operator = world.users["operator"]
    old = CallResult.objects.create(name="Старый")
    call_wrap_up(call=world.own_call, user=operator, result=old, comment="")
    CallResult.objects.filter(pk=old.pk).update(is_active=False)
    old.refresh_from_db()
    call = Call.objects.get(pk=world.own_call.pk)
    call_wrap_up(call=call, user=operator, result=old, comment="still")
    assert Call.objects.get(pk=call.pk).comment == "still"


def test_a_result_in_use_cannot_be_deleted(world: World) -> None:
    call_wrap_up(call=world.own_call, user=world.users["operator"], result=result("Продажа"), comment="")
    with pytest.raises(ProtectedError):
        result("Продажа").delete()


def test_team_mode_someone_elses_call_and_person_are_refused(world: World) -> None:
    set_visibility(AccessSettings.Visibility.TEAM)
    operator, outsider = world.users["operator"], world.users["outsider"]
    with pytest.raises(PermissionDenied):
        call_wrap_up(call=world.outsider_call, user=operator, result=result("Продажа"), comment="")
    with pytest.raises(ValidationError) as caught:
        call_wrap_up(
            call=world.own_call,
            user=operator,
            result=None,
            comment="",
            follow_up_at=timezone.now(),
            follow_up_for=outsider,
        )
    assert "follow_up_for" in caught.value.message_dict
    assert outsider not in assignees_for(operator)
    assert world.other_operator in assignees_for(operator)


def test_inactive_people_get_no_tasks(world: World) -> None:
    other = world.other_operator
    other.is_active = False
    other.save()
    with pytest.raises(ValidationError):
        call_wrap_up(
            call=world.own_call,
            user=world.users["operator"],
            result=None,
            comment="",
            follow_up_at=timezone.now(),
            follow_up_for=other,
        )


def test_completing_a_task_once_and_who_may(world: World) -> None:
    set_visibility(AccessSettings.Visibility.TEAM)
    operator, outsider, supervisor = (
        world.users["operator"],
        world.users["outsider"],
        world.users["supervisor"],
    )
    task = FollowUpTask.objects.create(assignee=operator, due_at=timezone.now(), note="n")
    with pytest.raises(PermissionDenied):
        follow_up_complete(task, outsider)
    assert FollowUpTask.objects.get(pk=task.pk).done_at is None
    follow_up_complete(task, supervisor)
    first = FollowUpTask.objects.get(pk=task.pk)
    assert first.done_by == supervisor and first.done_at is not None
    follow_up_complete(task, operator)  # a second completion changes nothing
    again = FollowUpTask.objects.get(pk=task.pk)
    assert (again.done_by, again.done_at) == (supervisor, first.done_at)


def test_who_sees_which_tasks(world: World) -> None:
    operator, outsider, supervisor = (
        world.users["operator"],
        world.users["outsider"],
        world.users["supervisor"],
    )
    mine = FollowUpTask.objects.create(assignee=operator, due_at=timezone.now())
    given = FollowUpTask.objects.create(assignee=outsider, created_by=operator, due_at=timezone.now())
    theirs = FollowUpTask.objects.create(assignee=outsider, due_at=timezone.now())
    assert set(tasks_visible_to(operator)) == {mine, given, theirs}
    set_visibility(AccessSettings.Visibility.TEAM)
    assert set(tasks_visible_to(operator)) == {mine, given}
    assert set(tasks_visible_to(supervisor)) == {mine}
    assert set(tasks_visible_to(outsider)) == {given, theirs}

"""The missed-call callback queue ("To call back"): services, hooks and selectors.

- A missed incoming call (status *missed*: it ended and nobody answered) from a number opens ONE
  ``CallbackTask`` for that number, or extends the open one: one open task per number is a database
  constraint (a partial unique index), so concurrent misses meet on it and the loser extends the
  winner's task. Counts and times are recomputed from the linked calls, so any order of arrival and any
  repetition give the same task. The task is assigned to the contact's personal manager, else nobody.
- The first later call with that number that connects (either direction) closes it, recording when and
  who reached the client (the call's operator).

``callback_on_call`` runs inside the call's transaction (calls.services.call_apply_notification) and acts
only when the notification changed the call: when it became missed, or became answered. Each change
happens once per call (its facts only grow), so a call opens or closes tasks once, whatever the order and
repetition of its notifications.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Case, Count, IntegerField, Max, Min, Prefetch, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from contacts.models import Contact
from contacts.phones import digits_only
from webhooks.events import webhook_on_callback_created

from .models import Call, CallbackTask, Direction

logger = logging.getLogger(__name__)


def callback_key(call: Call) -> str:
    """The number a task is kept under: E.164, else the digits as received."""
    return call.client_number or digits_only(call.client_number_raw)


def _missed_at(call: Call) -> Any:
    return call.started_at or call.ended_at or call.created_at or timezone.now()


def _manager_id(contact_id: int | None) -> int | None:
    if contact_id is None:
        return None
    return Contact.objects.filter(pk=contact_id).values_list("personal_manager_id", flat=True).first()


def callback_on_call(*, call: Call, was_missed: bool, was_answered: bool) -> None:
    """Keep the queue in step with the call (calls.services.call_apply_notification, in its transaction),
    given what the call was before this notification."""
    if call.status == Call.Status.MISSED and call.direction == Direction.INCOMING and not was_missed:
        callback_register_miss(call=call)
    elif call.answered_at is not None and not was_answered:
        callback_forget_call(call=call)
        callback_close_for(call=call)


def callback_register_miss(*, call: Call) -> CallbackTask | None:
    """Open or extend the number's task with this missed call (idempotent)."""
    key = callback_key(call)
    if not key:
        return None
    missed_at = _missed_at(call)
    for _attempt in range(3):
        task = (
            CallbackTask.objects.select_for_update().filter(client_number=key, closed_at__isnull=True).first()
        )
        if task is None:
            # A later call with the number already connected (notifications applied out of order):
            # the client was reached after this miss, nothing to call back.
            if (
                Call.objects.filter(client_number=key, answered_at__gte=missed_at)
                .exclude(pk=call.pk)
                .exists()
            ):
                return None
            try:
                with transaction.atomic():
                    task = CallbackTask.objects.create(
                        client_number=key,
                        contact_id=call.contact_id,
                        assignee_id=_manager_id(call.contact_id),
                        missed_count=1,
                        first_missed_at=missed_at,
                        last_missed_at=missed_at,
                    )
                    task.missed_calls.add(call)
            except IntegrityError:
                continue  # another miss opened it at the same moment: extend theirs
            webhook_on_callback_created(task=task, call=call)
            logger.info("Callback queue: task %s opened for call %s", task.pk, call.pk)
            return task
        if task.missed_calls.filter(pk=call.pk).exists():
            return task
        task.missed_calls.add(call)
        if task.contact_id is None:
            task.contact_id = call.contact_id
        if task.assignee_id is None:
            task.assignee_id = _manager_id(task.contact_id)
        _recount(task)
        return task
    raise IntegrityError(f"could not open or extend the callback task of {key}")


def _recount(task: CallbackTask) -> None:
    when = Coalesce("started_at", "ended_at", "created_at")
    facts = task.missed_calls.aggregate(n=Count("pk"), first=Min(when), last=Max(when))
    task.missed_count = facts["n"] or 0
    task.first_missed_at = facts["first"] or task.first_missed_at
    task.last_missed_at = facts["last"] or task.last_missed_at
    task.save()


def callback_forget_call(*, call: Call) -> None:
    """A call counted as missed turned out answered (a late ``connected``): take it off open tasks."""
    through = CallbackTask.missed_calls.through
    links = through.objects.filter(call_id=call.pk, callbacktask__closed_at__isnull=True)
    task_ids = list(links.values_list("callbacktask_id", flat=True))
    if not task_ids:
        return
    links.delete()
    for task in CallbackTask.objects.select_for_update().filter(pk__in=task_ids):
        if task.missed_calls.exists():
            _recount(task)
        else:
            task.delete()


def callback_close_for(*, call: Call) -> int:
    """Close the number's open task when this connected call came after its last miss."""
    key = callback_key(call)
    if not key or call.answered_at is None:
        return 0
    closed = CallbackTask.objects.filter(
        client_number=key, closed_at__isnull=True, last_missed_at__lte=call.answered_at
    ).update(
        closed_at=call.answered_at, closed_by_id=call.operator_id, closed_call=call, updated_at=timezone.now()
    )
    if closed:
        logger.info("Callback queue: number of call %s reached, task closed", call.pk)
    return closed


def callback_take(*, task_id: int, user: Any) -> bool:
    """Assign an open, unassigned task to ``user`` (first click wins). Taking an open task that is already
    the user's (a double click, a replayed request, a second tab) succeeds too: it is theirs."""
    taken = (
        CallbackTask.objects.filter(pk=task_id, closed_at__isnull=True, assignee__isnull=True).update(
            assignee_id=user.pk, updated_at=timezone.now()
        )
        == 1
    )
    return (
        taken or CallbackTask.objects.filter(pk=task_id, closed_at__isnull=True, assignee_id=user.pk).exists()
    )


# --- Selectors --------------------------------------------------------------------------------------


def _for_user(user_id: int) -> QuerySet[CallbackTask]:
    return CallbackTask.objects.filter(closed_at__isnull=True).filter(
        Q(assignee_id=user_id) | Q(assignee__isnull=True)
    )


def callback_list_for_user(*, user_id: int) -> QuerySet[CallbackTask]:
    """Open tasks for an operator: theirs first, then unassigned; the latest miss first."""
    missed = Call.objects.order_by("-started_at", "-pk")
    return (
        _for_user(user_id)
        .select_related("contact", "assignee")
        .prefetch_related(
            "contact__numbers",
            Prefetch("missed_calls", queryset=missed),
        )
        .annotate(
            mine=Case(When(assignee_id=user_id, then=Value(0)), default=Value(1), output_field=IntegerField())
        )
        .order_by("mine", "-last_missed_at", "-pk")
    )


def callback_open_for_user(*, user_id: int) -> QuerySet[CallbackTask]:
    """The menu badge's tasks: open ones assigned to the user plus unassigned ones."""
    return _for_user(user_id)


def callback_open_count_for_user(*, user_id: int) -> int:
    return callback_open_for_user(user_id=user_id).count()

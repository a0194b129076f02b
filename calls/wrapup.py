"""The wrap-up of a call (what it came to, a comment, an optional follow-up task) and the tasks' writes.

Views, the card's endpoint and the REST API call these; they validate and check visibility themselves,
so every caller gets the same answers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from contacts.access import users_visible_to
from contacts.people import person_name

from .dates import local_minute, validate_moment
from .models import Call, CallResult, FollowUpTask
from .realtime.cards import wrapped_up_messages
from .realtime.push import push
from .visibility import call_visible_to, task_visible_to

COMMENT_MAX_LENGTH = 5000
CHANGE_OTHERS_WRAP_UP = "calls.change_others_wrap_up"
NOTE_MAX_LENGTH = 2000
# A follow-up may be due this long before the current minute: the time picked "now" in a form that took a
# while to send, or a clock a little behind. Earlier than that is a typo (a wrong day or hour), refused.
FOLLOW_UP_GRACE = timedelta(minutes=5)


class WrapUpChanged(Exception):
    """The wrap-up was saved by someone else after the user's form was opened (``message`` says who and
    when): saving would silently overwrite what they wrote, so nothing is saved."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def wrap_up_seen(call: Call) -> str:
    """The token of the wrap-up a form was opened on (its hidden ``seen`` field): the time it was saved,
    or "none" for a call not wrapped up yet."""
    return call.wrapped_up_at.isoformat() if call.wrapped_up_at else "none"


class WrapUpNotYours(PermissionDenied):
    """The user sees the call, but its wrap-up is someone else's to change (``message`` says whose)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class WrapUp:
    call: Call
    task: FollowUpTask | None


def assignees_for(user: Any) -> Any:
    """The active users ``user`` may give a follow-up to (themselves included): their visible people."""
    qs = get_user_model()._default_manager.filter(is_active=True)
    ids = users_visible_to(user)
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    return qs.order_by("first_name", "last_name", "username")


def _took_part(user: Any, call: Call) -> bool:
    """Whether ``user`` is the call's operator or had a leg of it (was offered it, or transferred it)."""
    return call.operator_id == user.pk or call.legs.filter(workplace__user=user).exists()


def wrap_up_refusal(user: Any, call: Call) -> str:
    """Why ``user`` (who sees ``call``) may not change its wrap-up, in words; "" when they may.

    While the call is ringing or in conversation, only those on it (its operator, those it rang) may wrap
    it up. The first wrap-up of a call that is over may be written by anyone who sees the call (a
    colleague who called a missed client back, say). Once saved, it is its author's, the call's
    operators' (who took or were offered it) and those with ``calls.change_others_wrap_up`` (supervisors
    by default): the results count in the operators' reports, so a colleague may not overwrite them.
    """
    if call.status in Call.LIVE_STATUSES and not _took_part(user, call):
        # Not over yet: a wrap-up saved now by someone not on it would be one of a conversation still to
        # come, and would take the operator's wrap-up card away at hang-up (the call would read wrapped).
        return _("The call is still going on: its operator wraps it up after the conversation.")
    if not call.wrapped_up_at or call.wrapped_up_by_id in (None, user.pk):
        return ""
    if user.has_perm(CHANGE_OTHERS_WRAP_UP) or _took_part(user, call):
        return ""
    author = call.wrapped_up_by
    name = person_name(author)
    return _(
        "%(name)s has wrapped up this call. Only they, the operators of the call and supervisors may "
        "change the wrap-up."
    ) % {"name": name}


def follow_up_passed(due: datetime, *, now: datetime | None = None) -> str:
    """Why ``due`` (aware) cannot be a new follow-up's time, in words: it is before the current minute by
    more than FOLLOW_UP_GRACE; "" when it may be. Both times are said as the user reads them (TIME_ZONE)."""
    now = now if now is not None else timezone.now()
    if due >= now.replace(second=0, microsecond=0) - FOLLOW_UP_GRACE:
        return ""
    return _("The due time %(due)s has already passed (it is now %(now)s). Choose a later time.") % {
        "due": local_minute(due),
        "now": local_minute(now),
    }


def call_wrap_up(
    *,
    call: Call,
    user: Any,
    result: CallResult | None,
    comment: str,
    follow_up_at: datetime | None = None,
    follow_up_for: Any = None,
    follow_up_note: str = "",
    seen: str = "",
) -> WrapUp:
    """Save the wrap-up of ``call`` by ``user``; a second save updates the first (and the follow-up task
    this call's wrap-up made, while it is open, instead of adding another one).

    Raises PermissionDenied when ``user`` may not see the call, WrapUpNotYours (a PermissionDenied with a
    message) when the wrap-up is someone else's to change (``wrap_up_refusal``), ValidationError (with a
    message per field: result, comment, follow_up_at, follow_up_for, follow_up_note) when the input is
    wrong.
    A follow-up time without a person gives the task to ``user``; a person or a note without a time is an
    error, and so are a time without a note (a task says what to do) and a time already passed
    (``follow_up_passed``: a typo, which would make the task due at once). Without a follow-up time, the
    call's tasks are left as they are.

    After the commit, every device of whoever has the call's card learns of the save (``call.wrapped_up``
    through the channel layer, ``calls.realtime.cards.wrapped_up_messages``) and closes its wrap-up card;
    a channel layer that is down or slow never fails or delays the save (``push`` does not wait).

    ``seen`` is the ``wrap_up_seen`` token of the call as the user's form showed it ("" when unknown: the
    REST API, no check). When someone else saved the wrap-up since, WrapUpChanged is raised and nothing is
    saved: a stale form (a second tab, a supervisor's correction meanwhile) never silently overwrites it.
    The user's own later save (a double click, a replayed POST, their other tab) is no conflict.
    """
    if not call_visible_to(user, call):
        raise PermissionDenied
    refusal = wrap_up_refusal(user, call)
    if refusal:
        raise WrapUpNotYours(refusal)
    comment = (comment or "").strip()
    follow_up_note = (follow_up_note or "").strip()
    errors: dict[str, str] = {}
    if result is not None and not result.is_active and result.pk != call.result_id:
        errors["result"] = _("This result is no longer offered; choose another one.")
    if len(comment) > COMMENT_MAX_LENGTH:
        errors["comment"] = _("The comment is too long (at most %(n)d characters).") % {
            "n": COMMENT_MAX_LENGTH
        }
    if len(follow_up_note) > NOTE_MAX_LENGTH:
        errors["follow_up_note"] = _("The task is too long (at most %(n)d characters).") % {
            "n": NOTE_MAX_LENGTH
        }
    if result is None and not comment and follow_up_at is None:
        errors["result"] = _("Choose a result, write a comment or plan a follow-up.")
    if (follow_up_for is not None or follow_up_note) and follow_up_at is None:
        errors["follow_up_at"] = _("Say when the follow-up is due.")
    if follow_up_at is not None:
        if timezone.is_naive(follow_up_at):
            follow_up_at = timezone.make_aware(follow_up_at)
        try:
            validate_moment(follow_up_at)  # the callers' fields check it too; a time past it cannot be saved
        except ValidationError as error:
            errors["follow_up_at"] = error.messages[0]
        else:
            passed = follow_up_passed(follow_up_at)
            if passed:
                errors["follow_up_at"] = passed
        if not follow_up_note:
            errors["follow_up_note"] = _("Write what is to be done.")
        assignee = follow_up_for if follow_up_for is not None else user
        if not assignees_for(user).filter(pk=assignee.pk).exists():
            errors["follow_up_for"] = _("You cannot give a task to this person.")
    if errors:
        raise ValidationError(errors)

    now = timezone.now()
    with transaction.atomic():
        # Checked on the locked row: of two colleagues saving a first wrap-up at once, the second is
        # refused, not silently written over the first.
        locked = Call.objects.select_for_update().get(pk=call.pk)
        refusal = wrap_up_refusal(user, locked)
        if refusal:
            raise WrapUpNotYours(refusal)
        if seen and seen != wrap_up_seen(locked) and locked.wrapped_up_by_id not in (None, user.pk):
            raise WrapUpChanged(
                _(
                    "%(name)s saved the wrap-up at %(when)s while you were editing it. Yours is not saved: "
                    "check theirs and save again to replace it."
                )
                % {
                    "name": person_name(locked.wrapped_up_by),
                    "when": local_minute(locked.wrapped_up_at),
                }
            )
        Call.objects.filter(pk=call.pk).update(
            result=result, comment=comment, wrapped_up_by=user, wrapped_up_at=now, updated_at=now
        )
        call.result, call.comment, call.wrapped_up_by, call.wrapped_up_at = result, comment, user, now
        call.updated_at = now  # the card's version (calls.realtime.cards.call_version) after the save
        task = None
        if follow_up_at is not None:
            task = (
                FollowUpTask.objects.select_for_update()
                .filter(call=call, done_at__isnull=True, created_by=user)
                .order_by("pk")
                .first()
            )
            if task is None:
                task = FollowUpTask(call=call, created_by=user)
            task.contact_id = call.contact_id
            task.assignee = assignee
            task.due_at = follow_up_at
            task.note = follow_up_note
            task.save()
        # Built in the transaction from the locked row (its operator now), sent once it commits.
        locked.updated_at = now
        transaction.on_commit(functools.partial(push, wrapped_up_messages(locked)), robust=True)
    return WrapUp(call=call, task=task)


def follow_up_complete(task: FollowUpTask, user: Any) -> FollowUpTask:
    """Mark ``task`` done by ``user`` (a second call changes nothing). PermissionDenied when ``user``
    may not see it."""
    if not task_visible_to(user, task):
        raise PermissionDenied
    now = timezone.now()
    FollowUpTask.objects.filter(pk=task.pk, done_at__isnull=True).update(done_at=now, done_by=user)
    task.refresh_from_db(fields=["done_at", "done_by"])
    return task

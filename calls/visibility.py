"""What a user may see: calls, contacts, recordings and callback tasks, in either visibility mode.

Every list, page, export and search filters through these (README "Security model"). In the "all" mode
(and for superusers and holders of ``contacts.view_all_teams``) they change nothing. In the "team" mode
they keep what belongs to the people of the user's teams (``contacts.access.users_visible_to``):

- a call is theirs when one of them took it (``operator``), placed it from the CRM (``initiated_by``),
  was rung by it (the user of any leg's workplace), or is the personal manager of its contact;
- a contact is theirs when one of them is its personal manager or typed it in (``created_by``), or
  when it has a call of theirs (taken, placed or rung, as above);
- a recording is theirs when its call is; a recording not matched to a call yet is nobody's;
- a callback task when it is assigned to the user, or one of its missed calls or its contact is theirs;
- a follow-up task (the wrap-up's) when it is assigned to one of them or the user made it.

Each ``*_visible_to(user, queryset=None)`` filters ``queryset`` (default: all rows), keeping its order,
joins and prefetches, so a view narrows its own selector's queryset: ``calls_visible_to(user, call_list(…))``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from contacts.access import users_visible_to, visibility_mode
from contacts.models import AccessSettings, Contact

from .models import Call, CallbackTask, CallLeg, FollowUpTask, Recording


def _call_people_q(ids: frozenset[int], prefix: str = "") -> Q:
    """Calls that people ``ids`` took, placed or were rung by (the contact's manager not included)."""
    rung = CallLeg.objects.filter(workplace__user_id__in=ids).values("call_id")
    return (
        Q(**{f"{prefix}operator_id__in": ids})
        | Q(**{f"{prefix}initiated_by_id__in": ids})
        | Q(**{f"{prefix}pk__in": rung})
    )


def _calls_q(ids: frozenset[int]) -> Q:
    return _call_people_q(ids) | Q(contact__personal_manager_id__in=ids)


def calls_visible_to(user: Any, queryset: QuerySet[Call] | None = None) -> QuerySet[Call]:
    """The calls ``user`` may see (the call log, its exports, a contact's calls, the live board)."""
    qs = Call.objects.all() if queryset is None else queryset
    ids = users_visible_to(user)
    if ids is None:
        return qs
    if not ids:
        return qs.none()
    return qs.filter(_calls_q(ids))


def calls_restricted_for(user: Any) -> QuerySet[Call] | None:
    """For the reports: None when ``user`` sees every call (the reports may read the rollups), else the
    calls they may see (counted from the call tables)."""
    if users_visible_to(user) is None:
        return None
    return calls_visible_to(user)


def call_visible_to(user: Any, call: Call) -> bool:
    """May ``user`` see this one call (its page, its recordings, a note on it)?"""
    ids = users_visible_to(user)
    if ids is None:
        return True
    if not ids:
        return False
    if call.operator_id in ids or call.initiated_by_id in ids:
        return True
    return calls_visible_to(user, Call.objects.filter(pk=call.pk)).exists()


def call_ids_visible_to_user_id(user_id: int, ids: Iterable[int]) -> set[int]:
    """Which of the calls ``ids`` the user ``user_id`` may see, for a push built without a request (the
    screen pop's card: its "last calls" of the client). One small query in the "all" mode."""
    ids = set(ids)
    if not ids:
        return ids
    if visibility_mode() == AccessSettings.Visibility.ALL:
        return ids
    user = get_user_model()._default_manager.filter(pk=user_id).first()
    if user is None:
        return set()
    return set(calls_visible_to(user, Call.objects.filter(pk__in=ids)).values_list("pk", flat=True))


def call_people(call: Call, *, leg_user_ids: Iterable[int | None] | None = None) -> frozenset[int]:
    """The users a call belongs to (operator, initiated_by, its legs' workplace users, the contact's
    personal manager): what a push decides on with ``people_visible``, once per call, not per socket.

    ``leg_user_ids``: the legs' users when the caller has them already (the realtime push does), else one
    query; the contact's manager is read from ``call.contact`` (one query unless it is loaded).
    """
    if leg_user_ids is None:
        leg_user_ids = call.legs.values_list("workplace__user_id", flat=True)
    manager = call.contact.personal_manager_id if call.contact_id and call.contact else None
    people = {call.operator_id, call.initiated_by_id, manager, *leg_user_ids}
    return frozenset(p for p in people if p is not None)


def people_visible(visible: frozenset[int] | None, people: Iterable[int]) -> bool:
    """``visible`` from ``users_visible_to(user)`` (computed once per socket), ``people`` from
    ``call_people``: may that user see the call? No query."""
    return visible is None or not visible.isdisjoint(people)


def _contacts_q(ids: frozenset[int]) -> Q:
    with_their_calls = Call.objects.filter(_call_people_q(ids), contact_id__isnull=False).values("contact_id")
    return Q(personal_manager_id__in=ids) | Q(created_by_id__in=ids) | Q(pk__in=with_their_calls)


def contacts_visible_to(user: Any, queryset: QuerySet[Contact] | None = None) -> QuerySet[Contact]:
    """The contacts ``user`` may see (the contact list and its search, a contact's page)."""
    qs = Contact.objects.all() if queryset is None else queryset
    ids = users_visible_to(user)
    if ids is None:
        return qs
    if not ids:
        return qs.none()
    return qs.filter(_contacts_q(ids))


def contact_visible_to(user: Any, contact: Contact) -> bool:
    ids = users_visible_to(user)
    if ids is None:
        return True
    if not ids:
        return False
    if contact.personal_manager_id in ids or contact.created_by_id in ids:
        return True
    return contacts_visible_to(user, Contact.objects.filter(pk=contact.pk)).exists()


def recordings_visible_to(user: Any, queryset: QuerySet[Recording] | None = None) -> QuerySet[Recording]:
    qs = Recording.objects.all() if queryset is None else queryset
    ids = users_visible_to(user)
    if ids is None:
        return qs
    if not ids:
        return qs.none()
    return qs.filter(call__in=Call.objects.filter(_calls_q(ids)).values("pk"))


def recording_visible_to(user: Any, recording: Recording) -> bool:
    if users_visible_to(user) is None:
        return True
    return recording.call is not None and call_visible_to(user, recording.call)


def callbacks_visible_to(user: Any, queryset: QuerySet[CallbackTask] | None = None) -> QuerySet[CallbackTask]:
    """Callback tasks ``user`` may see (the "To call back" list and its badge, taking one)."""
    qs = CallbackTask.objects.all() if queryset is None else queryset
    ids = users_visible_to(user)
    if ids is None:
        return qs
    if not ids:
        return qs.none()
    through = CallbackTask.missed_calls.through
    their_calls = Call.objects.filter(_calls_q(ids)).values("pk")
    theirs = through.objects.filter(call__in=their_calls).values("callbacktask_id")
    their_contacts = Contact.objects.filter(_contacts_q(ids)).values("pk")
    return qs.filter(Q(assignee_id=user.pk) | Q(pk__in=theirs) | Q(contact__in=their_contacts))


def task_visible_to(user: Any, task: FollowUpTask) -> bool:
    """Tasks are seen by their assignee, their author, and whoever sees the assignee (supervisors)."""
    ids = users_visible_to(user)
    if ids is None:
        return bool(getattr(user, "is_active", False))
    return task.assignee_id in ids or (task.created_by_id is not None and task.created_by_id == user.pk)


def tasks_visible_to(user: Any, queryset: QuerySet[FollowUpTask] | None = None) -> QuerySet[FollowUpTask]:
    """The follow-up tasks ``user`` may see (as ``task_visible_to``), keeping the queryset's order."""
    qs = FollowUpTask.objects.all() if queryset is None else queryset
    ids = users_visible_to(user)
    if ids is None:
        return qs
    if not ids:
        return qs.none()
    return qs.filter(Q(assignee_id__in=ids) | Q(created_by_id=user.pk))

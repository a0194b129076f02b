"""Reads of the screen pop's pages: the workspace's resync and recent calls, the live board."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from .models import Call, CallbackTask, CallLeg, Direction
from .realtime.cards import (
    ACTIVE_MAX_AGE,
    ENDED,
    RECENT_LIMIT,
    ContactView,
    board_row,
    card,
    contact_view,
    leg_view,
    operator_phase,
)
from .realtime.groups import user_is_supervisor
from .visibility import call_visible_to, calls_visible_to


def _fresh(prefix: str = "") -> Q:
    return Q(**{f"{prefix}updated_at__gte": timezone.now() - ACTIVE_MAX_AGE})


def _only_visible_recent(user: Any, cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop from each card's "last calls" those the user may not see (team mode: another team's)."""
    listed = {old["id"] for c in cards for old in c.get("recent") or []}
    if not listed:
        return cards
    visible = set(calls_visible_to(user, Call.objects.filter(pk__in=listed)).values_list("pk", flat=True))
    for c in cards:
        c["recent"] = [old for old in c.get("recent") or [] if old["id"] in visible]
    return cards


def cards_for_user(*, user: Any) -> list[dict[str, Any]]:
    """The cards an operator should see right now (the page's resync): their live legs' calls."""
    user_id = int(user.pk)
    legs = (
        CallLeg.objects.filter(workplace__user_id=user_id, call__status__in=Call.LIVE_STATUSES)
        .filter(_fresh("call__"))
        .select_related("call", "call__contact", "call__contact__personal_manager", "workplace__user")
        .order_by("call__started_at", "call_id", "leg_id")
    )
    by_call: dict[int, list[CallLeg]] = {}
    for leg in legs:
        by_call.setdefault(leg.call_id, []).append(leg)
    cards = []
    over: list[Call] = []  # still live, but over for this operator (their legs finished or withdrawn)
    for user_legs in by_call.values():
        phase, connected_at = operator_phase(leg_view(leg) for leg in user_legs)
        call = user_legs[0].call
        if phase == ENDED:
            over.append(call)
            continue
        cards.append(card(call, contact=contact_view(call.contact), phase=phase, connected_at=connected_at))
    cards.extend(wrap_up_cards_for_user(user_id=user_id, exclude=set(by_call), over=over))
    cards.extend(missed_cards_for_user(user_id=user_id))
    return _only_visible_recent(user, cards)


WRAP_UP_CARD_LIMIT = 10


def _ended_cards_since() -> datetime | None:
    """Since when an ended call keeps its card on the desk (a wrap-up, a missed notice): the calls that
    ended in the last CALLS_WRAPUP_CARD_MINUTES; None when that is 0 (no such cards)."""
    minutes = settings.CALLS_WRAPUP_CARD_MINUTES
    return timezone.now() - timedelta(minutes=minutes) if minutes > 0 else None


def wrap_up_cards_for_user(
    *, user_id: int, exclude: Collection[int] = (), over: Collection[Call] = ()
) -> list[dict[str, Any]]:
    """Ended calls the operator took and has not wrapped up, within CALLS_WRAPUP_CARD_MINUTES: their
    cards stay on the desk (every page, after a reload) until the wrap-up is saved or put off.

    ``over``: live calls whose legs at this operator's workplace are over. When MTT's final ``finished`` is
    late or lost the call stays "in progress" (until it comes, or calls/reconcile.py closes the call), yet
    the push of the operator's own leg end showed the wrap-up card: the resync gives it back too, for
    CALLS_WRAPUP_CARD_MINUTES after the last notification of the call."""
    since = _ended_cards_since()
    if since is None:
        return []
    waiting = [
        c
        for c in over
        if c.operator_id == user_id and c.wrapped_up_at is None and c.updated_at and c.updated_at >= since
    ]
    calls = (
        Call.objects.filter(operator_id=user_id, wrapped_up_at__isnull=True, ended_at__gte=since)
        .exclude(status__in=Call.LIVE_STATUSES)
        .exclude(pk__in=exclude)
        .select_related("contact", "contact__personal_manager")
        .order_by("ended_at", "pk")[:WRAP_UP_CARD_LIMIT]
    )
    ended = [*calls, *sorted(waiting, key=lambda c: (c.updated_at, c.pk))][:WRAP_UP_CARD_LIMIT]
    return [
        card(c, contact=contact_view(c.contact), phase=ENDED, connected_at=None, recent=False) for c in ended
    ]


MISSED_NOTICE_LIMIT = 10


def missed_cards_for_user(*, user_id: int) -> list[dict[str, Any]]:
    """Incoming calls that rang this operator, nobody answered and ended within CALLS_WRAPUP_CARD_MINUTES,
    whose client nobody has reached since (their callback is open): the desk's red "missed" notices, brought
    back after a reload or on a page opened after the call rang out. ``missed_notice`` marks them; the page
    leaves out the ones the operator closed (tabs.js remembers that)."""
    since = _ended_cards_since()
    if since is None:
        return []
    rang_here = CallLeg.objects.filter(call_id=OuterRef("pk"), workplace__user_id=user_id)
    reached = CallbackTask.missed_calls.through.objects.filter(
        call_id=OuterRef("pk"), callbacktask__closed_at__isnull=False
    )
    calls = (
        Call.objects.filter(
            status__in=Call.MISSED_STATUSES,
            direction=Direction.INCOMING,
            ended_at__gte=since,  # the arrival of its end (the PBX's clock only sets started_at)
        )
        .filter(Exists(rang_here))
        .exclude(Exists(reached))
        .select_related("contact", "contact__personal_manager")
        .order_by("-ended_at", "-pk")[:MISSED_NOTICE_LIMIT]
    )
    cards = []
    for c in reversed(calls):
        payload = card(c, contact=contact_view(c.contact), phase=ENDED, connected_at=None, recent=False)
        payload["missed_notice"] = True
        cards.append(payload)
    return cards


def recent_for_user(*, user_id: int, limit: int = RECENT_LIMIT) -> list[dict[str, Any]]:
    """An operator's last finished calls (the workspace's "recent calls" on page load)."""
    theirs = CallLeg.objects.filter(workplace__user_id=user_id).values("call_id")
    calls = (
        Call.objects.filter(Q(operator_id=user_id) | Q(pk__in=theirs))
        .exclude(status__in=Call.LIVE_STATUSES)
        .select_related("contact", "contact__personal_manager")
        .order_by("-started_at", "-pk")[:limit]
    )
    return [
        card(c, contact=contact_view(c.contact), phase=ENDED, connected_at=None, recent=False) for c in calls
    ]


def board_rows(*, user: Any) -> list[dict[str, Any]]:
    """Every active call the supervisor may see (team mode: their teams'), oldest first (the board's
    resync)."""
    calls = (
        calls_visible_to(user)
        .filter(status__in=Call.LIVE_STATUSES)
        .filter(_fresh())
        .select_related("contact")
        .prefetch_related("legs__workplace__user")
        .order_by("started_at", "pk")
    )
    rows = []
    for c in calls:
        legs = [leg_view(leg) for leg in sorted(c.legs.all(), key=lambda leg: leg.leg_id)]
        contact = ContactView(c.contact.pk, c.contact.name, "", "", "") if c.contact else None
        rows.append(board_row(c, legs, contact))
    return rows


def user_may_see_call(user: Any, call: Call) -> bool:
    """The call rang this user's workplace, they took or placed it, or they supervise and may see it."""
    if user.pk in (call.operator_id, call.initiated_by_id):
        return True
    if call.legs.filter(workplace__user_id=user.pk).exists():
        return True
    return user_is_supervisor(user) and call_visible_to(user, call)

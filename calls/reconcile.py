"""Calls whose last notifications never came, and clicks whose call never did.

The guide promises neither resends nor order (API.md, "What the guide does not promise"): a ``finished``
may never come. Such a call would stay "ringing" or "in conversation" for ever — on the live board, on its
operator's desk, and making its operator busy for routing. Beat runs ``calls_reconcile`` every
``RECONCILE_EVERY_SECONDS`` (calls.tasks.reconcile_calls); it closes a live call that has heard nothing
for longer than any real call would stay silent, as *ended, no notification* (``Call.Status.UNFINISHED``):

- **ringing** (nobody answered yet) and silent for ``RINGING_SILENCE`` (30 min): a ring, queue included,
  ends long before that — the PBX sends ``hiding``/``finished`` for every leg it stops ringing;
- **in conversation** and silent for ``TALKING_SILENCE`` (3 h): a connected call sends nothing until it
  ends, so this bound is the longest conversation we accept before calling the operator free again.
  Sales and support calls last minutes; one past three hours is not a call but a lost ``finished``.

A late notification of such a call still counts: applying it recomputes the call from its legs (a late
``finished`` gives the right end; anything else makes it live again).

Clicks (click-to-call) are linked to their call by the call's notifications (calls.dial); a click no call
answered to within ``DIAL_MATCH_SECONDS`` is marked *expired* here, so the admin's list shows it as such.
It never made anyone busy: a click makes no call row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from webhooks.events import webhook_on_call

from .dial import DIAL_MATCH_SECONDS
from .models import Call, DialRequest
from .realtime.cards import Message, call_closed_messages, contact_view, leg_view
from .realtime.push import push

logger = logging.getLogger(__name__)

RINGING_SILENCE = timedelta(minutes=30)
TALKING_SILENCE = timedelta(hours=3)
# Calls closed per run at most (the next run takes the rest).
BATCH = 500


@dataclass
class Reconciled:
    calls: list[int] = field(default_factory=list)
    clicks_expired: int = 0


def _silent(now: datetime) -> Q:
    return Q(status=Call.Status.RINGING, updated_at__lt=now - RINGING_SILENCE) | Q(
        status=Call.Status.IN_PROGRESS, updated_at__lt=now - TALKING_SILENCE
    )


def calls_reconcile(*, now: datetime | None = None) -> Reconciled:
    """Close the silent live calls and expire the unanswered clicks (idempotent; see the module)."""
    now = now or timezone.now()
    result = Reconciled()
    for call_id in (
        Call.objects.filter(_silent(now)).order_by("updated_at").values_list("pk", flat=True)[:BATCH]
    ):
        if _close(call_id, now):
            result.calls.append(call_id)
    live = [DialRequest.Status.PENDING, DialRequest.Status.PLACED, DialRequest.Status.UNKNOWN]
    result.clicks_expired = DialRequest.objects.filter(
        status__in=live, call__isnull=True, created_at__lt=now - timedelta(seconds=DIAL_MATCH_SECONDS)
    ).update(status=DialRequest.Status.EXPIRED)
    if result.calls or result.clicks_expired:
        logger.warning(
            "Reconciliation: %d call(s) closed with no final notification, %d click(s) with no call",
            len(result.calls),
            result.clicks_expired,
        )
    return result


def _close(call_id: int, now: datetime) -> bool:
    with transaction.atomic():
        # Under the call's row lock, as applying takes it: a notification applied meanwhile wins.
        call = (
            Call.objects.select_for_update(of=("self",))
            .select_related("contact__personal_manager")
            .filter(pk=call_id)
            .filter(_silent(now))
            .first()
        )
        if call is None:
            return False
        last_heard = call.updated_at
        call.status = Call.Status.UNFINISHED
        call.ended_at = last_heard
        if call.answered_at is None:
            call.talk_seconds = None
        call.save(update_fields=["status", "ended_at", "talk_seconds", "updated_at"])
        webhook_on_call(call=call, was_new=False, was_status=Call.Status.RINGING, was_answered=True)
        legs = [leg_view(leg) for leg in call.legs.select_related("workplace__user")]
        messages: list[Message] = call_closed_messages(call, legs=legs, contact=contact_view(call.contact))
        transaction.on_commit(lambda: push(messages), robust=True)
    return True

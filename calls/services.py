"""Writes on calls: applying a call notification, idempotently and in any order.

``call_apply_notification`` is what the applier process (integrations/applier.py) runs for every stored
``callNotifications`` row, inside the transaction that claims it. Read it top to bottom: the rows first (the
leg's facts, the history, the call summarised from all its legs, the client's contact), then what the CRM does
with the call, in order — the routing decision of a parked call, the screen pop, the recording, the callback
queue, the webhooks' outbox — and, after the commit, what leaves the process: the routing command (first:
MTT's 5 s), the pushes to the browsers, the recording's download, the webhooks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from contacts.services import contact_get_or_create_for_number
from integrations.models import NotificationEvent
from integrations.mtt.callinfo import parse_call_info
from integrations.mtt.notifications import CALL_STATES
from mttcrm.rows import row_insert, row_update
from webhooks.events import webhook_on_call

from .callbacks import callback_on_call
from .dial import dial_match_call
from .legs import call_summarise, directory_for, leg_merge, occurred_at
from .models import Call, CallEvent, CallLeg
from .realtime.cards import Message, leg_view_of, screen_pop_messages
from .realtime.push import push
from .recordings.services import recording_register
from .routing import Plan, routing_decide, routing_dispatch
from .rows import Staff, call_contact, call_legs, call_locked, staff_of
from .tasks import download_recording

logger = logging.getLogger(__name__)

# Most legs one call may have. A real call has a few (a queue ringing its operators, transfers: tens at
# most); every notification of a call reads all its legs, so a call key sent with ever new legs (a sender
# who knows the notify URL, a PBX gone wrong) made each apply slower than the last — 100 legs 17 ms, 500
# legs 60 ms per notification — until the applier served nobody else. A new leg past this is ignored (the
# reason in the admin, a warning in the log); the call's own legs still apply.
MAX_LEGS_PER_CALL = 500


@dataclass(frozen=True)
class AfterCommit:
    """What one applied notification sends out once its transaction has committed."""

    call_id: int
    received_at: float  # epoch seconds: the screen pop is timed from the notification's arrival
    plan: Plan | None
    messages: list[Message]
    recording_id: int | None


def call_apply_notification(*, event: NotificationEvent) -> str:
    """Apply one stored callNotifications row. Returns the inbox status it ends in.

    Idempotent: the CallEvent is unique per notification, and everything else is recomputed from
    accumulated facts, so a duplicate, a replay or any order of arrival converges on the same rows.
    """
    info = parse_call_info(event.body)
    if info.state not in CALL_STATES:
        logger.info("Notification %s: unknown call state %r stored and ignored", event.pk, info.state)
        return NotificationEvent.Status.IGNORED
    occurred = occurred_at(info.start_time, received_at=event.received_at)
    # The applier's claim reads the integration's last sync with the row: the directory's version.
    directory = directory_for(event.integration_id, getattr(event, "integration_synced_at", None))
    # Within the applier's transaction (the claim) no savepoint of its own: a failure here rolls the whole
    # apply back anyway, and a savepoint is two round trips per notification.
    with transaction.atomic(savepoint=False):
        call = call_locked(integration_id=event.integration_id, call_key=info.call_key)
        # A row applied before (an admin's "apply again") has its CallEvent: nothing to add. A row never
        # applied cannot have one (the CallEvent commits with the row's status).
        if event.attempts and CallEvent.objects.filter(notification_id=event.pk).exists():
            return NotificationEvent.Status.APPLIED
        # What the call was before this notification: what changed decides what follows (the callbacks).
        was_missed, was_answered = call.status == Call.Status.MISSED, call.answered_at is not None
        was_status = call.status
        legs, staff = call_legs(call.pk)
        # A call with no leg yet is getting its first notification (webhooks: call.started).
        was_new = not legs
        leg = next((x for x in legs if x.leg_id == info.call_id), None)
        if leg is None and len(legs) >= MAX_LEGS_PER_CALL:
            logger.warning(
                "Notification %s: call %s has %d legs already; a new leg is ignored",
                event.pk,
                call.pk,
                len(legs),
            )
            return NotificationEvent.Status.IGNORED
        if leg is None:
            leg = CallLeg(call=call, integration_id=event.integration_id, leg_id=info.call_id)
            legs = sorted([*legs, leg], key=lambda x: x.leg_id)
        leg_merge(leg, info, at=occurred, directory=directory)
        # The rows are written as save() would, by statements built once (mttcrm.rows: the ORM's UPDATE
        # compilation cost more than the statement, three times per notification).
        if leg.pk is None:
            row_insert(leg)
        else:
            row_update(leg)
        # The first leg of this call at that workplace: who works there (and whether they clicked for it).
        new_workplace = leg.workplace_id if leg.workplace_id not in staff else None
        if new_workplace is not None:
            staff[new_workplace] = staff_of(new_workplace)
        row_insert(
            CallEvent(
                call=call,
                leg=leg,
                notification=event,
                state=info.state,
                occurred_at=occurred,
                received_at=event.received_at,
            )
        )
        operators = {wp: person.user_id for wp, person in staff.items()}
        call_summarise(call, legs, operators=operators, directory=directory)
        if new_workplace is not None:
            dial_match_call(call=call, workplace_id=new_workplace, at=event.received_at)
        if call.contact_id is None and call.client_number_raw:
            # The number as received: its extension, if any, is kept on the contact's number; a number that
            # is no phone number finds a contact a person made for it, and makes none.
            call.contact, _created = contact_get_or_create_for_number(number=call.client_number_raw)
        row_update(call)

        # What the CRM does with the call, in this order.
        plan = routing_decide(call=call, leg=leg, info=info, event=event)
        views = [leg_view_of(x, **_who(staff, x.workplace_id)) for x in legs]
        messages = screen_pop_messages(call=call, leg=leg, legs=views, contact=call_contact(call))
        recording_id = recording_register(call=call, leg=leg, info=info, event=event)
        callback_on_call(call=call, was_missed=was_missed, was_answered=was_answered)
        webhook_on_call(call=call, was_new=was_new, was_status=was_status, was_answered=was_answered)

        after = AfterCommit(
            call_id=call.pk,
            received_at=event.received_at.timestamp(),
            plan=plan,
            messages=messages,
            recording_id=recording_id,
        )
        # robust: one notification's failure to send does not keep the batch's others from sending theirs.
        transaction.on_commit(lambda: call_after_commit(after), robust=True)
    return NotificationEvent.Status.APPLIED


def _who(staff: dict[int, Staff], workplace_id: int | None) -> dict[str, Any]:
    person = staff.get(workplace_id) if workplace_id is not None else None
    return {"user_id": person.user_id, "person": person.person} if person else {"user_id": None, "person": ""}


def call_after_commit(after: AfterCommit) -> None:
    """Send out what an applied notification decided. The notification is applied for good by now: a
    failure here is logged, never turned into an error of the notification."""
    # The routing command first: it has MTT's 5 s.
    if after.plan is not None:
        try:
            routing_dispatch(after.plan)
        except Exception:
            logger.warning("Routing: dispatching decision %s failed", after.plan.decision_id, exc_info=True)
    push(after.messages, received_at=after.received_at)
    if after.recording_id is not None:
        try:
            download_recording.delay(after.recording_id)
        except Exception:
            # The recordings sweep queues it again later (calls.tasks.sweep_recordings).
            logger.warning("Recording %s: queueing the download failed", after.recording_id, exc_info=True)

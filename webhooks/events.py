"""The events and their payloads, emitted by the services where things happen (README "Webhooks"):

- calls.services.call_apply_notification, with what the call was before the notification:
  ``call.started`` (its first notification), ``call.answered`` (answered for the first time),
  ``call.missed`` (an incoming call ended unanswered), ``call.finished`` (ended, any outcome);
  calls.reconcile closes silent calls (``call.finished``, status ``unfinished``);
- calls.recordings.services.recording_download: ``recording.stored``;
- calls.callbacks.callback_register_miss: ``callback.created``.

Each event has a stable ``webhook-id`` (``call-12-finished``): stored once per subscription, however
often its cause is applied again. With no subscription to an event, an emit costs a dictionary lookup.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.urls import reverse

from calls.models import Call, CallbackTask

from .models import Event
from .outbox import webhook_emit
from .services import subscribed_to


def call_data(call: Call) -> dict[str, Any]:
    """What a call event carries: the call's own columns (no query)."""
    return {
        "id": call.pk,
        "direction": call.direction,
        "status": call.status,
        "client_number": call.client_number or call.client_number_raw,
        "contact_id": call.contact_id,
        "line_number": call.line_number,
        "operator_id": call.operator_id,
        "initiated_by_id": call.initiated_by_id,
        "started_at": call.started_at,
        "answered_at": call.answered_at,
        "ended_at": call.ended_at,
        "wait_seconds": call.wait_seconds,
        "talk_seconds": call.talk_seconds,
        "end_reason": call.end_reason,
        "api_url": reverse("api:call-detail", args=[call.pk]),
    }


def call_events(*, call: Call, was_new: bool, was_status: str, was_answered: bool) -> list[str]:
    """The events a change of ``call`` makes, given what it was before."""
    events: list[str] = []
    if was_new:
        events.append(Event.CALL_STARTED)
    if call.answered_at is not None and not was_answered:
        events.append(Event.CALL_ANSWERED)
    if was_status in Call.LIVE_STATUSES and call.status not in Call.LIVE_STATUSES:
        if call.status == Call.Status.MISSED:
            events.append(Event.CALL_MISSED)
        events.append(Event.CALL_FINISHED)
    return events


def webhook_on_call(*, call: Call, was_new: bool, was_status: str, was_answered: bool) -> int:
    """In the call's transaction, after it was summarised: emit what changed (only subscribed events)."""
    events = [
        e
        for e in call_events(call=call, was_new=was_new, was_status=was_status, was_answered=was_answered)
        if subscribed_to(e)
    ]
    if not events:
        return 0
    data = call_data(call)
    return sum(
        webhook_emit(event=e, message_id=f"call-{call.pk}-{e.split('.', 1)[1]}", data=data) for e in events
    )


def webhook_on_recording_stored(
    *, recording_id: int, call_id: int | None, size: int | None, duration_seconds: float | None, at: datetime
) -> int:
    if not subscribed_to(Event.RECORDING_STORED):
        return 0
    data = {
        "id": recording_id,
        "call_id": call_id,
        "size": size,
        "duration_seconds": duration_seconds,
        "stored_at": at,
        "api_url": reverse("api:recording-detail", args=[recording_id]),
        "audio_url": reverse("api:recording-audio", args=[recording_id]),
    }
    return webhook_emit(
        event=Event.RECORDING_STORED, message_id=f"recording-{recording_id}-stored", data=data
    )


def webhook_on_callback_created(*, task: CallbackTask, call: Call) -> int:
    if not subscribed_to(Event.CALLBACK_CREATED):
        return 0
    data = {
        "id": task.pk,
        "client_number": task.client_number,
        "contact_id": task.contact_id,
        "assignee_id": task.assignee_id,
        "missed_call_id": call.pk,
        "first_missed_at": task.first_missed_at,
        "api_url": reverse("api:callback-detail", args=[task.pk]),
    }
    return webhook_emit(event=Event.CALLBACK_CREATED, message_id=f"callback-{task.pk}-created", data=data)

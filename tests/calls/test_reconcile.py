"""Calls whose final notifications never came are closed by the reconciliation (issue 17)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.utils import timezone

from calls.models import Call, CallLeg
from calls.realtime.groups import SUPERVISORS_GROUP, operator_group
from calls.reconcile import RINGING_SILENCE, TALKING_SILENCE, calls_reconcile
from calls.routing.decide import manager_is_busy
from calls.tasks import reconcile_calls
from integrations.models import Integration
from monitoring.selectors import integration_health
from tests.calls import payloads as p

pytestmark = pytest.mark.django_db

Notify = Callable[[dict[str, Any]], Any]


def silent_since(call: Call, ago: timedelta) -> None:
    """The call's last notification came ``ago`` (updated_at is what every apply writes)."""
    Call.objects.filter(pk=call.pk).update(updated_at=timezone.now() - ago)


def test_a_ringing_call_that_never_ended_is_closed_and_its_operator_is_free(
    notify: Notify,
    directory: dict[str, Any],
    integration: Integration,
    django_capture_on_commit_callbacks: Any,
) -> None:
    for body in p.incoming_missed()[:3]:  # trying, trying, showing: then nothing more ever comes
        notify(body)
    call = Call.objects.get()
    assert call.status == Call.Status.RINGING
    wp = directory["wp_in"]
    assert manager_is_busy(
        manager_id=directory["ivanova"].pk, workplace_id=wp.pk, call_id=0, now=timezone.now()
    )

    silent_since(call, RINGING_SILENCE - timedelta(minutes=1))
    assert calls_reconcile().calls == []  # a long ring is not a lost one yet

    silent_since(call, RINGING_SILENCE + timedelta(minutes=1))
    with mock.patch("calls.reconcile.push") as push, django_capture_on_commit_callbacks(execute=True):
        assert calls_reconcile().calls == [call.pk]
    call.refresh_from_db()
    assert call.status == Call.Status.UNFINISHED and not call.is_live
    assert call.get_status_display() == "Завершён без уведомления"  # what the Russian UI shows
    assert call.ended_at is not None and call.talk_seconds is None
    assert not manager_is_busy(
        manager_id=directory["ivanova"].pk, workplace_id=wp.pk, call_id=0, now=timezone.now()
    )
    # The operator's card goes and the live board's row with it, at once.
    [messages] = [c.args[0] for c in push.call_args_list]
    kinds = {(group, message["type"]) for group, message in messages}
    assert kinds == {
        (operator_group(directory["ivanova"].pk), "call.hide"),
        (SUPERVISORS_GROUP, "board.remove"),
    }
    # Counted on the health panel; a second run changes nothing.
    assert integration_health(integration).calls_unfinished_24h == 1
    assert calls_reconcile().calls == []


def test_a_conversation_is_given_hours_before_it_counts_as_lost(
    notify: Notify, directory: dict[str, Any]
) -> None:
    for body in p.incoming_answered()[:4]:  # up to connected: in conversation, and then silence
        notify(body)
    call = Call.objects.get()
    assert call.status == Call.Status.IN_PROGRESS
    silent_since(call, RINGING_SILENCE * 4)
    assert calls_reconcile().calls == []
    silent_since(call, TALKING_SILENCE + timedelta(minutes=1))
    assert reconcile_calls() == 1  # the beat task
    call.refresh_from_db()
    assert call.status == Call.Status.UNFINISHED
    assert call.answered_at is not None  # it was answered: the reports count it so


def test_a_late_finished_still_gives_the_right_end(notify: Notify, directory: dict[str, Any]) -> None:
    bodies = p.incoming_answered(talk=42)
    for body in bodies[:4]:
        notify(body)
    call = Call.objects.get()
    silent_since(call, TALKING_SILENCE + timedelta(minutes=1))
    calls_reconcile()
    for body in bodies[4:]:  # the two finished, late after all
        notify(body)
    call.refresh_from_db()
    assert call.status == Call.Status.ANSWERED and call.talk_seconds == 42
    assert CallLeg.objects.filter(finished_at__isnull=False).count() == 2


def test_ended_calls_are_left_alone(notify: Notify, directory: dict[str, Any]) -> None:
    for body in p.incoming_missed():
        notify(body)
    call = Call.objects.get()
    silent_since(call, timedelta(days=2))
    assert calls_reconcile().calls == []
    call.refresh_from_db()
    assert call.status == Call.Status.MISSED

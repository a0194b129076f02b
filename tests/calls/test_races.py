"""Concurrency on PostgreSQL: duplicate storms at the notify URL, then several appliers applying the rows
of one call (or one new number) at the same instant, one row per batch each."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from calls.models import Call, CallEvent, CallLeg
from contacts.models import Contact
from integrations.applier import applier_drain
from integrations.models import Integration, NotificationEvent
from tests.calls import payloads as p
from tests.concurrency import at_once

pytestmark = pytest.mark.django_db(transaction=True)


def storm(integration: Integration, bodies: list[dict[str, Any]]) -> list[int]:
    """POST each body from its own thread, all released at once."""

    def poster(body: dict[str, Any]) -> Callable[[], int]:
        data = json.dumps(body, ensure_ascii=False)
        return lambda: (
            Client().post(integration.notify_path, data=data, content_type="application/json").status_code
        )

    return at_once([poster(body) for body in bodies], timeout=60)


def appliers(count: int = 4) -> None:
    """``count`` appliers draining the queue at once, one notification per batch each (compose may run
    several applier containers)."""
    at_once([lambda: applier_drain(limit=1) for _ in range(count)], timeout=60)
    assert not NotificationEvent.objects.filter(status=NotificationEvent.Status.PENDING).exists()


def test_same_notification_ten_times_at_once_is_stored_and_applied_once(
    postgres_only: None, integration: Integration, directory: dict[str, Any]
) -> None:
    body = p.incoming_answered()[0]
    statuses = storm(integration, [body] * 10)
    assert statuses == [200] * 10
    assert NotificationEvent.objects.count() == 1
    appliers()
    assert NotificationEvent.objects.get().status == NotificationEvent.Status.APPLIED
    assert CallEvent.objects.count() == 1
    assert Call.objects.count() == 1
    assert CallLeg.objects.count() == 1
    assert Contact.objects.count() == 1


def test_every_notification_of_a_call_at_once_gives_one_call(
    postgres_only: None, integration: Integration, directory: dict[str, Any]
) -> None:
    bodies = p.incoming_answered(talk=42)
    statuses = storm(integration, bodies + bodies)  # and each one doubled
    assert statuses == [200] * len(bodies) * 2
    assert NotificationEvent.objects.count() == len(bodies)
    appliers()
    assert set(NotificationEvent.objects.values_list("status", flat=True)) == {
        NotificationEvent.Status.APPLIED
    }
    call = Call.objects.get()
    assert call.status == Call.Status.ANSWERED
    assert call.talk_seconds == 42
    assert call.events.count() == len(bodies)
    assert CallLeg.objects.count() == 2
    assert Contact.objects.count() == 1


def test_calls_from_one_new_number_at_once_create_one_contact(
    postgres_only: None, integration: Integration, directory: dict[str, Any]
) -> None:
    bodies = [p.incoming_answered(base=f"call{i}", client="+79990001122")[0] for i in range(8)]
    assert storm(integration, bodies) == [200] * 8
    appliers()
    assert Call.objects.count() == 8
    assert Contact.objects.count() == 1
    assert set(Call.objects.values_list("contact", flat=True)) == {Contact.objects.get().pk}

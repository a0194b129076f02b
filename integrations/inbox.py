"""The notification inbox: store first, acknowledge, then apply (DESIGN.md "Data flows one way")."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from mttcrm import metrics

from .models import Integration, NotificationEvent
from .mtt.notifications import DIRECTORY_EVENT_TYPES, VPBX_EVENTS, Envelope

logger = logging.getLogger(__name__)

# event name -> function applying a stored notification; returns the final status.
Applier = Callable[[NotificationEvent], str]
LAST_SEEN_RESOLUTION = timedelta(seconds=1)
APPLIERS: dict[str, Applier] = {}
# When the notification really arrived, if not now: the spool replays notifications received while
# the database was down (integrations/spool.py), through the notify view, with their own time.
_RECEIVED_AT: ContextVar[datetime | None] = ContextVar("mtt_notification_received_at", default=None)


@contextmanager
def receiving_at(when: datetime) -> Iterator[None]:
    """Notifications stored inside this block count as received at ``when`` (routing deadlines, order)."""
    token = _RECEIVED_AT.set(when)
    try:
        yield
    finally:
        _RECEIVED_AT.reset(token)


def register_applier(event: str, applier: Applier) -> None:
    APPLIERS[event] = applier


def notification_receive(*, integration: Integration, envelope: Envelope) -> tuple[NotificationEvent, bool]:
    """Store a notification once (by fingerprint). Returns (row, created)."""
    fp = envelope.fingerprint
    now = _RECEIVED_AT.get() or timezone.now()
    row = NotificationEvent(
        integration=integration, event=envelope.event, body=envelope.body, fingerprint=fp, received_at=now
    )
    try:
        if transaction.get_connection().in_atomic_block:
            with transaction.atomic():  # a savepoint, so a duplicate does not break the caller's transaction
                row.save(force_insert=True)
        else:
            row.save(force_insert=True)  # one INSERT in autocommit: committed before we answer
        event = row
    except IntegrityError:
        # A duplicate: the first copy is stored (and applied) already.
        return NotificationEvent.objects.get(integration=integration, fingerprint=fp), False
    # At most one write a second to the integration row: a busy line must not queue on its lock.
    Integration.objects.filter(pk=integration.pk).filter(
        Q(last_notification_at__isnull=True) | Q(last_notification_at__lt=now - LAST_SEEN_RESOLUTION)
    ).update(last_notification_at=now)
    return event, True


def _apply_vpbx(event: NotificationEvent) -> str:
    from .services import integration_request_sync

    event_type = (event.body.get("result") or {}).get("eventType")
    if event_type in DIRECTORY_EVENT_TYPES:
        integration_request_sync(integration_id=event.integration_id)
        return NotificationEvent.Status.APPLIED
    logger.info("Notification %s: unknown vpbx eventType %r stored and ignored", event.pk, event_type)
    return NotificationEvent.Status.IGNORED


for _name in VPBX_EVENTS:
    register_applier(_name, _apply_vpbx)


def notification_apply(*, event_id: int, event: NotificationEvent | None = None) -> str:
    """Apply one stored, still pending notification.

    Appliers are idempotent (the calls app keys its events on the notification), so the inline apply
    after receiving and a later sweep may both run: the second finds the work done.
    """
    if event is None:
        event = NotificationEvent.objects.filter(pk=event_id, status=NotificationEvent.Status.PENDING).first()
    if event is None or event.status != NotificationEvent.Status.PENDING:
        return "gone"
    applier = APPLIERS.get(event.event)
    status: str
    if applier is None:
        # Unknown events are kept (someone may want them later) and acknowledged.
        logger.info("Notification %s: unknown event %r stored", event.pk, event.event)
        status = NotificationEvent.Status.IGNORED
    else:
        try:
            status = applier(event)
        except Exception as exc:
            logger.exception("Notification %s: applying failed", event.pk)
            metrics.notification_apply_failed()
            NotificationEvent.objects.filter(pk=event_id).update(
                attempts=F("attempts") + 1, error=f"{type(exc).__name__}: {exc}"[:2000]
            )
            raise
    NotificationEvent.objects.filter(pk=event_id).update(
        status=status, applied_at=timezone.now(), error="", attempts=F("attempts") + 1
    )
    metrics.notification_applied(status)
    return status


def notification_reapply(*, event_id: int) -> str:
    """An admin's "apply again": put the row back to pending and apply it (idempotent)."""
    NotificationEvent.objects.filter(pk=event_id).update(status=NotificationEvent.Status.PENDING, error="")
    return notification_apply(event_id=event_id)


def notification_sweep(*, older_than_seconds: float, max_attempts: int) -> list[int]:
    """Pending rows left behind (a crash between commit and apply, a failed apply): the ids to retry.

    Rows that failed ``max_attempts`` times are marked failed, for a person to look at (admin).
    """
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    pending = NotificationEvent.objects.filter(
        status=NotificationEvent.Status.PENDING, received_at__lt=cutoff
    )
    exhausted = pending.filter(attempts__gte=max_attempts).update(status=NotificationEvent.Status.FAILED)
    if exhausted:
        logger.error("Inbox: %s notification(s) failed %s times and were set aside", exhausted, max_attempts)
    return list(
        pending.filter(attempts__lt=max_attempts).order_by("received_at").values_list("pk", flat=True)[:1000]
    )

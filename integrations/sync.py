"""Directory changes notified by MTT (guide §9.4, §9.5: ``numbersChanged`` / ``workplacesChanged``): a sync,
debounced, so that a burst of changes gives one sync."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import Integration, NotificationEvent
from .mtt.notifications import directory_event_type
from .tasks import sync_integration

logger = logging.getLogger(__name__)


def integration_request_sync(*, integration_id: int) -> bool:
    """Ask for a directory sync, debounced: a burst of change notifications gives one sync.

    The first request of a burst claims ``sync_requested_at`` and schedules the sync a little later;
    the others see the claim and do nothing. The sync task releases the claim when it starts, so a
    change that arrives during a sync schedules another one. Returns whether a sync was scheduled.
    """
    now = timezone.now()
    # A claim older than this is from a sync that never ran (lost task): take it over.
    stale = now - timedelta(seconds=max(60.0, settings.MTT_SYNC_DEBOUNCE_SECONDS * 10))
    claimed = (
        Integration.objects.filter(pk=integration_id)
        .filter(Q(sync_requested_at__isnull=True) | Q(sync_requested_at__lt=stale))
        .update(sync_requested_at=now)
    )
    if claimed == 1:
        transaction.on_commit(
            lambda: sync_integration.apply_async(
                args=(integration_id,), countdown=settings.MTT_SYNC_DEBOUNCE_SECONDS
            )
        )
        return True
    return False


def integration_apply_directory_notification(*, event: NotificationEvent) -> str:
    """Apply one stored ``vpbxNotifications`` row (the applier): a directory change asks for a sync."""
    event_type = directory_event_type(event.body)  # any casing MTT writes it in (guide §9.4)
    if event_type is not None:
        integration_request_sync(integration_id=event.integration_id)
        return NotificationEvent.Status.APPLIED
    logger.info(
        "Notification %s: vpbx eventType %r is not a directory change; stored and ignored",
        event.pk,
        (event.body.get("result") or {}).get("eventType") if isinstance(event.body, dict) else None,
    )
    return NotificationEvent.Status.IGNORED

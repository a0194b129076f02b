"""Celery tasks of the MTT side. Thin: they take ids, re-read the world and call services."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from .models import Integration
from .mtt.errors import MttTransientError
from .parking import parking_reapply
from .services import integration_expire_notify_tokens, integration_sync_directory
from .tokens import integration_keep_alive

logger = logging.getLogger(__name__)


@shared_task(
    name="integrations.tasks.sync_integration",
    autoretry_for=(MttTransientError,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
)
def sync_integration(integration_id: int, reapply_parking: bool = False) -> str:
    """Sync the directory; after a (re)connection also tell MTT again which numbers park."""
    # Release the debounce claim first: a change notified during this sync schedules another one.
    Integration.objects.filter(pk=integration_id).update(sync_requested_at=None)
    if not Integration.objects.filter(pk=integration_id, status=Integration.Status.CONNECTED).exists():
        logger.info("Integration %s not connected: sync skipped", integration_id)
        return "skipped"
    result = str(integration_sync_directory(integration_id=integration_id))
    if reapply_parking:
        parking_reapply(integration_id=integration_id)
    return result


@shared_task(name="integrations.tasks.sync_all")
def sync_all() -> int:
    ids = list(Integration.objects.filter(status=Integration.Status.CONNECTED).values_list("pk", flat=True))
    for pk in ids:
        sync_integration.delay(pk)
    return len(ids)


@shared_task(name="integrations.tasks.refresh_tokens")
def refresh_tokens() -> int:
    """Beat: keep every connected integration's tokens alive (API.md: refresh token lives 3 days)."""
    # Refresh whatever would expire before the next run (plus the usual margin).
    horizon = timedelta(seconds=settings.MTT_REFRESH_EVERY_SECONDS * 1.5 + settings.MTT_TOKEN_REFRESH_MARGIN)
    refreshed = 0
    for pk in Integration.objects.filter(status=Integration.Status.CONNECTED).values_list("pk", flat=True):
        try:
            refreshed += integration_keep_alive(integration_id=pk, within=horizon)
        except Exception:
            # One integration's failure (already recorded on its row) must not stop the others.
            logger.warning("Integration %s: keep-alive refresh failed", pk, exc_info=True)
    return refreshed


@shared_task(name="integrations.tasks.expire_notify_tokens")
def expire_notify_tokens() -> int:
    """Beat: clear previous notify tokens whose grace period is over (refused already on arrival)."""
    return integration_expire_notify_tokens()

"""Celery tasks of the MTT side. Thin: they take ids, re-read the world and call services."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from .models import Integration
from .mtt.errors import MttTransientError

logger = logging.getLogger(__name__)


@shared_task(
    name="integrations.tasks.sync_integration",
    autoretry_for=(MttTransientError,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
)
def sync_integration(integration_id: int) -> str:
    from .services import integration_sync_directory

    # Release the debounce claim first: a change notified during this sync schedules another one.
    Integration.objects.filter(pk=integration_id).update(sync_requested_at=None)
    if not Integration.objects.filter(pk=integration_id, status=Integration.Status.CONNECTED).exists():
        logger.info("Integration %s not connected: sync skipped", integration_id)
        return "skipped"
    return str(integration_sync_directory(integration_id=integration_id))


@shared_task(name="integrations.tasks.sync_all")
def sync_all() -> int:
    ids = list(Integration.objects.filter(status=Integration.Status.CONNECTED).values_list("pk", flat=True))
    for pk in ids:
        sync_integration.delay(pk)
    return len(ids)


@shared_task(name="integrations.tasks.refresh_tokens")
def refresh_tokens() -> int:
    """Beat: keep every connected integration's tokens alive (API.md: refresh token lives 3 days)."""
    from .services import integration_keep_alive

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


# Idempotent (only a pending row is applied; the CallEvent is unique per notification): acknowledged
# after it ran, and delivered again when its worker died mid-way (SIGKILL, OOM).
@shared_task(
    name="integrations.tasks.apply_notification", acks_late=True, reject_on_worker_lost=True, max_retries=5
)
def apply_notification(event_id: int) -> str:
    from .inbox import notification_apply

    return notification_apply(event_id=event_id)


@shared_task(name="integrations.tasks.sweep_inbox")
def sweep_inbox() -> int:
    """Beat: re-apply notifications left pending (a crash between storing and applying, a failure)."""
    from mttcrm.health import applier_sessions

    from .inbox import notification_sweep

    # With an applier listening (NOTIFY_APPLY_IN=applier), rows nobody has tried yet are its backlog.
    appliers_listen = settings.NOTIFY_APPLY_IN == "applier" and applier_sessions() > 0
    ids = notification_sweep(
        older_than_seconds=settings.INBOX_SWEEP_AFTER_SECONDS,
        max_attempts=settings.INBOX_MAX_ATTEMPTS,
        failed_only=appliers_listen,
    )
    for pk in ids:
        apply_notification.delay(pk)
    return len(ids)


@shared_task(name="integrations.tasks.expire_notify_tokens")
def expire_notify_tokens() -> int:
    """Beat: clear previous notify tokens whose grace period is over (refused already on arrival)."""
    from .services import integration_expire_notify_tokens

    return integration_expire_notify_tokens()


@shared_task(name="integrations.tasks.spool_replay", acks_late=True, reject_on_worker_lost=True)
def spool_replay() -> str:
    """Beat and worker start: store the notifications spooled while the database was down."""
    from .spool import spool_replay as replay

    return str(replay())


@worker_ready.connect
def _replay_spool_when_a_worker_starts(sender: Any = None, **kwargs: Any) -> None:
    # A worker (re)started after an outage finds what the web process spooled meanwhile.
    try:
        spool_replay.delay()
    except Exception:
        logger.warning("Could not queue the spool replay at worker start", exc_info=True)

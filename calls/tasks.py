"""Celery tasks of the calls app. Thin: they take ids, re-read the world and call services."""

from __future__ import annotations

import logging

from celery import Task, shared_task

from .reconcile import calls_reconcile
from .recordings.errors import RecordingTransientError
from .recordings.services import recording_download, recordings_apply_retention, recordings_sweep
from .reports.rollups import rollups_refresh

logger = logging.getLogger(__name__)

# Retries of one enqueued download (30 s, 1, 2, 4, 8, 16 min with jitter); after that the sweep
# re-queues the recording hourly until it is stored or MTT has deleted it.
DOWNLOAD_MAX_RETRIES = 6


@shared_task(
    name="calls.tasks.download_recording",
    bind=True,
    autoretry_for=(RecordingTransientError,),
    retry_backoff=30,
    retry_backoff_max=1800,
    retry_jitter=True,
    max_retries=DOWNLOAD_MAX_RETRIES,
    # Idempotent (a conditional claim; the file appears atomically), so a task lost with its
    # worker is simply delivered again.
    acks_late=True,
    reject_on_worker_lost=True,
)
def download_recording(self: Task, recording_id: int) -> str:
    return str(recording_download(recording_id=recording_id, claim_token=self.request.id or ""))


@shared_task(name="calls.tasks.sweep_recordings")
def sweep_recordings() -> int:
    """Beat: reclaim stale downloads, re-queue recordings still missing, flag those expiring at MTT."""
    result = recordings_sweep()
    for pk in result.requeue:
        download_recording.delay(pk)
    return len(result.requeue)


@shared_task(name="calls.tasks.recordings_retention")
def recordings_retention() -> int:
    """Beat, daily: delete local copies older than RECORDINGS_KEEP_DAYS."""
    return recordings_apply_retention()


@shared_task(name="calls.tasks.refresh_report_rollups")
def refresh_report_rollups() -> int:
    """Beat: rebuild the report rollups of the recent hours (idempotent; skipped while another
    rebuild runs)."""
    return rollups_refresh().hour_rows


@shared_task(name="calls.tasks.reconcile_calls")
def reconcile_calls() -> int:
    """Beat: close live calls whose final notifications never came; expire clicks no call answered."""
    return len(calls_reconcile().calls)

"""Writes on recordings: registering a `recorded` notification, the download, the sweep, retention."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations.models import NotificationEvent
from integrations.mtt import ratelimit
from integrations.mtt.callinfo import CallInfo
from integrations.mtt.errors import MttError
from integrations.mtt.ratelimit import Priority
from integrations.tokens import integration_access_token, integration_refresh_tokens
from monitoring import metrics
from webhooks.events import webhook_on_recording_stored

from ..models import Call, CallLeg, Recording, RecordingAccess
from . import mp3
from .download import Access, fetch_recording
from .errors import RecordingPermanentError, RecordingRefused, RecordingTransientError
from .storage import recording_file_delete, recording_storage_key, staged_file

logger = logging.getLogger(__name__)

RECORDED = "recorded"
MAX_URL_LENGTH = 2000
# A row whose last attempt failed transiently is re-queued by the sweep after this long (the task's
# own retries with backoff have run out by then).
REQUEUE_AFTER = timedelta(hours=1)
# The on-commit enqueue normally runs at once; the sweep picks up rows it never reached (broker down).
NEVER_TRIED_AFTER = timedelta(minutes=2)
# Past MTT's keep period by this much and still not downloaded: stop trying.
GIVE_UP_AFTER_EXPIRY = timedelta(days=7)
SWEEP_BATCH = 500


def _exact_url_record(body: Any) -> str:
    """urlRecord exactly as sent (the parsed CallInfo trims fields to 255 characters)."""
    try:
        url = body["result"]["callInfo"]["urlRecord"]
    except (KeyError, TypeError):
        return ""
    return url if isinstance(url, str) and 0 < len(url) <= MAX_URL_LENGTH else ""


# --- a `recorded` notification (calls.services.call_apply_notification) -----------------------------


def recording_register(*, call: Call, leg: CallLeg, info: CallInfo, event: NotificationEvent) -> int | None:
    """A `recorded` notification makes a pending Recording for its leg; returns its id when it waits for a
    download (the caller queues the download after the commit), else None.

    The Call and the CallLeg of this Call-ID exist by now (a `recorded` arriving first creates them; later
    notifications of the leg land on the same rows), so the recording is linked from the start.
    """
    if info.state != RECORDED:
        return None
    url = _exact_url_record(event.body)
    if not url:
        logger.warning("Notification %s: recorded without a usable urlRecord", event.pk)
        return None
    received = event.received_at
    recording, created = Recording.objects.get_or_create(
        integration_id=event.integration_id,
        source_url=url,
        defaults={
            "call": call,
            "leg": leg,
            "notification": event,
            "leg_call_id": info.call_id,
            "storage_key": recording_storage_key(
                received_at=received, name=call.call_key or info.call_id, source_url=url
            ),
            "mtt_expires_at": received + timedelta(days=settings.RECORDINGS_MTT_KEEP_DAYS),
        },
    )
    if not created and recording.call_id is None:
        Recording.objects.filter(pk=recording.pk, call__isnull=True).update(call=call, leg=leg)
    logger.info(
        "Recording %s %s for call %s", recording.pk, "registered" if created else "already known", call.pk
    )
    return recording.pk if recording.status == Recording.Status.PENDING else None


# --- the download --------------------------------------------------------------------------------


def _access_token(recording: Recording) -> str:
    try:
        return integration_access_token(integration=recording.integration)
    except MttError as exc:
        # Reconnecting the integration or MTT coming back fixes it: keep the recording pending.
        raise RecordingTransientError(f"no MTT access token: {exc.message}") from exc


def _refreshed_token(recording: Recording, stale: str) -> str:
    """A new access token after the record host answered 401 to ``stale``: the same single-flight
    refresh the API client uses (whoever refreshed first wins; the others get that token)."""
    try:
        return integration_refresh_tokens(integration_id=recording.integration_id, stale_access_token=stale)
    except MttError as exc:
        # The refresh was refused (the integration needs reconnecting) or MTT is unreachable: an
        # admin's Reconnect or time fixes it, so the recording stays pending (the sweep re-queues it).
        raise RecordingTransientError(
            f"the record host answered 401 and the token could not be refreshed: {exc.message}"
        ) from exc


def _permit(recording: Recording) -> None:
    """A permit of the shared MTT limiter at the lowest priority: record links are on MTT's API host
    and its 5 requests/s are per integration (guide §6.7), so a sweep must not starve routing."""
    try:
        waited = ratelimit.acquire(recording.integration_id, priority=Priority.DOWNLOAD)
    except MttError as exc:
        raise RecordingTransientError(f"no permit from the MTT rate limiter: {exc.message}") from exc
    metrics.mtt_limiter_wait(waited)


def _access(recording: Recording) -> Access:
    return Access(
        token=lambda: _access_token(recording),
        refreshed=lambda stale: _refreshed_token(recording, stale),
        permit=lambda: _permit(recording),
    )


def recording_download(*, recording_id: int, claim_token: str = "") -> str:
    """Copy one recording into storage; returns the status it ends in.

    Idempotent: only a `pending` row is claimed (conditional update), so a stored recording, one
    being downloaded, or a duplicate task does nothing. ``claim_token`` (the task id) lets the same
    task, delivered again because its worker died, take back its own claim at once. Raises
    RecordingTransientError (after putting the row back to pending) for the task to retry.
    """
    claimed_at = timezone.now()
    claimable = Q(status=Recording.Status.PENDING)
    if claim_token:
        claimable |= Q(status=Recording.Status.DOWNLOADING, claimed_by=claim_token)
    claimed = Recording.objects.filter(claimable, pk=recording_id).update(
        status=Recording.Status.DOWNLOADING,
        claimed_at=claimed_at,
        claimed_by=claim_token,
        last_attempt_at=claimed_at,
        attempts=F("attempts") + 1,
    )
    if claimed != 1:
        current = Recording.objects.filter(pk=recording_id).values_list("status", flat=True).first()
        logger.info("Recording %s is %s: nothing to download", recording_id, current or "gone")
        metrics.recording_download("skipped")
        return current or "missing"
    recording = Recording.objects.select_related("integration").get(pk=recording_id)
    # Every later write is conditional on still holding this claim (the sweep may reclaim it).
    mine = Recording.objects.filter(
        pk=recording_id, status=Recording.Status.DOWNLOADING, claimed_at=claimed_at
    )
    try:
        with staged_file(key=recording.storage_key) as staged:
            fetched = fetch_recording(
                recording.source_url,
                out=staged.file,
                access=_access(recording),
                max_bytes=settings.RECORDINGS_MAX_BYTES,
            )
            duration = mp3.duration_seconds(staged.file, fetched.size)
            if duration is None:
                raise RecordingPermanentError("no MPEG audio frame found")
            key = staged.commit()
    except RecordingRefused as exc:
        logger.warning("Recording %s refused: %s", recording_id, exc.reason)
        mine.update(status=Recording.Status.REFUSED, failure_reason=exc.reason, claimed_at=None)
        metrics.recording_download(Recording.Status.REFUSED)
        return Recording.Status.REFUSED
    except RecordingPermanentError as exc:
        status = Recording.Status.FAILED
        if exc.gone and (exc.status_code == 410 or timezone.now() >= recording.mtt_expires_at):
            status = Recording.Status.EXPIRED
        logger.warning("Recording %s %s: %s", recording_id, status, exc.reason)
        mine.update(status=status, failure_reason=exc.reason, claimed_at=None)
        metrics.recording_download(status)
        return status
    except RecordingTransientError as exc:
        logger.info("Recording %s: %s (attempt %s, will retry)", recording_id, exc.reason, recording.attempts)
        mine.update(status=Recording.Status.PENDING, failure_reason=exc.reason, claimed_at=None)
        metrics.recording_download("retry")
        raise
    except BaseException as exc:
        # A bug or a shutdown: give the row back so that the sweep (or a retry) finishes it.
        mine.update(
            status=Recording.Status.PENDING,
            failure_reason=f"interrupted: {type(exc).__name__}",
            claimed_at=None,
        )
        metrics.recording_download("error")
        raise
    stored_at = timezone.now()
    # The webhooks' outbox row commits with the status (recording.stored).
    with transaction.atomic():
        updated = mine.update(
            status=Recording.Status.STORED,
            storage_key=key,
            size=fetched.size,
            sha256=fetched.sha256,
            duration_seconds=duration,
            content_type=fetched.content_type,
            stored_at=stored_at,
            failure_reason="",
            expiring_soon=False,
            claimed_at=None,
        )
        if updated == 1:
            webhook_on_recording_stored(
                recording_id=recording_id,
                call_id=recording.call_id,
                size=fetched.size,
                duration_seconds=duration,
                at=stored_at,
            )
    if updated != 1:
        logger.warning("Recording %s stored, but its claim was taken over meanwhile", recording_id)
    else:
        logger.info("Recording %s stored: %s bytes, %.1f s", recording_id, fetched.size, duration)
    metrics.recording_download(Recording.Status.STORED)
    return Recording.Status.STORED


# --- periodic work -------------------------------------------------------------------------------


@dataclass
class SweepResult:
    requeue: list[int] = field(default_factory=list)
    reclaimed: int = 0
    flagged: int = 0
    given_up: int = 0


def recordings_sweep(*, now: datetime | None = None) -> SweepResult:
    """Beat: take back stale claims, pick the recordings still missing, flag those MTT deletes soon.

    Returns the ids to enqueue (the task enqueues them).
    """
    now = now or timezone.now()
    result = SweepResult()
    stale = now - timedelta(seconds=settings.RECORDINGS_STALE_CLAIM_SECONDS)
    # A worker killed mid-download never released its claim; its temporary file is removed by the
    # next attempt on the same key.
    stale_claims = Recording.objects.filter(status=Recording.Status.DOWNLOADING, claimed_at__lt=stale)
    stale_ids = list(stale_claims.values_list("pk", flat=True)[:SWEEP_BATCH])
    result.reclaimed = stale_claims.filter(pk__in=stale_ids).update(
        status=Recording.Status.PENDING, claimed_at=None, failure_reason="the download was interrupted"
    )
    result.given_up = Recording.objects.filter(
        status=Recording.Status.PENDING, mtt_expires_at__lt=now - GIVE_UP_AFTER_EXPIRY
    ).update(status=Recording.Status.EXPIRED, failure_reason="not downloaded before MTT deleted it")
    result.requeue = list(
        Recording.objects.filter(status=Recording.Status.PENDING)
        .filter(
            Q(pk__in=stale_ids)
            | Q(last_attempt_at__lt=now - REQUEUE_AFTER)
            | Q(last_attempt_at__isnull=True, created_at__lt=now - NEVER_TRIED_AFTER)
        )
        .order_by("mtt_expires_at", "pk")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    horizon = now + timedelta(days=settings.RECORDINGS_EXPIRY_WARNING_DAYS)
    result.flagged = Recording.objects.filter(
        status__in=[Recording.Status.PENDING, Recording.Status.DOWNLOADING, Recording.Status.FAILED],
        expiring_soon=False,
        mtt_expires_at__lt=horizon,
    ).update(expiring_soon=True)
    if result.flagged:
        logger.warning(
            "%s recording(s) not stored yet will be deleted at MTT within %s days (Admin → Recordings)",
            result.flagged,
            settings.RECORDINGS_EXPIRY_WARNING_DAYS,
        )
    return result


def recordings_apply_retention(*, now: datetime | None = None) -> int:
    """Daily: delete local copies older than RECORDINGS_KEEP_DAYS (None keeps them). Returns the count."""
    days = settings.RECORDINGS_KEEP_DAYS
    if days is None:
        return 0
    now = now or timezone.now()
    old = Recording.objects.filter(status=Recording.Status.STORED, created_at__lt=now - timedelta(days=days))
    deleted = 0
    for pk, key in old.values_list("pk", "storage_key").iterator():
        # File first: a crash in between leaves the row stored and the next run deletes again.
        recording_file_delete(key=key)
        deleted += Recording.objects.filter(pk=pk, status=Recording.Status.STORED).update(
            status=Recording.Status.DELETED, deleted_at=now
        )
    if deleted:
        logger.info("Retention: %s recording file(s) older than %s days deleted", deleted, days)
    return deleted


# --- admin and playback --------------------------------------------------------------------------


def recordings_requeue(*, recording_ids: list[int]) -> list[int]:
    """ "Download again": put the chosen rows (not stored, not being downloaded) back to pending. Returns the
    ids for the caller to queue (calls.tasks.download_recording)."""
    rows = Recording.objects.filter(pk__in=recording_ids).exclude(
        status__in=[Recording.Status.STORED, Recording.Status.DOWNLOADING]
    )
    ids = list(rows.values_list("pk", flat=True))
    Recording.objects.filter(pk__in=ids).update(
        status=Recording.Status.PENDING, failure_reason="", claimed_at=None, deleted_at=None
    )
    return ids


def recording_access_log(*, recording: Recording, user: Any, action: str, ip: str | None) -> RecordingAccess:
    return RecordingAccess.objects.create(
        recording=recording, user=user if getattr(user, "pk", None) else None, action=action, ip=ip or None
    )

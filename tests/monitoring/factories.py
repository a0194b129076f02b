"""Hand-made rows for the health tests."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from django.utils import timezone

from calls.models import Recording
from integrations.models import Integration, MttRequestLog, NotificationEvent

_seq = itertools.count(1)


def notification(
    integration: Integration, *, received_at: datetime, status: str = NotificationEvent.Status.APPLIED
) -> NotificationEvent:
    n = next(_seq)
    return NotificationEvent.objects.create(
        integration=integration,
        received_at=received_at,
        event="callNotifications",
        body={"n": n},
        fingerprint=f"fp-{n}",
        status=status,
    )


def request_log(
    integration: Integration,
    *,
    method: str,
    at: datetime,
    ok: bool = True,
    wait_ms: int = 0,
    duration_ms: int = 100,
) -> MttRequestLog:
    return MttRequestLog.objects.create(
        integration=integration,
        method=method,
        status_code=200 if ok else 500,
        ok=ok,
        error="" if ok else "HTTP 500",
        duration_ms=duration_ms,
        limiter_wait_ms=wait_ms,
        created_at=at,
    )


def recording(
    integration: Integration,
    *,
    status: str,
    last_attempt_at: datetime | None = None,
    mtt_expires_at: datetime | None = None,
) -> Recording:
    n = next(_seq)
    return Recording.objects.create(
        integration=integration,
        leg_call_id=f"call-{n}",
        source_url=f"https://records.mtt.ru/{n}.mp3",
        storage_key=f"recordings/{n}.mp3",
        status=status,
        last_attempt_at=last_attempt_at,
        mtt_expires_at=mtt_expires_at or timezone.now() + timedelta(days=80),
    )

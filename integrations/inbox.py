"""The notification inbox: every notification is stored here before MTT gets its answer, and applied from here
by the applier process (integrations/applier.py).

``notification_store`` is the one way in: the notify view calls it for a live notification, the spool replay
for one received while the database was away (with its original arrival time). It is one statement —
``INSERT … ON CONFLICT (integration, fingerprint) DO NOTHING RETURNING id`` — so a copy of a notification
(MTT's mobile app sends some twice, guide §6.5) costs no exception and is stored once; on PostgreSQL the same
statement wakes the appliers (``pg_notify`` on ``INBOX_CHANNEL``, delivered when the row commits).
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, models
from django.db.models import Q
from django.utils import timezone

from .models import Integration, NotificationEvent
from .mtt.notifications import Envelope, notification_problem

logger = logging.getLogger(__name__)

# PostgreSQL NOTIFY channel: a stored notification's id, for the appliers listening.
INBOX_CHANNEL = "mttcrm_inbox"
# The integration's "last notification" is written at most this often per process: a busy line does not
# queue on the integration row's lock. integration id -> when this process last wrote it (monotonic).
LAST_SEEN_RESOLUTION = timedelta(seconds=1)
_LAST_SEEN_WRITTEN: dict[int, float] = {}


@dataclass(frozen=True)
class Stored:
    """What storing one notification did: its row, whether this copy made it, and its status."""

    id: int
    created: bool
    status: str


def _column(name: str) -> str:
    field = NotificationEvent._meta.get_field(name)
    assert isinstance(field, models.Field)
    return connection.ops.quote_name(str(field.column))


@functools.cache
def _insert_sql(*, wake: bool) -> str:
    # Only the model's own names, quoted by the backend, go into the text; the values are parameters. Both
    # PostgreSQL and SQLite (3.35+) take ON CONFLICT ... RETURNING.
    names = (
        "integration", "received_at", "event", "body", "fingerprint", "status", "priority", "error",
        "received_text",
    )  # fmt: skip
    table = connection.ops.quote_name(NotificationEvent._meta.db_table)
    pk = _column("id")
    insert = (
        f"INSERT INTO {table} ({', '.join(_column(n) for n in names)}, {_column('attempts')}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(names))}, 0) "
        f"ON CONFLICT ({_column('integration')}, {_column('fingerprint')}) DO NOTHING RETURNING {pk}"
    )
    if not wake:
        return insert
    # The appliers' wake-up, in the same statement: sent on commit, and only for a row really inserted.
    return f"WITH stored AS ({insert}) SELECT {pk}, pg_notify('{INBOX_CHANNEL}', {pk}::text) FROM stored"  # noqa: S608


def notification_store(
    *, integration_id: int, envelope: Envelope, received_at: datetime | None = None
) -> Stored:
    """Store one notification once (by fingerprint), committed when this returns (autocommit).

    A notification we do not understand is stored as ignored, with the reason, and never applied. Raises
    the database's errors (the notify view spools on an outage; an IntegrityError means the integration was
    deleted meanwhile).
    """
    now = received_at or timezone.now()
    understood = envelope.understood
    status = NotificationEvent.Status.PENDING if understood else NotificationEvent.Status.IGNORED
    wake = understood and connection.vendor == "postgresql"
    values = [
        integration_id,
        connection.ops.adapt_datetimefield_value(now),
        envelope.event[:64],
        envelope.canonical,
        envelope.fingerprint,
        status.value,
        envelope.priority,
        envelope.ignored_because,
        envelope.received_text,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(wake=wake), values)
        inserted = cursor.fetchone()
    if inserted is None:
        # A copy: the first one is stored (and applied, or about to be) already.
        first = (
            NotificationEvent.objects.filter(integration_id=integration_id, fingerprint=envelope.fingerprint)
            .values_list("pk", "status")
            .first()
        )
        if first is None:  # deleted meanwhile (an admin's clean-up): store this copy after all
            return notification_store(integration_id=integration_id, envelope=envelope, received_at=now)
        return Stored(id=int(first[0]), created=False, status=str(first[1]))
    if not understood:
        logger.warning(
            "Integration %s: notification %s stored as ignored: %s",
            integration_id,
            inserted[0],
            envelope.ignored_because,
            extra={"integration_id": integration_id},
        )
    _note_last_seen(integration_id, now)
    return Stored(id=int(inserted[0]), created=True, status=status.value)


def _note_last_seen(integration_id: int, now: datetime) -> None:
    due = (
        _LAST_SEEN_WRITTEN.get(integration_id, 0.0) <= time.monotonic() - LAST_SEEN_RESOLUTION.total_seconds()
    )
    if not due:
        return
    _LAST_SEEN_WRITTEN[integration_id] = time.monotonic()
    Integration.objects.filter(pk=integration_id).filter(
        Q(last_notification_at__isnull=True) | Q(last_notification_at__lt=now - LAST_SEEN_RESOLUTION)
    ).update(last_notification_at=now)


def inbox_process_state_reset() -> None:
    """Forget this process's last-seen writes (tests)."""
    _LAST_SEEN_WRITTEN.clear()


@dataclass(frozen=True)
class Reapplied:
    """What "apply again" did to one row: put back in the queue, or left as it is (and why)."""

    queued: bool
    left_because: str = ""


def notification_reapply(*, event_id: int) -> Reapplied:
    """An admin's "apply again": the row goes back to the queue, due now; the applier takes it.

    Only a notification we understand is queued (checked as the notify URL checks it,
    ``notification_problem``): one we do not (kept as text, no ``result``, an unknown state…) could only fail
    or be ignored again, so it stays ignored with its reason (a row of another status gets the reason as its
    error)."""
    row = NotificationEvent.objects.filter(pk=event_id).values("body", "status", "error").first()
    if row is None:
        return Reapplied(queued=False, left_because="gone")
    problem = notification_problem(row["body"])
    if problem:
        ignored = NotificationEvent.Status.IGNORED
        kept = row["error"] if row["status"] == ignored and row["error"] else problem
        NotificationEvent.objects.filter(pk=event_id).update(status=ignored, error=kept, retry_at=None)
        return Reapplied(queued=False, left_because=kept)
    queued = NotificationEvent.objects.filter(pk=event_id).update(
        status=NotificationEvent.Status.PENDING, error="", retry_at=None
    )
    return Reapplied(queued=queued == 1, left_because="" if queued else "gone")


def pending_due(now: datetime | None = None) -> Any:
    """The queue: pending rows whose next attempt is due."""
    now = now or timezone.now()
    return NotificationEvent.objects.filter(status=NotificationEvent.Status.PENDING).filter(
        Q(retry_at__isnull=True) | Q(retry_at__lte=now)
    )

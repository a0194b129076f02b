"""The applier: the one process that applies stored notifications (``python manage.py mtt applier``).

The web process only checks a notification, stores it (integrations/inbox.py) and answers MTT. The applier
takes the pending rows — what pops, updates or hides an operator's card first, then the ends of calls, then
bookkeeping (``NotificationEvent.priority``), oldest first — and applies them: the call rows, the routing
decision of a parked call, the screen pop, the recording's download, the callback queue
(calls.services.call_apply_notification), or a directory sync (integrations.services).

How it learns of new rows: on PostgreSQL it LISTENs on ``INBOX_CHANNEL`` (the storing statement notifies),
on SQLite (make run) it looks every ``SQLITE_POLL_SECONDS``; on PostgreSQL it also looks every
``LOOK_EVERY_SECONDS``, so nothing waits for a wake-up that was missed, and a row whose retry is due is taken.

Exactly once: a batch of rows is claimed with ``SELECT … FOR UPDATE SKIP LOCKED`` and marked in the
transaction that applies them, so several appliers share the queue and a row is applied by one of them,
once. One transaction per batch (one commit for many notifications under load); what must happen after the
commit — the routing command, the screen-pop push, the download — is registered with ``on_commit`` by the
apply itself. If anything in a batch fails, the batch is rolled back and its rows are applied one by one, so
one bad notification costs only itself an attempt: it is tried again later (``retry_at``, with backoff), and
set aside as failed after ``MAX_ATTEMPTS`` (Admin → Notifications shows the error).

The applier also stores what the notify URL spooled while the database was away (integrations/spool.py).
"""

from __future__ import annotations

import functools
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import psycopg
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connection, connections, transaction
from django.db.models import F, Field, QuerySet
from django.db.utils import DatabaseError
from django.utils import timezone

from calls.realtime.push import push_flush
from calls.services import call_apply_notification
from monitoring import metrics
from mttcrm.rows import columns, instances

from .inbox import INBOX_CHANNEL, pending_due
from .models import Integration, NotificationEvent
from .mtt.notifications import CALL_EVENT, VPBX_EVENTS, call_key_of, notification_problem
from .spool import spool_pending, spool_replay
from .sync import integration_apply_directory_notification

logger = logging.getLogger(__name__)

# Rows claimed and applied in one transaction at most: under load one commit serves many notifications,
# and the first row of a batch still waits for at most this many before its card is pushed.
BATCH = 20
# A notification whose apply failed this many times is set aside (status failed) for a person to look at.
MAX_ATTEMPTS = 10
RETRY_BASE_SECONDS = 2.0
RETRY_MAX_SECONDS = 300.0
# How often the applier looks at the queue without being woken (PostgreSQL; also how soon a stop request is
# seen), and how often it looks at all on SQLite, where nothing wakes it.
LOOK_EVERY_SECONDS = 1.0
SQLITE_POLL_SECONDS = 0.1
# The database away: wait this long before trying again, doubling up to the maximum.
RECONNECT_SECONDS = 1.0
RECONNECT_MAX_SECONDS = 30.0

Status = NotificationEvent.Status


def _apply(event: NotificationEvent) -> tuple[str, str]:
    """Apply one claimed notification: (the status it ends in, why it was ignored or "").

    The body is checked again as the notify URL checks it (``notification_problem``): a row that is not a
    notification we apply — put back in the queue by hand, stored before a check existed — ends ignored with
    the reason in words, never failed with a KeyError."""
    problem = notification_problem(event.body)
    if problem:
        logger.info("Notification %s: kept as ignored: %s", event.pk, problem)
        return Status.IGNORED, problem
    outcome = apply_one(event)
    return outcome, (_IGNORED_WHILE_APPLYING if outcome == Status.IGNORED else "")


# What an ignored row says when applying it (not its check) decided it was nothing to apply.
_IGNORED_WHILE_APPLYING = "nothing in it to apply (see the applier's log)"
# How the error of a row whose apply raised begins (the exception follows).
APPLYING_FAILED = "applying failed: "


def apply_one(event: NotificationEvent) -> str:
    """Apply one claimed notification, inside the caller's transaction; returns the status it ends in."""
    if event.event == CALL_EVENT:
        return call_apply_notification(event=event)
    if event.event in VPBX_EVENTS:
        return integration_apply_directory_notification(event=event)
    logger.info("Notification %s: event %r is not one we apply; kept as ignored", event.pk, event.event)
    return Status.IGNORED


def _claim(limit: int) -> tuple[list[NotificationEvent], bool]:
    """Lock up to ``limit`` due rows of the best priority waiting, oldest first (SKIP LOCKED: rows another
    applier holds are left to it). One priority per batch, chosen by the statement itself: a card never
    waits for bookkeeping to commit, and under a backlog of bookkeeping a claim of a few cards neither
    reads nor locks a batch's worth of bookkeeping rows it would not apply.

    Returns the rows and whether more were waiting (a full batch, or due rows of a later priority)."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_claim_sql(), [Status.PENDING, now, Status.PENDING, now, Status.PENDING, now, limit])
        rows = cursor.fetchall()
    if not rows:
        return [], False
    later = bool(rows[0][-1])
    batch = instances(NotificationEvent, [row[:-1] for row in rows], extra=("integration_synced_at",))
    return batch, len(batch) == limit or later


@functools.cache
def _claim_sql() -> str:
    # Plain SQL, like calls/rows.py: this runs for every batch, and the ORM's compilation of the same
    # statement (select_for_update, skip_locked, of, the join) cost more CPU than applying a notification's
    # rows. Every part reads the queue's partial index (priority, received_at) WHERE status = 'pending':
    # ``best`` finds (and locks) the oldest due row of the best priority, the batch is that priority's oldest
    # due rows, ``later`` says whether a later priority has due rows too. With each row comes the
    # integration's last sync: the version of calls.legs' cached directory.
    quote = connection.ops.quote_name
    event, integration = quote(NotificationEvent._meta.db_table), quote(Integration._meta.db_table)
    lock = lock_e = ""
    if connection.features.has_select_for_update_skip_locked:
        lock, lock_e = " FOR UPDATE SKIP LOCKED", " FOR UPDATE OF e SKIP LOCKED"
    status, retry_at = quote(_column("status")), quote(_column("retry_at"))
    priority, received_at = quote(_column("priority")), quote(_column("received_at"))

    def due(alias: str) -> str:
        return f"{alias}.{status} = %s AND ({alias}.{retry_at} IS NULL OR {alias}.{retry_at} <= %s)"

    return (
        f"WITH best AS (SELECT b.{priority} FROM {event} b WHERE {due('b')} "  # noqa: S608
        f'ORDER BY b.{priority}, b.{received_at}, b."id" LIMIT 1{lock}) '
        f"SELECT {columns(NotificationEvent, 'e')}, i.{quote('last_sync_at')}, "
        f"EXISTS (SELECT 1 FROM {event} l WHERE {due('l')} AND l.{priority} > (SELECT {priority} FROM best)) "
        f'FROM {event} e JOIN {integration} i ON i."id" = e.{quote(_column("integration"))} '
        f"WHERE {due('e')} AND e.{priority} = (SELECT {priority} FROM best) "
        f'ORDER BY e.{received_at}, e."id" LIMIT %s{lock_e}'
    )


def _column(name: str) -> str:
    field = NotificationEvent._meta.get_field(name)
    assert isinstance(field, Field)
    return str(field.column)


def _locked(queue: QuerySet[NotificationEvent], limit: int) -> list[NotificationEvent]:
    """The ORM's spelling of the claim, for the rare paths (a failed batch's rows one by one)."""
    return list(
        queue.select_for_update(skip_locked=True, of=("self",))
        .annotate(integration_synced_at=F("integration__last_sync_at"))
        .order_by("received_at", "pk")[:limit]
    )


def _mark(events: list[NotificationEvent], outcomes: list[tuple[str, str]]) -> None:
    """The batch's rows marked with their outcome (status, and why an ignored row was ignored: the error the
    admin shows), in the batch's transaction (plain SQL, as the claim)."""
    now = timezone.now()
    quote = connection.ops.quote_name
    table = quote(NotificationEvent._meta.db_table)
    with connection.cursor() as cursor:
        for status, reason in set(outcomes):
            ids = [
                event.pk
                for event, outcome in zip(events, outcomes, strict=True)
                if outcome == (status, reason)
            ]
            cursor.execute(
                f"UPDATE {table} SET {quote('status')} = %s, {quote('applied_at')} = %s, "  # noqa: S608
                f"{quote('error')} = %s, {quote('retry_at')} = NULL, "
                f"{quote('attempts')} = {quote('attempts')} + 1 "
                f'WHERE "id" IN ({", ".join(["%s"] * len(ids))})',
                [status, now, reason[:2000], *ids],
            )


@dataclass
class BatchResult:
    applied: int = 0
    ignored: int = 0
    failed: int = 0
    ids: list[int] = field(default_factory=list)
    # More rows were due than this batch took: look again at once instead of waiting.
    more: bool = False

    @property
    def taken(self) -> int:
        return self.applied + self.ignored + self.failed


def apply_batch(limit: int = BATCH) -> BatchResult:
    """Claim and apply one batch of due notifications; an empty result means the queue has none."""
    result = BatchResult()
    try:
        with transaction.atomic():
            events, result.more = _claim(limit)
            if not events:
                return result
            # Calls in one order in every applier: two batches that share calls lock their rows in the
            # same order and wait for each other instead of deadlocking (PostgreSQL would abort one after
            # deadlock_timeout, and its 20 rows would be redone one by one). Applying does not depend on
            # the order; a call's own notifications keep theirs (a stable sort).
            events.sort(key=_lock_order)
            result.ids = [event.pk for event in events]
            applied = [_apply(event) for event in events]
            outcomes = [outcome for outcome, _reason in applied]
            _mark(events, applied)
    except Exception:
        if not result.ids:
            raise  # the claim itself failed (the database): the caller backs off
        logger.warning(
            "Applying a batch of %d notifications failed; applying them one by one", len(result.ids)
        )
        singly = _apply_singly(result.ids)
        singly.more = result.more
        return singly
    _count(result, outcomes)
    return result


def _lock_order(event: NotificationEvent) -> str:
    """The call key of the notification (the call whose row applying locks: ``CallInfo.call_key``, with the
    Call-ID read as ``parse_call_info`` reads it), "" when the body names no call."""
    body = event.body
    result = body.get("result") if isinstance(body, dict) else None
    info = result.get("callInfo") if isinstance(result, dict) else None
    call = info.get("call") if isinstance(info, dict) else None
    call_id = call.get("id") if isinstance(call, dict) else None
    return call_key_of(str(call_id)) if call_id is not None else ""


def _count(result: BatchResult, outcomes: list[str]) -> None:
    for outcome in outcomes:
        if outcome == Status.IGNORED:
            result.ignored += 1
        else:
            result.applied += 1
        metrics.notification_applied(outcome)


def _apply_singly(ids: list[int]) -> BatchResult:
    """The rows of a failed batch, each in its own transaction: a failure is that notification's alone."""
    result = BatchResult(ids=ids)
    for event_id in ids:
        with transaction.atomic():
            claimed = _locked(pending_due().filter(pk=event_id), 1)
            if not claimed:
                continue  # another applier took it meanwhile
            try:
                with transaction.atomic():
                    outcome, reason = _apply(claimed[0])
            except Exception as exc:
                if isinstance(exc, DatabaseError) and not connection.is_usable():
                    raise  # the database went away: the loop backs off, the row stays pending
                _record_failure(claimed[0], exc)
                result.failed += 1
                continue
            _mark(claimed, [(outcome, reason)])
        _count(result, [outcome])
    return result


def _record_failure(event: NotificationEvent, exc: Exception) -> None:
    logger.exception("Notification %s: applying failed", event.pk)
    metrics.notification_apply_failed()
    attempts = event.attempts + 1
    delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempts - 1))
    changes: dict[str, object] = {
        "attempts": attempts,
        # "applying failed: " says in the admin's words what the row's error is (integrations/reasons.py); the
        # exception after it is for whoever fixes the cause.
        "error": f"{APPLYING_FAILED}{type(exc).__name__}: {exc}"[:2000],
        # Jitter: rows that failed together (MTT away) do not all come back at the same moment.
        "retry_at": timezone.now() + timedelta(seconds=delay * random.uniform(0.8, 1.2)),  # noqa: S311
    }
    if attempts >= MAX_ATTEMPTS:
        changes["status"] = Status.FAILED
        logger.error(
            "Notification %s failed %d times and is set aside (Admin → Notifications)", event.pk, attempts
        )
    NotificationEvent.objects.filter(pk=event.pk).update(**changes)


def applier_drain(*, limit: int = BATCH) -> BatchResult:
    """Apply every due notification, batch after batch, then wait for the pushes in flight (tests, the
    command's ``--once``)."""
    total = BatchResult()
    while True:
        batch = apply_batch(limit)
        if batch.taken == 0:
            break
        total.applied += batch.applied
        total.ignored += batch.ignored
        total.failed += batch.failed
        total.ids += batch.ids
        if batch.applied + batch.ignored == 0:
            break  # everything it took failed: their retries are due later
    push_flush()
    return total


# --- the process ------------------------------------------------------------------------------------------


def _listen_connection() -> psycopg.Connection:
    """A connection of its own (not from the pool) that LISTENs on the inbox channel."""
    params = connections[DEFAULT_DB_ALIAS].get_connection_params()
    for key in ("cursor_factory", "context", "prepare_threshold", "pool"):
        params.pop(key, None)
    conn = psycopg.connect(**params, autocommit=True)
    conn.execute(f"LISTEN {INBOX_CHANNEL}")
    return conn


class Applier:
    """The loop of ``manage.py mtt applier``: apply what is due, wait for more, until ``stop`` is set."""

    def __init__(self, *, stop: threading.Event | None = None) -> None:
        self.stop = stop or threading.Event()
        self.applied = 0

    def run(self) -> None:
        backoff = RECONNECT_SECONDS
        listen = connection.vendor == "postgresql"
        while not self.stop.is_set():
            try:
                if listen:
                    with _listen_connection() as conn:
                        logger.info("Applier: listening on %s", INBOX_CHANNEL)
                        backoff = RECONNECT_SECONDS
                        self._loop(lambda timeout: _wait_for_notify(conn, timeout), LOOK_EVERY_SECONDS)
                else:
                    logger.info("Applier: looking for new notifications every %g s", SQLITE_POLL_SECONDS)
                    self._loop(lambda timeout: self.stop.wait(timeout), SQLITE_POLL_SECONDS)
            except (psycopg.Error, DatabaseError) as exc:
                logger.warning("Applier: database unavailable (%s); again in %g s", exc, backoff)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, RECONNECT_MAX_SECONDS)
            finally:
                close_old_connections()
        push_flush()
        logger.info("Applier: stopped after %s notification(s)", self.applied)

    def _loop(self, wait: Callable[[float], object], idle_seconds: float) -> None:
        while not self.stop.is_set():
            if spool_pending():
                spool_replay()
            while not self.stop.is_set():
                batch = apply_batch()
                self.applied += batch.applied + batch.ignored
                # Wait when the claim saw nothing more: what arrived meanwhile has woken the wait already
                # (LISTEN queues the notifications), so the wait returns at once for it.
                if not batch.more or batch.applied + batch.ignored == 0:
                    break
            wait(idle_seconds)


def _wait_for_notify(conn: psycopg.Connection, timeout: float) -> None:
    for _note in conn.notifies(timeout=timeout, stop_after=1):
        break
    # Several wake-ups may have queued meanwhile: one look at the queue answers them all.
    for _note in conn.notifies(timeout=0):
        pass

"""The notification inbox: store first, acknowledge, then apply (DESIGN.md "Data flows one way")."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import SynchronousOnlyOperation
from django.db import models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Q
from django.utils import timezone

from mttcrm import metrics

from .models import Integration, NotificationEvent
from .mtt.notifications import DIRECTORY_EVENT_TYPES, VPBX_EVENTS, Envelope
from .selectors import SECRET_FIELDS

logger = logging.getLogger(__name__)

# event name -> function applying a stored notification; returns the final status.
Applier = Callable[[NotificationEvent], str]
LAST_SEEN_RESOLUTION = timedelta(seconds=1)
# integration id -> when this process last wrote its last_notification_at (time.monotonic()).
_LAST_SEEN_WRITTEN: dict[int, float] = {}
APPLIERS: dict[str, Applier] = {}
Urgency = Callable[[Integration, Envelope], bool]
URGENCY: dict[str, list[Urgency]] = {}
# PostgreSQL NOTIFY channel: the notify URL wakes the applier process (integrations/applier.py) with
# the new row's id, in the statement that stores it.
INBOX_CHANNEL = "mttcrm_inbox"
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


_INSERT_FIELDS = ("integration", "received_at", "event", "body", "fingerprint", "status", "attempts", "error")
# (database vendor, wake_applier) -> the statement: built once a process.
_INSERT_SQL: dict[tuple[str, bool], str] = {}
_ASYNC_SQL: dict[str, tuple[str, str, str]] = {}


def _field(name: str) -> models.Field[Any, Any]:
    field = NotificationEvent._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field


def _insert_sql(connection: BaseDatabaseWrapper, *, wake_applier: bool = False) -> str:
    key = (connection.vendor, wake_applier)
    if key not in _INSERT_SQL:  # the model's names never change in a process
        _INSERT_SQL[key] = _build_insert_sql(connection, wake_applier=wake_applier)
    return _INSERT_SQL[key]


def _build_insert_sql(connection: BaseDatabaseWrapper, *, wake_applier: bool) -> str:
    # Both PostgreSQL and SQLite (3.35+) take ON CONFLICT ... RETURNING; names quoted by the backend.
    q = connection.ops.quote_name
    columns = ", ".join(q(str(_field(name).column)) for name in _INSERT_FIELDS)
    marks = ", ".join(["%s"] * len(_INSERT_FIELDS))
    conflict = ", ".join(q(str(_field(name).column)) for name in ("integration", "fingerprint"))
    pk = q(str(_field("id").column))
    table = q(str(NotificationEvent._meta.db_table))
    # Only the model's own names, quoted by the backend, go into the text; the values are parameters.
    insert = (
        f"INSERT INTO {table} ({columns}) VALUES ({marks}) "  # noqa: S608
        f"ON CONFLICT ({conflict}) DO NOTHING RETURNING {pk}"
    )
    if not wake_applier:
        return insert
    # A duplicate inserts nothing and so wakes nobody (PostgreSQL only: NOTIFY_APPLY_IN=applier).
    return f"WITH stored AS ({insert}) SELECT {pk}, pg_notify('{INBOX_CHANNEL}', {pk}::text) FROM stored"  # noqa: S608


def _insert(sql: str, values: list[Any]) -> tuple[Any, ...] | None:
    """Run the inbox's INSERT on Django's connection (its transaction, its error classes).

    On PostgreSQL through a plain psycopg cursor: the values are bound by the server, where Django's
    cursor would quote each into the text in Python first (a fifth of the notify URL's own CPU, the
    body's JSON the most of it). Nothing else of Django's cursor is missed: the statement is not logged
    (the body may be large) and takes no part in query counting."""
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, values)
            return cursor.fetchone()
    import psycopg

    # Django's cursor() opens the connection and checks that its transaction is usable.
    with (
        connection.cursor() as wrapper,
        connection.wrap_database_errors,
        psycopg.Cursor(wrapper.cursor.connection) as cursor,
    ):
        cursor.execute(sql, values)
        return cursor.fetchone()


def _insert_values(integration_id: int, envelope: Envelope, received_at: Any) -> list[Any]:
    """The columns of _INSERT_FIELDS, ready for the database: the body as the canonical JSON text the
    fingerprint was computed from (the same value; serialising it again was a tenth of the request)."""
    event, body, fp = envelope.event, envelope.canonical, envelope.fingerprint
    return [integration_id, received_at, event, body, fp, NotificationEvent.Status.PENDING.value, 0, ""]


def _last_seen_due(integration_id: int) -> bool:
    """Whether to write the integration's last_notification_at now: at most once a second, so that a
    busy line does not queue on the integration row's lock. This process skips even the statement
    while its own last write is that recent."""
    if _LAST_SEEN_WRITTEN.get(integration_id, 0.0) > time.monotonic() - LAST_SEEN_RESOLUTION.total_seconds():
        return False
    _LAST_SEEN_WRITTEN[integration_id] = time.monotonic()
    return True


def _build_model_sql(connection: BaseDatabaseWrapper) -> tuple[str, str]:
    """The duplicate's lookup and the last-seen write, as the async path runs them (PostgreSQL)."""
    q = connection.ops.quote_name
    table = q(str(NotificationEvent._meta.db_table))
    pk, integration, fp = (q(str(_field(name).column)) for name in ("id", "integration", "fingerprint"))
    find = f"SELECT {pk} FROM {table} WHERE {integration} = %s AND {fp} = %s"  # noqa: S608
    meta = Integration._meta
    seen = q(str(meta.get_field("last_notification_at").column))
    touch = (
        f"UPDATE {q(str(meta.db_table))} SET {seen} = %s WHERE {q(str(meta.pk.column))} = %s "  # noqa: S608
        f"AND ({seen} IS NULL OR {seen} < %s)"
    )
    return find, touch


def _async_statements() -> tuple[str, str, str]:
    """The async path's three statements. Django's connection is asked only the first time: on the
    event loop every task would get a new (unopened, but not free to build) connection wrapper."""
    if "async" not in _ASYNC_SQL:
        connection = transaction.get_connection()
        _ASYNC_SQL["async"] = (_insert_sql(connection, wake_applier=True), *_build_model_sql(connection))
    return _ASYNC_SQL["async"]


async def notification_receive_async(
    *, integration: Integration, envelope: Envelope, connection: Any
) -> tuple[int, bool]:
    """``notification_receive(..., wake_applier=True)`` on an async psycopg connection (PostgreSQL, the
    notify URL's fast lane: integrations/fastlane.py). Returns (row id, created).

    The same statements, values and once-a-second last-seen write; autocommit, so a new row is
    committed before this returns.
    """
    insert, find, touch = _async_statements()
    now = timezone.now()
    values = _insert_values(integration.pk, envelope, now)
    cursor = await connection.execute(insert, values)
    inserted = await cursor.fetchone()
    if inserted is None:
        cursor = await connection.execute(find, [integration.pk, envelope.fingerprint])
        first = await cursor.fetchone()
        if first is None:  # the first copy was deleted meanwhile (an admin's clean-up): nothing to say
            raise NotificationEvent.DoesNotExist(f"notification {envelope.fingerprint} vanished")
        return int(first[0]), False
    if _last_seen_due(integration.pk):
        await connection.execute(touch, [now, integration.pk, now - LAST_SEEN_RESOLUTION])
    return int(inserted[0]), True


def register_applier(event: str, applier: Applier) -> None:
    APPLIERS[event] = applier


def register_urgency(event: str, predicate: Urgency) -> None:
    """``predicate(integration, envelope)`` true: apply this notification before answering MTT, even
    when notifications are applied by the worker (a deadline the queue could miss)."""
    URGENCY.setdefault(event, []).append(predicate)


def notification_receive(
    *, integration: Integration, envelope: Envelope, wake_applier: bool = False
) -> tuple[NotificationEvent, bool]:
    """Store a notification once (by fingerprint). Returns (row, created).

    One statement on the hot path (``INSERT ... ON CONFLICT DO NOTHING RETURNING``): a duplicate costs
    no exception and no savepoint, and a new row is committed (autocommit) before the answer. With
    ``wake_applier`` the same statement sends the new row's id to the applier process (PostgreSQL
    ``pg_notify``, delivered when the row is committed).
    """
    fp = envelope.fingerprint
    now = _RECEIVED_AT.get() or timezone.now()
    connection = transaction.get_connection()
    values = _insert_values(integration.pk, envelope, connection.ops.adapt_datetimefield_value(now))
    inserted = _insert(_insert_sql(connection, wake_applier=wake_applier), values)
    if inserted is None:
        # A duplicate: the first copy is stored (and applied, or about to be) already. Its body is
        # the same as this one's, and read only if someone asks.
        first = NotificationEvent.objects.defer("body").get(integration=integration, fingerprint=fp)
        return first, False
    row = NotificationEvent(
        integration=integration, event=envelope.event, body=envelope.body, fingerprint=fp, received_at=now
    )
    row.pk = inserted[0]
    row._state.adding = False
    event = row
    if _last_seen_due(integration.pk):
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


def _is_urgent(integration: Integration, envelope: Envelope) -> bool:
    for predicate in URGENCY.get(envelope.event, ()):
        try:
            if predicate(integration, envelope):
                return True
        except SynchronousOnlyOperation:
            raise  # asked on the event loop (the fast lane), where it cannot read the database
        except Exception:
            # Applying in the request is always correct, only slower.
            logger.warning(
                "Urgency check %s failed", getattr(predicate, "__qualname__", predicate), exc_info=True
            )
            return True
    return False


def inbox_process_state_reset() -> None:
    """Forget this process's last-seen writes (tests)."""
    _LAST_SEEN_WRITTEN.clear()


def notification_for_applier(*, integration: Integration, envelope: Envelope) -> bool:
    """Whether a notification about to be stored goes to the applier process (NOTIFY_APPLY_IN=applier)
    rather than being applied in the request: everything but the urgent ones."""
    return settings.NOTIFY_APPLY_IN == "applier" and not _is_urgent(integration, envelope)


def notification_apply_here(event: NotificationEvent) -> None:
    """Apply a notification just stored, in the request (after its row is committed). A failure never
    fails the acknowledgement: the row stays pending, and the inbox sweep applies it."""
    metrics.notification_dispatched("request")
    try:
        notification_apply(event_id=event.pk, event=event)
    except Exception:
        logger.warning("Notification %s: apply after receive failed", event.pk, exc_info=True)


def _claim(event_id: int, event: NotificationEvent | None) -> NotificationEvent | None:
    """Lock the row if it is still pending and nobody else holds it (SKIP LOCKED): one applier at a time
    per notification, whether the request, the applier process or the sweep's task got there first."""
    pending = NotificationEvent.objects.select_for_update(skip_locked=True, of=("self",)).filter(
        pk=event_id, status=NotificationEvent.Status.PENDING
    )
    if event is None:
        # The integration comes along for the appliers (its directory, its routing); its secrets are
        # deferred: decrypting them costs CPU on every notification, and only an MTT request reads them.
        claimed = pending.select_related("integration").defer(
            *(f"integration__{name}" for name in SECRET_FIELDS)
        )
        return next(iter(claimed.order_by()[:1]), None)
    if event.status != NotificationEvent.Status.PENDING or not pending.values_list("pk", flat=True).first():
        return None
    return event


def notification_apply(*, event_id: int, event: NotificationEvent | None = None) -> str:
    """Apply one stored, still pending notification, exactly once.

    The row is claimed (locked, SKIP LOCKED) and marked applied in the same transaction as the apply's
    own writes: a second attempt, concurrent or later, finds it locked or applied and returns "gone". A
    failure rolls the apply back and counts an attempt; the inbox sweep tries again. The appliers are
    idempotent besides (the calls app keys its events on the notification).
    """
    claimed = False
    try:
        with transaction.atomic():
            event = _claim(event_id, event)
            if event is None:
                return "gone"
            claimed = True
            applier = APPLIERS.get(event.event)
            status: str
            if applier is None:
                # Unknown events are kept (someone may want them later) and acknowledged.
                logger.info("Notification %s: unknown event %r stored", event.pk, event.event)
                status = NotificationEvent.Status.IGNORED
            else:
                status = applier(event)
            NotificationEvent.objects.filter(pk=event_id).update(
                status=status, applied_at=timezone.now(), error="", attempts=F("attempts") + 1
            )
    except Exception as exc:
        if claimed:
            logger.exception("Notification %s: applying failed", event_id)
            metrics.notification_apply_failed()
            try:
                NotificationEvent.objects.filter(pk=event_id).update(
                    attempts=F("attempts") + 1, error=f"{type(exc).__name__}: {exc}"[:2000]
                )
            except Exception:
                logger.warning(
                    "Notification %s: the failed attempt was not recorded", event_id, exc_info=True
                )
        raise
    metrics.notification_applied(status)
    return status


def notification_reapply(*, event_id: int) -> str:
    """An admin's "apply again": put the row back to pending and apply it (idempotent)."""
    NotificationEvent.objects.filter(pk=event_id).update(status=NotificationEvent.Status.PENDING, error="")
    return notification_apply(event_id=event_id)


def notification_sweep(
    *, older_than_seconds: float, max_attempts: int, failed_only: bool = False
) -> list[int]:
    """Pending rows left behind (a crash between commit and apply, a failed apply): the ids to retry.

    Rows that failed ``max_attempts`` times are marked failed, for a person to look at (admin).
    ``failed_only``: only rows an attempt failed on — the untried ones are an applier's, which takes them
    in order (a backlog under load is not a crash, and a third applier in Celery would only compete).
    """
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    pending = NotificationEvent.objects.filter(
        status=NotificationEvent.Status.PENDING, received_at__lt=cutoff
    )
    if failed_only:
        pending = pending.filter(attempts__gt=0)
    exhausted = pending.filter(attempts__gte=max_attempts).update(status=NotificationEvent.Status.FAILED)
    if exhausted:
        logger.error("Inbox: %s notification(s) failed %s times and were set aside", exhausted, max_attempts)
    return list(
        pending.filter(attempts__lt=max_attempts).order_by("received_at").values_list("pk", flat=True)[:1000]
    )

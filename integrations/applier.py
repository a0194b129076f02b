"""The applier process (``python manage.py mtt applier``; ``NOTIFY_APPLY_IN=applier``).

With it, a web process does for a notification only what MTT waits for: it checks it, stores it (one
``INSERT``) and answers. The same statement wakes this process (PostgreSQL ``pg_notify`` on the
``mttcrm_inbox`` channel, delivered when the row is committed, with the row's id), and the applier
applies it a moment later — the call rows, the screen pop (through the Redis channel layer), the
recording's download task. Why a process of its own and not a Celery task per notification: queueing a
Celery message cost the web process 1.3 ms of CPU per notification (a third of what storing costs), the
inbox table is a durable queue already, and NOTIFY is sent in the transaction that stores the row, so
there is no window where a row is stored and its wake-up lost.

Nothing is lost when it is down or a wake-up is missed: it applies every pending row when it (re)starts
and every ``poll`` seconds, and the Celery inbox sweep applies rows left pending for
``INBOX_SWEEP_AFTER_SECONDS`` whatever happens to this process. Several appliers may run: each row is
claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` and marked applied in the transaction that applies
it (``inbox.notification_apply``), so a notification is applied once whoever gets there first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import timedelta

import psycopg
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections
from django.db.utils import DatabaseError
from django.utils import timezone

from .inbox import INBOX_CHANNEL, notification_apply
from .models import NotificationEvent

logger = logging.getLogger(__name__)

# Rows found pending by the periodic look (not woken for: stored while this process was away, or
# urgent ones a request is applying right now) must be at least this old, so a request's own apply
# is not raced for nothing.
CATCH_UP_MIN_AGE_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0


def _listen_connection() -> psycopg.Connection:
    """A connection of its own (not from the pool) that LISTENs on the inbox channel."""
    params = connections[DEFAULT_DB_ALIAS].get_connection_params()
    for key in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(key, None)
    conn = psycopg.connect(**params, autocommit=True)
    conn.execute(f"LISTEN {INBOX_CHANNEL}")
    return conn


class Applier:
    def __init__(self, *, poll_seconds: float = 5.0, batch: int = 200, stop: threading.Event | None = None):
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.stop = stop or threading.Event()
        self.applied = 0

    # --- the loop -------------------------------------------------------------------------------------

    def run(self) -> None:
        backoff = 1.0
        while not self.stop.is_set():
            try:
                with _listen_connection() as conn:
                    logger.info("Applier: listening on %s", INBOX_CHANNEL)
                    backoff = 1.0
                    self.catch_up(min_age_seconds=0.0)  # whatever was stored while nobody listened
                    next_look = time.monotonic() + self.poll_seconds
                    while not self.stop.is_set():
                        self.apply_ids(self._woken(conn, until=next_look))
                        if time.monotonic() >= next_look:
                            self.catch_up(min_age_seconds=CATCH_UP_MIN_AGE_SECONDS)
                            next_look = time.monotonic() + self.poll_seconds
            except (psycopg.Error, DatabaseError) as exc:
                logger.warning("Applier: database unavailable (%s); again in %g s", exc, backoff)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            finally:
                close_old_connections()
        logger.info("Applier: stopped after %s notification(s)", self.applied)

    def _woken(self, conn: psycopg.Connection, *, until: float) -> list[int]:
        # At most a second per wait, so that a stop request is seen soon.
        timeout = max(0.0, min(1.0, until - time.monotonic()))
        ids: list[int] = []
        for note in conn.notifies(timeout=timeout, stop_after=1):
            try:
                ids.append(int(note.payload))
            except ValueError:
                logger.warning("Applier: ignored a wake-up with payload %r", note.payload[:40])
        return ids

    # --- the work ---------------------------------------------------------------------------------------

    def apply_ids(self, ids: Iterable[int]) -> int:
        """Apply these rows (if still pending), oldest first. Returns how many this call applied."""
        done = 0
        for event_id in sorted(set(ids)):
            if self.stop.is_set():
                break
            try:
                outcome = notification_apply(event_id=event_id)
            except Exception:
                # notification_apply logged it and counted the attempt on the row; the inbox sweep
                # retries it at its own pace.
                outcome = "failed"
            finally:
                close_old_connections()
            if outcome not in ("gone", "failed"):
                done += 1
        self.applied += done
        return done

    def catch_up(self, *, min_age_seconds: float) -> int:
        """Apply pending rows nobody woke us for, oldest first; failed ones are left to the sweep."""
        total = 0
        while not self.stop.is_set():
            cutoff = timezone.now() - timedelta(seconds=min_age_seconds)
            ids = list(
                NotificationEvent.objects.filter(
                    status=NotificationEvent.Status.PENDING, attempts=0, received_at__lte=cutoff
                )
                .order_by("received_at", "pk")
                .values_list("pk", flat=True)[: self.batch]
            )
            close_old_connections()
            if not ids:
                break
            applied = self.apply_ids(ids)
            total += applied
            if applied == 0:
                break  # all locked by others or gone: nothing this process can do now
        if total:
            logger.info("Applier: applied %s pending notification(s) found in the inbox", total)
        return total

"""When the database is unavailable: a friendly 503 for pages, a fast answer for everything else.

Three parts, all per process:

* ``is_database_unavailable(exc)`` tells a database that cannot be reached (connection refused or lost,
  the server shutting down, no pooled connection in time) from an ordinary query error.
* A circuit breaker. The first such error opens it; while it is open, requests that need the database
  are answered at once (503 for pages, the spool for notifications: ``integrations.spool``) instead of
  each one waiting for a connection, and one background thread probes the database every
  ``PROBE_EVERY_SECONDS``. The first probe that gets an answer closes it and runs the recovery hooks
  (the notification spool's replay).
* ``database_gate()``: with the psycopg pool, a request that finds the database gone would wait
  ``DB_POOL_TIMEOUT`` (10 s) for a connection, and so would every request after it — long enough for
  MTT to give up on a notification (and a request whose client has gone is cancelled by Django, its
  view never run). The gate opens the request's connection with a short wait, ``GATE_WAIT_SECONDS``,
  before the view runs: an outage costs the first request two seconds, not ten, and opens the breaker.

``DatabaseUnavailableMiddleware`` puts it together for pages: the gate before each view, and any
database-unavailable error — from a view, a template, or a middleware further in (the session save) —
becomes the translated ``503.html`` (JSON for ``*.json`` and JSON requests) with ``Retry-After``,
never a traceback. Views that handle the outage themselves (the notify URL spools, /healthz reports)
carry ``handles_database_errors = True`` and are left alone.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.signals import got_request_exception
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

# How long a request may wait for a pooled connection before the database counts as unavailable.
GATE_WAIT_SECONDS = 2.0
PROBE_EVERY_SECONDS = 1.0
RETRY_AFTER_SECONDS = 15
# PostgreSQL SQLSTATEs that mean "the server cannot serve us now" rather than "this query failed":
# class 08 (connection exception), shutting down (57P01 admin, 57P02 crash), starting up (57P03),
# too many connections (53300).
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
_MARK = "_mttcrm_database_unavailable"

V = TypeVar("V", bound=Callable[..., Any])


class DatabaseUnavailable(OperationalError):
    """Raised by ``database_gate()``: the database is known to be unavailable right now."""


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be reached (not: a query that failed on its own)."""
    if isinstance(exc, DatabaseUnavailable | InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        # A raw driver error (the gate talks to the pool directly): judge the error itself.
        cause: BaseException | None = exc
    else:
        cause = exc.__cause__ or exc
    if isinstance(cause, sqlite3.OperationalError):
        # "database is locked" is a busy file, not a missing one.
        return "locked" not in str(cause)
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate:
        return str(sqlstate).startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES
    # psycopg errors without a SQLSTATE come from the client side: connection refused or lost,
    # "couldn't get a connection" from the pool.
    return isinstance(exc, OperationalError) or type(cause).__module__.startswith("psycopg")


def describe(exc: BaseException) -> str:
    """A short, secret-free description for a log line (connection errors can name host and user)."""
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first_line[:200]}"


# --- the breaker -----------------------------------------------------------------------------------


class _Breaker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._down_since: float | None = None
        self._probe: threading.Thread | None = None
        self._hooks: list[Callable[[], None]] = []

    def _same_process(self) -> None:
        # After a fork (a Celery prefork child) the parent's state and probe thread are not ours.
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._down_since = None
            self._probe = None
            self._hooks = []

    def is_open(self) -> bool:
        with self._lock:
            self._same_process()
            return self._down_since is not None

    def down_for(self) -> float | None:
        with self._lock:
            self._same_process()
            return None if self._down_since is None else time.monotonic() - self._down_since

    def trip(self, exc: BaseException) -> None:
        with self._lock:
            self._same_process()
            if self._down_since is None:
                self._down_since = time.monotonic()
                logger.error(
                    "Database unavailable (%s): pages answer 503 and notifications are spooled until it "
                    "answers again",
                    describe(exc),
                )
            if self._probe is None or not self._probe.is_alive():
                self._probe = threading.Thread(target=self._probe_loop, name="database-probe", daemon=True)
                self._probe.start()

    def on_recovery(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` (once) in the probe thread when the database answers again."""
        with self._lock:
            self._same_process()
            if hook not in self._hooks:
                self._hooks.append(hook)

    def reset(self) -> None:
        with self._lock:
            self._down_since = None
            self._hooks = []

    def _probe_loop(self) -> None:
        while True:
            time.sleep(PROBE_EVERY_SECONDS)
            with self._lock:
                if self._down_since is None:
                    return  # reset meanwhile
            if not _probe_once():
                continue
            with self._lock:
                down = time.monotonic() - (self._down_since or time.monotonic())
                self._down_since = None
                hooks, self._hooks = self._hooks, []
            logger.warning("Database available again after %.1f s", down)
            for hook in hooks:
                try:
                    hook()
                except Exception:
                    logger.exception("Recovery hook %s failed", getattr(hook, "__qualname__", hook))
                finally:
                    connections.close_all()
            return


def _probe_once() -> bool:
    conn = connections[DEFAULT_DB_ALIAS]
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        logger.debug("Database probe failed: %s", describe(exc))
        return False
    finally:
        try:
            conn.close()
        except Exception:
            logger.debug("Closing the probe's connection failed", exc_info=True)
    return True


_breaker = _Breaker()


def database_marked_down() -> bool:
    """True while the breaker is open (a recent database-unavailable error, no successful probe yet)."""
    return _breaker.is_open()


def database_down_for() -> float | None:
    """Seconds since the breaker opened, or None when it is closed."""
    return _breaker.down_for()


def database_note_error(exc: BaseException) -> None:
    """Open the breaker if ``exc`` means the database is unavailable (and start probing)."""
    if is_database_unavailable(exc):
        _breaker.trip(exc)


def database_on_recovery(hook: Callable[[], None]) -> None:
    """Run ``hook`` once, in the background, when the database is reachable again."""
    _breaker.on_recovery(hook)


def database_breaker_reset() -> None:
    """Close the breaker (tests)."""
    _breaker.reset()


def database_gate() -> None:
    """Raise ``DatabaseUnavailable`` at once when the database is known to be down, or when the pool
    gives no connection within ``GATE_WAIT_SECONDS``; return when a request may go ahead."""
    if _breaker.is_open():
        raise DatabaseUnavailable("the database is unavailable (waiting for it to answer again)")
    conn = connections[DEFAULT_DB_ALIAS]
    if conn.vendor != "postgresql" or conn.connection is not None:
        return
    pool = getattr(conn, "pool", None)
    if pool is None:
        return
    from mttcrm.pgbackend.base import checkout_wait

    wait = min(GATE_WAIT_SECONDS, float(getattr(pool, "timeout", GATE_WAIT_SECONDS)))
    try:
        # The request's own connection, opened here with the short wait; the view then uses it, and
        # Django gives it back to the pool when the request ends.
        with checkout_wait(wait):
            conn.ensure_connection()
    except Exception as exc:
        _breaker.trip(exc)
        raise DatabaseUnavailable(f"no database connection within {wait:g} s") from exc


# --- pages -----------------------------------------------------------------------------------------


def handles_database_errors(view: V) -> V:
    """Mark a view that answers a database outage itself (the middleware leaves it alone)."""
    view.handles_database_errors = True  # type: ignore[attr-defined]
    return view


def _language(request: HttpRequest) -> str:
    # As mttcrm.middleware.DefaultLanguageMiddleware (which may not have run: it sits further in).
    chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, "")
    return chosen if chosen in {code for code, _name in settings.LANGUAGES} else settings.LANGUAGE_CODE


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return request.path.endswith(".json") or ("application/json" in accept and "text/html" not in accept)


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """The translated 503 (an HTML page, or JSON for scripts), rendered without touching the database."""
    with translation.override(_language(request)):
        message = _("The CRM cannot reach its database right now. Please try again in a minute.")
        response: HttpResponse
        if _wants_json(request):
            response = JsonResponse({"ok": False, "error": message}, status=503)
        else:
            # No RequestContext: context processors (the user, the callbacks badge) would query.
            page = render_to_string(
                "503.html",
                {"message": message, "retry_after": RETRY_AFTER_SECONDS, "lang": translation.get_language()},
            )
            response = HttpResponse(page, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def _mark_request(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """got_request_exception: remember a database outage on the request (raised outside any view)."""
    exc = sys.exc_info()[1]
    if request is not None and exc is not None and is_database_unavailable(exc):
        setattr(request, _MARK, True)
        _breaker.trip(exc)


got_request_exception.connect(_mark_request, dispatch_uid="mttcrm.dbdown.mark_request")


class DatabaseUnavailableMiddleware:
    """Pages during a database outage: 503 at once while it is known, never a traceback.

    Sits before SessionMiddleware so that a failing session save (further in) is covered too.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if getattr(request, _MARK, False) and response.status_code >= 500:
            return unavailable_response(request)
        return response

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        if getattr(view_func, "handles_database_errors", False):
            return None
        try:
            database_gate()
        except DatabaseUnavailable:
            return unavailable_response(request)
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_database_unavailable(exception):
            return None
        _breaker.trip(exception)
        logger.warning("%s %s: database unavailable, answered 503", request.method, request.path)
        return unavailable_response(request)

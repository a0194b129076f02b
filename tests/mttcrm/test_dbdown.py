"""Pages while the database is unavailable (mttcrm/dbdown.py), with simulated errors on SQLite.

The real outage — a private PostgreSQL stopped under Daphne — is tests/faults/test_database_down.py.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any
from unittest import mock

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import InterfaceError, OperationalError
from django.test import Client
from django.utils import translation
from psycopg_pool import PoolTimeout

from mttcrm import dbdown

pytestmark = pytest.mark.django_db

LOST = "consuming input failed: server closed the connection unexpectedly"


@pytest.fixture(autouse=True)
def _no_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dbdown, "_probe_once", lambda: False)


def _wrapped(cause: BaseException) -> OperationalError:
    """What Django raises: its own OperationalError with the driver's error as the cause."""
    try:
        raise OperationalError(str(cause)) from cause
    except OperationalError as exc:
        return exc


def _PgError(sqlstate: str) -> psycopg.Error:
    """The psycopg error class PostgreSQL's SQLSTATE maps to (AdminShutdown for 57P01, …)."""
    return psycopg.errors.lookup(sqlstate)("x")


@pytest.mark.parametrize(
    ("exc", "unavailable"),
    [
        (_wrapped(psycopg.OperationalError(LOST)), True),  # no SQLSTATE: the connection itself
        (_wrapped(PoolTimeout("couldn't get a connection after 2.00 sec")), True),
        (PoolTimeout("couldn't get a connection"), True),  # raw, from the gate
        (_wrapped(_PgError("57P01")), True),  # terminating connection due to administrator command
        (_wrapped(_PgError("08006")), True),  # connection failure
        (_wrapped(_PgError("53300")), True),  # too many connections
        (_wrapped(_PgError("40P01")), False),  # deadlock: a query failed, the server is fine
        (_wrapped(_PgError("57014")), False),  # statement timeout
        (InterfaceError("connection already closed"), True),
        (_wrapped(sqlite3.OperationalError("unable to open database file")), True),
        (_wrapped(sqlite3.OperationalError("database is locked")), False),
        (ValueError("no"), False),
    ],
)
def test_what_counts_as_the_database_being_unavailable(exc: BaseException, unavailable: bool) -> None:
    assert dbdown.is_database_unavailable(exc) is unavailable


def test_a_page_failing_for_want_of_the_database_is_a_translated_503(
    client: Client, operator_user: Any
) -> None:
    client.force_login(operator_user)
    with mock.patch(
        "mttcrm.views.live.recent_for_user", side_effect=_wrapped(psycopg.OperationalError(LOST))
    ):
        response = client.get("/")
    assert response.status_code == 503
    assert response["Retry-After"] == str(dbdown.RETRY_AFTER_SECONDS)
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    assert 'lang="ru"' in page
    assert "Traceback" not in page and "OperationalError" not in page and LOST not in page
    assert dbdown.database_marked_down()


def test_the_503_page_speaks_the_users_language(client: Client, operator_user: Any) -> None:
    client.force_login(operator_user)
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "en"
    dbdown.database_note_error(_wrapped(psycopg.OperationalError(LOST)))
    response = client.get("/contacts/")
    assert response.status_code == 503
    with translation.override("en"):
        assert "cannot reach its database" in response.content.decode()
    assert 'lang="en"' in response.content.decode()


def test_while_the_database_is_known_down_pages_answer_at_once(
    client: Client, operator_user: Any, django_assert_num_queries: Any
) -> None:
    client.force_login(operator_user)
    dbdown.database_note_error(_wrapped(psycopg.OperationalError(LOST)))
    with django_assert_num_queries(0):
        page = client.get("/calls/")
        data = client.get("/calls/active.json")
    assert page.status_code == data.status_code == 503
    assert page["Content-Type"].startswith("text/html")
    # Scripts get JSON (the workspace's resync reads it).
    assert data.json()["ok"] is False
    # /healthz still reports for itself (JSON), it is not replaced by the page.
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.json()["checks"]["database"]["ok"] is False
    dbdown.database_breaker_reset()
    assert client.get("/calls/").status_code == 200


def test_a_failure_further_in_than_the_view_is_a_503_too(client: Client, operator_user: Any) -> None:
    """The session is saved by SessionMiddleware after the view: its failure never reaches the view."""
    client.force_login(operator_user)
    client.raise_request_exception = False
    with mock.patch(
        "django.contrib.sessions.middleware.SessionMiddleware.process_response",
        side_effect=_wrapped(psycopg.OperationalError(LOST)),
    ):
        response = client.get("/contacts/")
    assert response.status_code == 503
    assert "Traceback" not in response.content.decode()


def test_an_ordinary_query_error_is_not_taken_for_an_outage(client: Client, operator_user: Any) -> None:
    client.force_login(operator_user)
    client.raise_request_exception = False
    with mock.patch("mttcrm.views.live.recent_for_user", side_effect=_wrapped(_PgError("40P01"))):
        response = client.get("/")
    assert response.status_code == 500
    assert not dbdown.database_marked_down()


class _FakeConnection:
    """Django's connection wrapper as the gate sees it, on our backend's pool."""

    vendor = "postgresql"

    def __init__(self, error: BaseException | None) -> None:
        self.error = error
        self.connection: object | None = None
        self.pool = mock.MagicMock(timeout=10.0)
        self.waited: float | None = None

    def ensure_connection(self) -> None:
        from mttcrm.pgbackend.base import _CHECKOUT_WAIT

        self.waited = _CHECKOUT_WAIT.get()  # what the pool's checkout would wait
        if self.error is not None:
            raise self.error
        self.connection = object()


def test_the_gate_waits_briefly_for_a_pooled_connection_and_opens_the_breaker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No pooled connection within GATE_WAIT_SECONDS (the database gone, or the pool exhausted): 503 at
    once instead of DB_POOL_TIMEOUT on the thread that serves every synchronous view."""
    failing = _FakeConnection(OperationalError("couldn't get a connection after 2.00 sec"))
    monkeypatch.setattr(dbdown, "connections", {dbdown.DEFAULT_DB_ALIAS: failing})
    with pytest.raises(dbdown.DatabaseUnavailable):
        dbdown.database_gate()
    assert failing.waited == dbdown.GATE_WAIT_SECONDS
    assert dbdown.database_marked_down()
    dbdown.database_breaker_reset()

    working = _FakeConnection(None)
    monkeypatch.setattr(dbdown, "connections", {dbdown.DEFAULT_DB_ALIAS: working})
    dbdown.database_gate()
    # The request's own connection is opened (the view uses it), with the short wait.
    assert working.connection is not None and working.waited == dbdown.GATE_WAIT_SECONDS
    # Only the gate's own checkout waits less: later ones wait the pool's timeout again.
    from mttcrm.pgbackend.base import _CHECKOUT_WAIT

    assert _CHECKOUT_WAIT.get() is None


def test_the_probe_closes_the_breaker_and_runs_the_recovery_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dbdown, "PROBE_EVERY_SECONDS", 0.01)
    answers = iter([False, False, True])
    monkeypatch.setattr(dbdown, "_probe_once", lambda: next(answers, True))
    ran: list[str] = []
    dbdown.database_note_error(_wrapped(psycopg.OperationalError(LOST)))
    dbdown.database_on_recovery(lambda: ran.append("replay"))
    deadline = time.monotonic() + 30
    while dbdown.database_marked_down() and time.monotonic() < deadline:
        time.sleep(0.01)
    while not ran and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not dbdown.database_marked_down()
    assert ran == ["replay"]

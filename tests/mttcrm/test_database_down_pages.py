"""Pages while the database is unavailable (mttcrm/middleware.py), with simulated errors on SQLite.

The real outage — a private PostgreSQL stopped under the running stack — is tests/faults/test_database_down.py.
"""

from __future__ import annotations

import sqlite3
from typing import Any
from unittest import mock

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import InterfaceError, OperationalError
from django.test import Client
from django.utils import translation
from psycopg_pool import PoolTimeout

from mttcrm import middleware

pytestmark = pytest.mark.django_db

LOST = "consuming input failed: server closed the connection unexpectedly"


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
    assert middleware.database_unavailable(exc) is unavailable


def test_a_page_failing_for_want_of_the_database_is_a_translated_503(
    client: Client, operator_user: Any
) -> None:
    client.force_login(operator_user)
    with mock.patch(
        "calls.views_live.live.recent_for_user", side_effect=_wrapped(psycopg.OperationalError(LOST))
    ):
        response = client.get("/")
    assert response.status_code == 503
    assert response["Retry-After"] == str(middleware.RETRY_AFTER_SECONDS)
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    assert 'lang="ru"' in page
    assert "Traceback" not in page and "OperationalError" not in page and LOST not in page


def test_the_503_page_speaks_the_users_language(client: Client, operator_user: Any) -> None:
    client.force_login(operator_user)
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "en"
    with mock.patch("contacts.views.Paginator", side_effect=_wrapped(psycopg.OperationalError(LOST))):
        response = client.get("/contacts/")
    assert response.status_code == 503
    with translation.override("en"):
        assert "cannot reach its database" in response.content.decode()
    assert 'lang="en"' in response.content.decode()


def test_scripts_get_json(client: Client, operator_user: Any) -> None:
    client.force_login(operator_user)
    with mock.patch(
        "calls.views_live.live.cards_for_user", side_effect=_wrapped(psycopg.OperationalError(LOST))
    ):
        data = client.get("/calls/active.json")
    assert data.status_code == 503
    assert data.json()["ok"] is False  # the workspace's resync reads it


def test_healthz_reports_the_database_for_itself(client: Client) -> None:
    with mock.patch("monitoring.views._check_database", side_effect=_wrapped(psycopg.OperationalError(LOST))):
        health = client.get("/healthz")
    assert health.status_code == 503
    assert health.json()["checks"]["database"]["ok"] is False


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
    with mock.patch("calls.views_live.live.recent_for_user", side_effect=_wrapped(_PgError("40P01"))):
        response = client.get("/")
    assert response.status_code == 500

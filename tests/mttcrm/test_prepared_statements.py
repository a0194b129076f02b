"""PostgreSQL prepares the statements a process runs again and again (DB_PREPARED_STATEMENTS), unless told
not to (a pooler such as PgBouncer in transaction mode cannot keep them)."""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import connection

from integrations.applier import applier_drain
from integrations.inbox import notification_store
from integrations.mtt.notifications import parse_body
from tests.calls import payloads
from tests.mttcrm.settings_probe import fresh_env, run_python

# Runs one statement ten times, then prints how many statements the server holds prepared for the session.
PROBE = """
import django
django.setup()
from django.db import connection
with connection.cursor() as cursor:
    for _ in range(10):
        cursor.execute("SELECT %s::int + 1", [1])
    cursor.execute("SELECT count(*) FROM pg_prepared_statements")
    print(cursor.fetchone()[0])
"""


def _prepared_in_fresh_process(**env: str) -> int:
    # The test database, which exists while the tests run (DATABASE_URL names one that may not).
    url = urlsplit(os.environ["DATABASE_URL"])._replace(path="/" + connection.settings_dict["NAME"]).geturl()
    result = run_python(PROBE, fresh_env({"DATABASE_URL": url, **env}, without=("DJANGO_", "DB_PREPARED")))
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip().splitlines()[-1])


@pytest.mark.django_db
def test_a_statement_run_again_and_again_is_prepared(postgres_only: None) -> None:
    assert _prepared_in_fresh_process() >= 1


@pytest.mark.django_db
def test_prepared_statements_can_be_turned_off(postgres_only: None) -> None:
    assert _prepared_in_fresh_process(DB_PREPARED_STATEMENTS="false") == 0


@pytest.mark.django_db
def test_applying_notifications_runs_on_prepared_statements(postgres_only: None, integration: Any) -> None:
    # The test process runs the project's settings too: after a few calls, the statements that lock a
    # call and write its rows are held prepared on this connection.
    for number in range(6):
        for body in payloads.incoming_answered(base=f"call{number}_00015ED635780FC7"):
            notification_store(integration_id=integration.pk, envelope=parse_body(json.dumps(body).encode()))
        applier_drain()
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("FOR UPDATE OF c" in text for text in prepared), prepared
    assert any(text.startswith('UPDATE "calls_callleg"') for text in prepared), prepared

"""GET /ping: the trivial view bench/load.py compares the notify URL with."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client

pytestmark = pytest.mark.django_db


def test_ping_answers_ok_without_database_or_session(client: Client, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        response = client.get("/ping")
    assert response.status_code == 200
    assert response.content == b"ok"
    assert response["Content-Type"].startswith("text/plain")
    assert not response.cookies  # no session, no CSRF cookie: nothing is stored for a caller


def test_ping_needs_no_login_and_head_works(client: Client) -> None:
    assert client.head("/ping").status_code == 200


def test_ping_refuses_writes(client: Client) -> None:
    assert client.post("/ping").status_code == 405
    assert client.delete("/ping").status_code == 405


def test_ping_answers_while_the_database_does_not(client: Client) -> None:
    """A liveness check of this process, not of the database (/healthz is that): no 503."""
    with mock.patch(
        "django.db.backends.base.base.BaseDatabaseWrapper.ensure_connection",
        side_effect=OperationalError("down"),
    ):
        response = client.get("/ping")
    assert response.status_code == 200 and response.content == b"ok"

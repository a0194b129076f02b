from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_healthz_reports_each_dependency(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] is True
    assert set(body["checks"]) == {"database", "channel_layer", "broker"}
    assert all(check["ok"] for check in body["checks"].values())


def test_healthz_is_503_when_the_database_does_not_answer(client: Client) -> None:
    with mock.patch("monitoring.views._check_database", side_effect=RuntimeError("connection refused")):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["checks"]["database"]["ok"] is False
    assert "connection refused" in body["checks"]["database"]["error"]
    assert body["checks"]["broker"]["ok"] is True


def test_healthz_is_503_when_the_broker_does_not_answer(client: Client) -> None:
    with mock.patch("monitoring.views._check_broker", side_effect=ConnectionError("broker down")):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False


def test_workspace_needs_login(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_login_page_speaks_russian_by_default(client: Client) -> None:
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert 'lang="ru"' in response.content.decode()
    assert "Войти" in response.content.decode()


def test_russian_even_when_the_browser_asks_for_english(client: Client) -> None:
    response = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert 'lang="ru"' in response.content.decode()
    assert response["Content-Language"] == "ru"


def test_english_is_available(client: Client) -> None:
    client.post("/i18n/setlang/", {"language": "en", "next": "/accounts/login/"})
    response = client.get("/accounts/login/")
    assert 'lang="en"' in response.content.decode()
    assert "Log in" in response.content.decode()


def test_login_then_workspace_then_logout(client: Client, operator_user: Any) -> None:
    response = client.post("/accounts/login/", {"username": "operator", "password": "operator-pass-123"})
    assert response.status_code == 302
    page = client.get("/")
    assert page.status_code == 200
    assert "operator" in page.content.decode()
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302


def test_wrong_password_is_refused(client: Client, operator_user: Any) -> None:
    response = client.post("/accounts/login/", {"username": "operator", "password": "nope"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session

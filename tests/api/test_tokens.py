"""API tokens: never stored in plain text, shown once in the admin, revocable, expiring, scoped, throttled."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from api.models import ApiToken
from api.services import api_token_create
from tests.personas import World

from .tokens import token_client

pytestmark = pytest.mark.django_db


def _stored_text() -> str:
    """Every column of every token row, as the database holds it."""
    table = ApiToken._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT * FROM "{table}"')
        return repr(cursor.fetchall())


def test_a_token_is_stored_as_its_digest_and_prefix_only(world: World) -> None:
    token, raw = api_token_create(user=world.users["operator"], name="1C")
    assert raw.startswith("mttcrm_") and len(raw) >= 40
    assert raw not in _stored_text()
    assert raw[len("mttcrm_") + 6 :] not in _stored_text()
    assert token.digest == hashlib.sha256(raw.encode()).hexdigest()
    assert raw.startswith(token.prefix) and len(token.prefix) < 16
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get("/api/v1/calls/").status_code == 200


def test_the_admin_shows_a_new_token_once_and_stores_only_its_digest(world: World) -> None:
    admin = _admin_client(world)
    response = _add_token(admin, name="BI", user=world.users["operator"])
    assert response.status_code == 200, response.content[:500]
    token = ApiToken.objects.get(name="BI")
    page = response.content.decode()
    raw = page.split('<code class="api-token">', 1)[1].split("</code>", 1)[0]
    assert raw.startswith(token.prefix) and token.digest == hashlib.sha256(raw.encode()).hexdigest()
    assert "no-store" in response["Cache-Control"]
    # Nowhere at rest: not in the table, not in a session (no message carries it).
    assert raw not in _stored_text()
    assert all(raw not in str(s.get_decoded()) for s in Session.objects.all())
    # The change page shows the prefix, never the token.
    change = admin.get(f"/admin/api/apitoken/{token.pk}/change/").content.decode()
    assert token.prefix in change and raw not in change
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get("/api/v1/contacts/").status_code == 200


def test_a_revoked_token_is_refused(world: World) -> None:
    token, raw = api_token_create(user=world.users["operator"], name="x")
    admin = _admin_client(world)
    admin.post("/admin/api/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is not None
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = api.get("/api/v1/calls/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer mttcrm_wrong",
        "Bearer",
        "Bearer a b",
        "Token nope",
        "Bearer " + "x" * 300,
        "Bearer mttcrm_\u00e9",
    ],
)
def test_bad_credentials_are_401(world: World, header: str) -> None:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=header)
    assert api.get("/api/v1/calls/").status_code == 401


def test_an_expired_token_or_an_inactive_user_is_refused(world: World) -> None:
    _t, expired = api_token_create(
        user=world.users["operator"], name="old", expires_at=timezone.now() - timedelta(seconds=1)
    )
    _t, inactive = api_token_create(user=world.other_operator, name="gone")
    world.other_operator.is_active = False
    world.other_operator.save()
    for raw in (expired, inactive):
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        assert api.get("/api/v1/calls/").status_code == 401


def test_last_used_is_recorded(world: World) -> None:
    token, raw = api_token_create(user=world.users["operator"], name="x")
    assert token.last_used_at is None
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    api.get("/api/v1/calls/")
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_throttling_counts_per_token(world: World, settings: Any) -> None:
    settings.API_THROTTLE_RATE = "3/min"
    first, second = token_client(world.users["operator"]), token_client(world.users["operator"])
    assert [first.get("/api/v1/calls/").status_code for _ in range(3)] == [200, 200, 200]
    refused = first.get("/api/v1/calls/")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    # Another token of the same user has its own budget.
    assert second.get("/api/v1/calls/").status_code == 200


def test_a_login_session_may_use_the_api_with_csrf(world: World) -> None:
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(world.users["operator"])
    assert browser.get("/api/v1/calls/").status_code == 200
    # A write from a session needs the CSRF token, like every form of the CRM.
    assert browser.post("/api/v1/contacts/", {"name": "X"}, format="json").status_code == 403


def test_the_docs_page_and_schema(world: World) -> None:
    browser = Client()
    browser.force_login(world.users["operator"])
    page = browser.get("/api/docs/")
    assert page.status_code == 200 and b"swagger-ui" in page.content
    assert b"<script>" not in page.content  # the CSP allows no inline script: it is a file of its own
    script = browser.get("/api/docs/?script=")
    assert script.status_code == 200 and b"SwaggerUIBundle" in script.content
    schema = browser.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in (
        "/api/v1/calls/",
        "/api/v1/calls/{id}/",
        "/api/v1/calls/dial/",
        "/api/v1/contacts/",
        "/api/v1/contacts/{id}/",
        "/api/v1/recordings/{id}/audio/",
        "/api/v1/callbacks/{id}/take/",
    ):
        assert path in paths, path
    assert Client().get("/api/docs/").status_code == 401


def test_answers_are_in_russian_by_default(world: World, settings: Any) -> None:
    settings.LANGUAGE_CODE = "ru"
    api = token_client(world.users["operator"], scope="read")
    refused = api.post("/api/v1/contacts/", {"name": "X"}, format="json")
    assert refused.json()["detail"].startswith("Этот токен только для чтения")
    dial = token_client(world.users["supervisor"]).post(
        "/api/v1/calls/dial/", {"number": "89031234567"}, format="json"
    )
    assert dial.status_code == 409 and "рабоч" in dial.json()["error"]


def test_staff_who_is_not_a_superuser_issues_tokens_for_themselves_only(world: World) -> None:
    """A token acts as its owner: one issued for someone else (a superuser) would be their powers."""
    supervisor = world.users["supervisor"]
    supervisor.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="api", codename__in=["add_apitoken", "view_apitoken"]
        )
    )
    staff = Client()
    staff.force_login(supervisor)
    form = staff.get("/admin/api/apitoken/add/").content.decode()
    assert 'name="user"' not in form
    # A user id posted all the same is not taken: the token is the supervisor's own.
    response = _add_token(staff, name="mine", user=world.users["admin"])
    assert response.status_code == 200, response.content[:500]
    assert ApiToken.objects.get(name="mine").user == supervisor
    assert not ApiToken.objects.filter(user=world.users["admin"]).exists()
    # A superuser still chooses the owner.
    assert 'name="user"' in _admin_client(world).get("/admin/api/apitoken/add/").content.decode()


def _admin_client(world: World) -> Client:
    client = Client()
    client.force_login(world.users["admin"])
    return client


def _add_token(client: Client, *, name: str, user: Any) -> Any:
    """The admin's "Add API token" form posted: a read-only token for ``user``, never expiring."""
    return client.post(
        "/admin/api/apitoken/add/",
        {"user": user.pk, "name": name, "scope": "read", "expires_at_0": "", "expires_at_1": ""},
    )

from __future__ import annotations

import logging
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
import responses
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from integrations.models import Integration
from integrations.tokens import integration_access_token
from tests.conftest import load_fixture

pytestmark = pytest.mark.django_db

SECRET_COLUMNS = ("client_secret", "access_token", "refresh_token")


def raw_row(pk: int) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(SECRET_COLUMNS)} FROM integrations_integration WHERE id = %s",
            [pk],
        )
        return dict(zip(SECRET_COLUMNS, cursor.fetchone(), strict=True))


def test_secrets_are_encrypted_at_rest(integration: Integration) -> None:
    stored = raw_row(integration.pk)
    for column, plain in zip(SECRET_COLUMNS, ("secret-1", "access-token-1", "refresh-token-1"), strict=True):
        assert plain not in stored[column]
        assert stored[column].startswith("gAAAA")  # a Fernet token
    fresh = Integration.objects.get(pk=integration.pk)
    assert (fresh.client_secret, fresh.access_token, fresh.refresh_token) == (
        "secret-1",
        "access-token-1",
        "refresh-token-1",
    )


def test_secrets_never_reach_the_logs(integration: Integration, caplog: pytest.LogCaptureFixture) -> None:
    body = load_fixture("api/oauth_token_refresh.json")
    Integration.objects.filter(pk=integration.pk).update(access_token_expires_at=timezone.now())
    integration.refresh_from_db()
    caplog.set_level(logging.DEBUG)
    with responses.RequestsMock() as mocked:
        mocked.post("http://oauth.mtt.test/oauth/token", json=body)
        integration_access_token(integration=integration)
    with responses.RequestsMock() as mocked:
        mocked.post("http://oauth.mtt.test/oauth/token", status=400, json={"error": "invalid_grant"})
        Integration.objects.filter(pk=integration.pk).update(access_token_expires_at=timezone.now())
        integration.refresh_from_db()
        with pytest.raises(Exception):  # noqa: B017
            integration_access_token(integration=integration)
    text = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    assert caplog.records, "the flow logs something"
    for secret in ("secret-1", "refresh-token-1", body["access_token"], body["refresh_token"]):
        assert secret not in text
    assert secret not in repr(integration)


def test_rotate_keys_reencrypts_with_the_new_key(integration: Integration, settings: Any) -> None:
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    before = raw_row(integration.pk)
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    out = StringIO()
    call_command("mtt", "rotate-keys", stdout=out)
    assert "1 integration" in out.getvalue()
    after = raw_row(integration.pk)
    for column in SECRET_COLUMNS:
        assert after[column] != before[column]
        Fernet(new_key.encode()).decrypt(after[column].encode())  # readable with the new key alone
        with pytest.raises(InvalidToken):
            Fernet(old_key.encode()).decrypt(after[column].encode())
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key is gone
    assert Integration.objects.get(pk=integration.pk).client_secret == "secret-1"


def test_mtt_add_prints_the_notify_url_last(settings: Any) -> None:
    settings.SITE_URL = "https://crm.example.com"
    out = StringIO()
    call_command(
        "mtt",
        "add",
        "Office",
        "--client-id",
        "ccb350cc-6218-40b0-b134-3d290f00b9e7",
        "--client-secret",
        "iNmTWpDLeYkyzkUTVuCQwa",
        "--api-url",
        "https://api.example.com",
        stdout=out,
    )
    integration = Integration.objects.get(name="Office")
    last_line = out.getvalue().strip().splitlines()[-1]
    assert last_line == f"https://crm.example.com/mtt/{integration.notify_token}/"
    assert integration.oauth_url == "https://oauth.mtt.ru"
    assert integration.api_url == "https://api.example.com"
    assert integration.client_secret == "iNmTWpDLeYkyzkUTVuCQwa"
    assert integration.status == Integration.Status.NOT_CONNECTED
    assert len(integration.notify_token) >= 43  # 256 bits, url-safe base64


def test_mtt_add_refuses_a_duplicate_and_a_bad_url() -> None:
    call_command("mtt", "add", "A", "--client-id", "x", "--client-secret", "y", stdout=StringIO())
    with pytest.raises(CommandError, match="exists"):
        call_command("mtt", "add", "A", "--client-id", "x", "--client-secret", "y", stdout=StringIO())
    with pytest.raises(CommandError, match="api_url"):
        call_command("mtt", "add", "B", "--client-id", "x", "--client-secret", "y", "--api-url", "nope")


def test_mtt_list_is_tab_separated(integration: Integration, settings: Any) -> None:
    settings.SITE_URL = "https://crm.example.com"
    Integration.objects.create(name="Another", client_id="c", client_secret="s")
    out = StringIO()
    call_command("mtt", "list", stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert [line.split("\t") for line in lines] == [
        ["Another", "not_connected", Integration.objects.get(name="Another").notify_url],
        ["Test", "connected", f"https://crm.example.com/mtt/{integration.notify_token}/"],
    ]


def test_notify_tokens_are_unique_and_unguessable(db: Any) -> None:
    tokens = {
        Integration.objects.create(name=f"i{i}", client_id="c", client_secret="s").notify_token
        for i in range(20)
    }
    assert len(tokens) == 20


def test_expiry_bookkeeping(integration: Integration) -> None:
    assert integration.access_token_valid(margin_seconds=60)
    Integration.objects.filter(pk=integration.pk).update(
        access_token_expires_at=timezone.now() + timedelta(seconds=30)
    )
    integration.refresh_from_db()
    assert not integration.access_token_valid(margin_seconds=60)

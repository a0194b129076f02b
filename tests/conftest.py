from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

FIXTURES = Path(__file__).parent / "fixtures" / "mtt"


def load_fixture(relative: str) -> Any:
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def _celery_eager(settings: Any) -> Iterator[None]:
    """Tasks run inline in tests unless a test starts a real worker."""
    from mttcrm.celery import app

    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """PBKDF2's 1,000,000 rounds took most of the suite's time in user fixtures; tests check behaviour,
    not the hasher (production keeps Django's default)."""
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",  # hashes made outside a test still verify
    ]


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    """Per-process state keyed by ids, which tests reuse: the directory cache of applying, the inbox's
    last-seen writes, the webhooks' cache of subscribed events."""
    from calls.legs import directory_forget
    from integrations.inbox import inbox_process_state_reset
    from webhooks.services import webhook_subscriptions_changed

    for forget in (directory_forget, inbox_process_state_reset, webhook_subscriptions_changed):
        forget()
    yield
    for forget in (directory_forget, inbox_process_state_reset, webhook_subscriptions_changed):
        forget()


@pytest.fixture(autouse=True)
def _isolated_var(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.NOTIFY_SPOOL_DIR = settings.VAR_DIR / "spool"


@pytest.fixture(autouse=True)
def _channel_layer(request: Any, settings: Any) -> None:
    """Without Redis, tests push into the in-memory layer (nobody listens); tests marked ``live_layer`` keep
    the layer of the settings (channels-lite's SQLite file, or Redis), which crosses threads and processes."""
    if settings.REDIS_URL or request.node.get_closest_marker("live_layer"):
        return
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def apply_inbox(db: Any) -> Any:
    """Run the applier over everything due, as the applier process does (integrations/applier.py)."""
    from integrations.applier import applier_drain

    return applier_drain


@pytest.fixture
def postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (SELECT ... FOR UPDATE does nothing on SQLite); set DATABASE_URL")


@pytest.fixture
def admin_user(db: Any) -> Any:
    return get_user_model().objects.create_superuser("root", "root@example.com", "root-pass-123")


@pytest.fixture
def operator_user(db: Any) -> Any:
    return get_user_model().objects.create_user("operator", password="operator-pass-123")


@pytest.fixture
def integration(db: Any) -> Any:
    """A connected integration whose API lives at http://mtt.test (mock it with `responses`)."""
    from integrations.models import Integration

    now = timezone.now()
    return Integration.objects.create(
        name="Test",
        client_id="client-1",
        client_secret="secret-1",
        oauth_url="http://oauth.mtt.test",
        api_url="http://mtt.test",
        status=Integration.Status.CONNECTED,
        access_token="access-token-1",
        access_token_expires_at=now + timedelta(hours=2),
        refresh_token="refresh-token-1",
        refresh_token_expires_at=now + timedelta(days=3),
    )


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Browser tests last: Playwright's sync API keeps an event loop running in the main thread for the
    rest of the session, which would break the async tests (pytest-asyncio, async_to_sync) after it."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)

"""Login throttling (django-axes): N wrong passwords lock a username from an address for M minutes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import translation

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
GOOD = "right-pass-123"


@pytest.fixture(autouse=True)
def _english_and_small_limits(settings: Any) -> Any:
    settings.LANGUAGE_CODE = "en"
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    settings.TRUSTED_PROXIES = []
    # Fast hashing: every attempt here checks a password.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with translation.override("en"):
        yield settings


@pytest.fixture
def users(db: Any) -> dict[str, Any]:
    make = get_user_model().objects.create_user
    return {"ivanova": make("ivanova", password=GOOD), "petrov": make("petrov", password=GOOD)}


def login(username: str, password: str, remote: str = "198.51.100.1", **extra: Any) -> Any:
    return Client().post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=remote, **extra)


def fail(times: int, username: str = "ivanova", remote: str = "198.51.100.1", **extra: Any) -> None:
    for _ in range(times):
        response = login(username, "wrong-password", remote, **extra)
        assert response.status_code in (200, 429)


def test_right_password_logs_in(users: dict[str, Any]) -> None:
    response = login("ivanova", GOOD)
    assert response.status_code == 302
    assert response["Location"] == reverse("calls:workspace")


def test_below_the_limit_still_logs_in_and_clears_the_count(users: dict[str, Any]) -> None:
    fail(2)
    assert login("ivanova", GOOD).status_code == 302
    assert AccessAttempt.objects.count() == 0
    fail(2)  # counting starts again
    assert login("ivanova", GOOD).status_code == 302


def test_locked_after_n_failures_even_with_the_right_password(users: dict[str, Any]) -> None:
    fail(2)
    third = login("ivanova", "wrong-password")
    assert third.status_code == 429
    locked = login("ivanova", GOOD)
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed login attempts" in page
    assert "15 minutes" in page
    assert 'name="username"' in page  # still the login page, with the reason
    assert "_auth_user_id" not in Client().session


def test_other_users_and_other_addresses_are_not_affected(users: dict[str, Any]) -> None:
    fail(3)
    assert login("ivanova", GOOD).status_code == 429
    assert login("petrov", GOOD).status_code == 302
    assert login("ivanova", GOOD, remote="198.51.100.2").status_code == 302


def test_unlocked_after_the_cool_off(users: dict[str, Any]) -> None:
    fail(3)
    assert login("ivanova", GOOD).status_code == 429
    # Time travel: every recorded failure happened 16 minutes ago.
    for attempt in AccessAttempt.objects.all():
        AccessAttempt.objects.filter(pk=attempt.pk).update(
            attempt_time=attempt.attempt_time - timedelta(minutes=16)
        )
    assert login("ivanova", GOOD).status_code == 302


def test_still_locked_just_before_the_cool_off_ends(users: dict[str, Any]) -> None:
    fail(3)
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=14)
    )
    assert login("ivanova", GOOD).status_code == 429


def test_admin_login_is_throttled_too(users: dict[str, Any]) -> None:
    get_user_model().objects.filter(username="ivanova").update(is_staff=True)
    for _ in range(3):
        Client().post(
            "/admin/login/", {"username": "ivanova", "password": "nope"}, REMOTE_ADDR="198.51.100.1"
        )
    response = Client().post(
        "/admin/login/?next=/admin/", {"username": "ivanova", "password": GOOD}, REMOTE_ADDR="198.51.100.1"
    )
    assert response.status_code == 429


def test_behind_a_trusted_proxy_the_client_address_counts(users: dict[str, Any], settings: Any) -> None:
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    proxy = "10.0.0.2"
    fail(3, remote=proxy, HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert login("ivanova", GOOD, proxy, HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429
    # Another client through the same proxy is not locked out with the first.
    assert login("ivanova", GOOD, proxy, HTTP_X_FORWARDED_FOR="203.0.113.8").status_code == 302


def test_untrusted_peer_cannot_dodge_the_lock_with_forwarded_for(users: dict[str, Any]) -> None:
    fail(3, remote="198.51.100.1")
    response = login("ivanova", GOOD, "198.51.100.1", HTTP_X_FORWARDED_FOR="203.0.113.99")
    assert response.status_code == 429

"""Warning episodes: each warning opens once (one mail), stays, clears, and can open again."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from calls.models import Recording
from integrations.models import Integration, NotificationEvent
from monitoring import services
from monitoring.models import HealthWarning
from monitoring.services import evaluate_health
from tests.concurrency import at_once
from tests.monitoring.factories import notification, recording
from webhooks.models import WebhookSubscription

K = HealthWarning.Kind


def _update(integration: Integration, **fields: Any) -> None:
    Integration.objects.filter(pk=integration.pk).update(**fields)


def make_needs_reconnect(i: Integration) -> None:
    _update(i, status=Integration.Status.NEEDS_RECONNECT, last_error="invalid_grant")


def clear_needs_reconnect(i: Integration) -> None:
    _update(i, status=Integration.Status.CONNECTED, last_error="")


def make_refresh_expiring(i: Integration) -> None:
    _update(i, refresh_token_expires_at=timezone.now() + timedelta(hours=5))


def clear_refresh_expiring(i: Integration) -> None:
    _update(i, refresh_token_expires_at=timezone.now() + timedelta(days=3))


def make_silence(i: Integration) -> None:
    _update(i, last_notification_at=timezone.now() - timedelta(hours=3))


def clear_silence(i: Integration) -> None:
    _update(i, last_notification_at=timezone.now())


def make_backlog(i: Integration) -> None:
    notification(
        i, received_at=timezone.now() - timedelta(minutes=20), status=NotificationEvent.Status.PENDING
    )


def clear_backlog(i: Integration) -> None:
    NotificationEvent.objects.filter(integration=i).update(status=NotificationEvent.Status.APPLIED)


def make_recordings_failing(i: Integration) -> None:
    for _ in range(3):
        recording(i, status=Recording.Status.FAILED, last_attempt_at=timezone.now() - timedelta(hours=1))


def clear_recordings_failing(i: Integration) -> None:
    Recording.objects.filter(integration=i).update(status=Recording.Status.STORED)


def make_webhooks_disabled(i: Integration) -> None:
    WebhookSubscription.objects.create(
        name="ERP",
        url="https://erp.example.com/hook",
        events=["call.finished"],
        secret="whsec_" + "A" * 40,
        is_active=False,
        disabled_at=timezone.now(),
        disabled_reason="deliveries failed for 24 h; last: 500",
    )


def clear_webhooks_disabled(i: Integration) -> None:
    WebhookSubscription.objects.update(is_active=True, disabled_at=None, disabled_reason="")


CASES: dict[str, tuple[Callable[[Integration], None], Callable[[Integration], None]]] = {
    K.NEEDS_RECONNECT: (make_needs_reconnect, clear_needs_reconnect),
    K.REFRESH_TOKEN_EXPIRING: (make_refresh_expiring, clear_refresh_expiring),
    K.SILENCE: (make_silence, clear_silence),
    K.INBOX_BACKLOG: (make_backlog, clear_backlog),
    K.RECORDINGS_FAILING: (make_recordings_failing, clear_recordings_failing),
    K.WEBHOOKS_DISABLED: (make_webhooks_disabled, clear_webhooks_disabled),
}


@pytest.fixture
def quiet(integration: Integration) -> Integration:
    """The shared connected integration, with a notification just now (no silence)."""
    _update(integration, last_notification_at=timezone.now())
    return integration


def test_every_kind_has_a_case() -> None:
    assert set(CASES) == set(K.values)


@pytest.mark.parametrize("kind", list(CASES))
def test_warning_fires_once_stays_clears_and_fires_again(quiet: Integration, kind: str) -> None:
    make, clear = CASES[kind]
    assert evaluate_health().opened == []
    assert mail.outbox == []

    make(quiet)
    first = evaluate_health()
    assert first.opened == [(quiet.pk, kind)]
    episode = HealthWarning.objects.get(integration=quiet, kind=kind)
    assert episode.is_open and episode.mailed_at is not None and episode.message
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["ops@example.com"]
    assert "Test" in sent.subject and str(K(kind).label) in sent.subject
    assert episode.message in sent.body and "/admin/monitoring/integrationhealth/" in sent.body

    # Still there: the same episode, seen again, no second mail.
    second = evaluate_health(now=timezone.now() + timedelta(seconds=1))
    assert second.opened == [] and second.open == [(quiet.pk, kind)]
    assert len(mail.outbox) == 1
    episode.refresh_from_db()
    assert episode.is_open and episode.last_seen_at > episode.opened_at
    assert HealthWarning.objects.count() == 1

    # Cleared: the episode closes, with one "resolved" mail.
    clear(quiet)
    third = evaluate_health()
    assert third.cleared == [(quiet.pk, kind)]
    episode.refresh_from_db()
    assert not episode.is_open
    assert len(mail.outbox) == 2 and "resolved" in mail.outbox[1].subject
    evaluate_health()
    assert len(mail.outbox) == 2

    # Back again: a new episode and a new mail.
    make(quiet)
    assert evaluate_health().opened == [(quiet.pk, kind)]
    assert len(mail.outbox) == 3
    assert HealthWarning.objects.filter(integration=quiet, kind=kind).count() == 2
    assert HealthWarning.objects.filter(integration=quiet, kind=kind, cleared_at__isnull=True).count() == 1


def test_message_follows_the_facts_while_open(quiet: Integration) -> None:
    make_backlog(quiet)
    evaluate_health()
    make_backlog(quiet)
    evaluate_health()
    episode = HealthWarning.objects.get()
    assert episode.message.startswith("2 notifications")
    assert len(mail.outbox) == 1


def test_one_open_episode_per_kind_is_a_database_constraint(integration: Integration) -> None:
    now = timezone.now()
    HealthWarning.objects.create(integration=integration, kind=K.SILENCE, opened_at=now, last_seen_at=now)
    with pytest.raises(IntegrityError), transaction.atomic():
        HealthWarning.objects.create(integration=integration, kind=K.SILENCE, opened_at=now, last_seen_at=now)
    # Cleared ones do not count; other kinds neither.
    HealthWarning.objects.update(cleared_at=now)
    HealthWarning.objects.create(integration=integration, kind=K.SILENCE, opened_at=now, last_seen_at=now)
    HealthWarning.objects.create(
        integration=integration, kind=K.INBOX_BACKLOG, opened_at=now, last_seen_at=now
    )


def test_episode_opened_meanwhile_is_refreshed_not_duplicated(quiet: Integration, monkeypatch: Any) -> None:
    """Another run opened the episode after this run looked (the lost race): the insert is refused by
    the constraint and this run refreshes that episode instead."""
    make_silence(quiet)
    earlier = timezone.now() - timedelta(minutes=1)
    HealthWarning.objects.create(integration=quiet, kind=K.SILENCE, opened_at=earlier, last_seen_at=earlier)
    monkeypatch.setattr(services, "_open_episodes", lambda integration: {})  # the stale look
    run = evaluate_health()
    assert run.opened == [] and run.open == [(quiet.pk, K.SILENCE)]
    episode = HealthWarning.objects.get()
    assert episode.last_seen_at > earlier and episode.message.startswith("No notification")
    # The episode's mail is still sent, once.
    assert len(mail.outbox) == 1
    evaluate_health()
    assert len(mail.outbox) == 1


def test_superusers_get_the_mail_when_admins_is_empty(quiet: Integration, settings: Any) -> None:
    settings.ADMINS = []
    users = get_user_model().objects
    users.create_superuser("boss", "boss@example.com", "x-pass-123")
    users.create_superuser("noaddress", "", "x-pass-123")
    users.create_user("staff", "staff@example.com", "x-pass-123", is_staff=True)
    gone = users.create_superuser("gone", "gone@example.com", "x-pass-123")
    gone.is_active = False
    gone.save()
    make_needs_reconnect(quiet)
    evaluate_health()
    assert [m.to for m in mail.outbox] == [["boss@example.com"]]


def test_nobody_to_mail_leaves_the_episode_unmailed_until_someone_is(
    quiet: Integration, settings: Any
) -> None:
    settings.ADMINS = []
    make_needs_reconnect(quiet)
    evaluate_health()
    episode = HealthWarning.objects.get()
    assert episode.is_open and episode.mailed_at is None
    assert mail.outbox == []
    settings.ADMINS = [("Ops", "ops@example.com")]
    evaluate_health()
    episode.refresh_from_db()
    assert episode.mailed_at is not None and len(mail.outbox) == 1


def test_a_failed_mail_is_retried_by_the_next_check(quiet: Integration, monkeypatch: Any) -> None:
    make_needs_reconnect(quiet)

    def smtp_down(*args: Any, **kwargs: Any) -> None:
        raise OSError("connection refused")

    monkeypatch.setattr(services, "send_mail", smtp_down)
    evaluate_health()
    assert HealthWarning.objects.get().mailed_at is None
    monkeypatch.undo()
    evaluate_health()
    assert HealthWarning.objects.get().mailed_at is not None
    assert len(mail.outbox) == 1


def test_mail_is_in_the_default_language_whatever_is_active(quiet: Integration, settings: Any) -> None:
    settings.LANGUAGE_CODE = "ru"
    make_needs_reconnect(quiet)
    evaluate_health()  # the test's English is active; the mail follows LANGUAGE_CODE
    from django.utils import translation

    with translation.override("ru"):
        expected = str(K.NEEDS_RECONNECT.label)
    assert expected in mail.outbox[0].subject


def test_one_broken_integration_does_not_hide_the_others(quiet: Integration, monkeypatch: Any) -> None:
    broken = Integration.objects.create(
        name="Broken", client_id="c", client_secret="s", status=Integration.Status.CONNECTED
    )
    make_needs_reconnect(quiet)
    real = services.integration_health

    def health(integration: Integration, now: Any = None) -> Any:
        if integration.pk == broken.pk:
            raise RuntimeError("boom")
        return real(integration, now=now)

    monkeypatch.setattr(services, "integration_health", health)
    run = evaluate_health()
    assert run.failed == [broken.pk]
    assert run.opened == [(quiet.pk, K.NEEDS_RECONNECT)]


def test_task_runs_the_check(quiet: Integration) -> None:
    from monitoring.tasks import check_health

    make_needs_reconnect(quiet)
    result = check_health.delay().get()
    assert result["opened"] == 1 and result["mailed"] == 1


def test_beat_schedules_the_check(settings: Any) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["integration-health"]
    assert entry["task"] == "monitoring.tasks.check_health"
    assert entry["schedule"] == settings.HEALTH_CHECK_EVERY_SECONDS


@pytest.mark.django_db(transaction=True)
def test_concurrent_checks_open_one_episode_and_send_one_mail(postgres_only: None, monkeypatch: Any) -> None:
    real_recipients = services.health_recipients

    def slow_recipients() -> list[str]:
        # Between reading the unmailed episodes and claiming one: widens the race window, so that
        # every run has seen the episode unmailed before any of them claims it.
        time.sleep(0.3)
        return real_recipients()

    monkeypatch.setattr(services, "health_recipients", slow_recipients)
    integration = Integration.objects.create(
        name="Race",
        client_id="c",
        client_secret="s",
        status=Integration.Status.NEEDS_RECONNECT,
        last_notification_at=timezone.now(),
    )
    now = timezone.now()
    runs = at_once([lambda: evaluate_health(now=now) for _ in range(6)])
    assert sum(len(run.opened) for run in runs) == 1
    assert sum(run.mailed for run in runs) == 1
    assert HealthWarning.objects.filter(integration=integration).count() == 1
    assert len(mail.outbox) == 1

    # And closing it at once from several runs sends one "resolved" mail.
    Integration.objects.filter(pk=integration.pk).update(status=Integration.Status.CONNECTED)
    runs = at_once([lambda: evaluate_health() for _ in range(6)])
    assert sum(len(run.cleared) for run in runs) == 1
    assert len(mail.outbox) == 2

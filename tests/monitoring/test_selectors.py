"""The health facts against hand-made rows, and the warnings they give."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from calls.models import Recording
from integrations.models import Integration, NotificationEvent
from monitoring.models import HealthWarning
from monitoring.selectors import MethodStats, badge_state, integration_health, warnings_for
from tests.monitoring.factories import notification, recording, request_log

K = HealthWarning.Kind
N = NotificationEvent.Status
R = Recording.Status


@pytest.fixture
def other(db: Any) -> Integration:
    """A second integration: none of its rows may leak into the first one's facts."""
    return Integration.objects.create(name="Other", client_id="c", client_secret="s")


def test_facts_from_hand_made_rows(
    integration: Integration, other: Integration, django_assert_num_queries: Any
) -> None:
    now = timezone.now()
    ago = lambda **kw: now - timedelta(**kw)  # noqa: E731

    # Notifications: three in the last hour (one of them pending), older ones, a failed one.
    notification(integration, received_at=ago(minutes=1))
    notification(integration, received_at=ago(minutes=30))
    notification(integration, received_at=ago(minutes=5), status=N.PENDING)  # pending, not a backlog yet
    notification(integration, received_at=ago(minutes=90), status=N.PENDING)  # pending for too long
    notification(integration, received_at=ago(hours=2))
    notification(integration, received_at=ago(days=3), status=N.FAILED)
    notification(other, received_at=ago(minutes=2), status=N.PENDING)

    # MTT requests in the last hour by method; older ones and the other integration's are left out.
    request_log(integration, method="getWorkplaces", at=ago(minutes=10))
    request_log(integration, method="getWorkplaces", at=ago(minutes=20), ok=False)
    request_log(integration, method="getWorkplaces", at=ago(minutes=30), wait_ms=250, duration_ms=300)
    request_log(integration, method="makeCall", at=ago(minutes=40), ok=False, wait_ms=900)
    request_log(integration, method="makeCall", at=ago(minutes=50), wait_ms=100)
    request_log(integration, method="makeCall", at=ago(hours=2), ok=False, wait_ms=5000)
    request_log(other, method="makeCall", at=ago(minutes=5), ok=False)

    # Recordings.
    recording(integration, status=R.PENDING)
    recording(integration, status=R.DOWNLOADING, last_attempt_at=ago(minutes=3))
    recording(integration, status=R.PENDING, mtt_expires_at=now + timedelta(days=3))  # pending + expiring
    recording(integration, status=R.FAILED, last_attempt_at=ago(hours=1))
    recording(integration, status=R.REFUSED, last_attempt_at=ago(hours=23))
    recording(
        integration, status=R.FAILED, last_attempt_at=ago(days=2), mtt_expires_at=now + timedelta(days=5)
    )
    recording(
        integration, status=R.FAILED, last_attempt_at=ago(days=2), mtt_expires_at=now + timedelta(days=30)
    )
    recording(integration, status=R.PENDING, mtt_expires_at=ago(hours=1))  # already gone at MTT: not expiring
    recording(integration, status=R.STORED, mtt_expires_at=now + timedelta(days=1))  # stored: fine
    recording(other, status=R.FAILED, last_attempt_at=ago(hours=1))

    # Calls closed by the reconciliation: one today, one two days ago, one of the other integration.
    from calls.models import Call

    for owner, when in ((integration, ago(hours=3)), (integration, ago(days=2)), (other, ago(hours=1))):
        call = Call.objects.create(
            integration=owner, call_key=f"lost-{owner.pk}-{when.timestamp()}", status=Call.Status.UNFINISHED
        )
        Call.objects.filter(pk=call.pk).update(updated_at=when)

    refreshed = ago(minutes=12)
    last_seen = ago(minutes=1)
    Integration.objects.filter(pk=integration.pk).update(
        tokens_refreshed_at=refreshed, last_notification_at=last_seen
    )
    integration.refresh_from_db()

    # Inbox, requests, recordings, unfinished calls, disabled webhook subscriptions.
    with django_assert_num_queries(5):
        facts = integration_health(integration, now=now)

    assert facts.status == Integration.Status.CONNECTED
    assert facts.tokens_refreshed_at == refreshed
    assert facts.last_notification_at == last_seen
    assert facts.access_token_expires_at == integration.access_token_expires_at
    assert facts.refresh_token_expires_at == integration.refresh_token_expires_at

    assert facts.notifications_last_hour == 3
    assert facts.inbox_pending == 2
    assert facts.inbox_oldest_pending_at == ago(minutes=90)
    assert facts.inbox_backlog == 1
    assert facts.inbox_failed == 1

    assert facts.by_method == (
        MethodStats("getWorkplaces", requests=3, errors=1, limiter_waits=1, limiter_wait_ms=250,
                    limiter_wait_max_ms=250, avg_duration_ms=167),
        MethodStats("makeCall", requests=2, errors=1, limiter_waits=2, limiter_wait_ms=1000,
                    limiter_wait_max_ms=900, avg_duration_ms=100),
    )  # fmt: skip
    assert (facts.requests_last_hour, facts.errors_last_hour) == (5, 2)
    assert (facts.limiter_waits_last_hour, facts.limiter_wait_ms_last_hour) == (3, 1250)
    assert facts.limiter_wait_max_ms_last_hour == 900

    assert facts.recordings_pending == 4  # pending, downloading, pending expiring, pending already gone
    assert facts.recordings_failed_24h == 2  # failed 1 h ago, refused 23 h ago
    assert facts.recordings_expiring == 2  # pending in 3 days, failed in 5 days

    assert facts.calls_unfinished_24h == 1  # the other integration's and the older one are left out

    assert facts.quiet_for == timedelta(minutes=1)


def test_facts_of_an_integration_with_nothing(other: Integration) -> None:
    facts = integration_health(other)
    assert facts.status == Integration.Status.NOT_CONNECTED
    assert facts.notifications_last_hour == facts.inbox_pending == facts.requests_last_hour == 0
    assert facts.by_method == ()
    assert facts.recordings_pending == facts.recordings_failed_24h == facts.recordings_expiring == 0
    assert facts.quiet_for is None  # not connected: no notification is expected
    assert warnings_for(facts) == []


def test_healthy_integration_has_no_warning(integration: Integration) -> None:
    notification(integration, received_at=timezone.now())
    Integration.objects.filter(pk=integration.pk).update(last_notification_at=timezone.now())
    integration.refresh_from_db()
    assert warnings_for(integration_health(integration)) == []


def kinds(integration: Integration) -> list[str]:
    integration.refresh_from_db()
    return [issue.kind for issue in warnings_for(integration_health(integration))]


def test_needs_reconnect(integration: Integration) -> None:
    Integration.objects.filter(pk=integration.pk).update(
        status=Integration.Status.NEEDS_RECONNECT, last_error="invalid_grant"
    )
    integration.refresh_from_db()
    issues = warnings_for(integration_health(integration))
    assert [i.kind for i in issues] == [K.NEEDS_RECONNECT]
    assert "Reconnect" in issues[0].message and "invalid_grant" in issues[0].message
    assert issues[0].severe


def test_refresh_token_expiring_within_24_hours(integration: Integration) -> None:
    now = timezone.now()
    Integration.objects.filter(pk=integration.pk).update(refresh_token_expires_at=now + timedelta(hours=25))
    assert kinds(integration) == []
    Integration.objects.filter(pk=integration.pk).update(refresh_token_expires_at=now + timedelta(hours=23))
    assert kinds(integration) == [K.REFRESH_TOKEN_EXPIRING]
    Integration.objects.filter(pk=integration.pk).update(refresh_token_expires_at=now - timedelta(hours=1))
    integration.refresh_from_db()
    [issue] = warnings_for(integration_health(integration))
    assert "expired" in issue.message
    # Unknown expiry: nothing to say.
    Integration.objects.filter(pk=integration.pk).update(refresh_token_expires_at=None)
    assert kinds(integration) == []


def test_silence_counts_business_hours_only(integration: Integration, settings: Any) -> None:
    settings.TIME_ZONE = "Europe/Moscow"
    settings.HEALTH_SILENCE_HOURS = 2
    msk = ZoneInfo("Europe/Moscow")
    friday_evening = datetime(2025, 3, 7, 17, 30, tzinfo=msk)
    Integration.objects.filter(pk=integration.pk).update(last_notification_at=friday_evening)
    integration.refresh_from_db()
    monday = datetime(2025, 3, 10, 10, 0, tzinfo=msk)
    monday_later = datetime(2025, 3, 10, 10, 45, tzinfo=msk)

    # Always (empty): 64.5 h of silence.
    settings.HEALTH_BUSINESS_HOURS = ""
    assert [i.kind for i in warnings_for(integration_health(integration, now=monday))] == [K.SILENCE]
    # Weekdays 9-18: 30 min on Friday + 1 h on Monday = 1.5 h, under 2 h.
    settings.HEALTH_BUSINESS_HOURS = "mon-fri 09:00-18:00"
    facts = integration_health(integration, now=monday)
    assert facts.quiet_for == timedelta(hours=1, minutes=30)
    assert warnings_for(facts) == []
    # By 10:45 on Monday: 2 h 15 min of business hours.
    [issue] = warnings_for(integration_health(integration, now=monday_later))
    assert issue.kind == K.SILENCE and "2\xa0hours, 15\xa0minutes" in issue.message
    # 0 turns it off.
    settings.HEALTH_SILENCE_HOURS = 0
    assert warnings_for(integration_health(integration, now=monday_later)) == []


def test_silence_without_any_notification_counts_from_creation(integration: Integration) -> None:
    now = timezone.now()
    Integration.objects.filter(pk=integration.pk).update(created_at=now - timedelta(hours=3))
    assert kinds(integration) == [K.SILENCE]
    integration.refresh_from_db()
    [issue] = warnings_for(integration_health(integration))
    assert "never" in issue.message


def test_inbox_backlog_threshold(integration: Integration, settings: Any) -> None:
    now = timezone.now()
    notification(integration, received_at=now - timedelta(minutes=9), status=N.PENDING)
    Integration.objects.filter(pk=integration.pk).update(last_notification_at=now)
    assert kinds(integration) == []
    notification(integration, received_at=now - timedelta(minutes=11), status=N.PENDING)
    integration.refresh_from_db()
    [issue] = warnings_for(integration_health(integration, now=now))
    assert issue.kind == K.INBOX_BACKLOG and issue.message.startswith("1 notification has waited")
    settings.HEALTH_INBOX_BACKLOG_MINUTES = 0
    assert kinds(integration) == []


def test_recordings_failing_threshold(integration: Integration, settings: Any) -> None:
    now = timezone.now()
    for _ in range(2):
        recording(integration, status=R.FAILED, last_attempt_at=now - timedelta(hours=2))
    recording(integration, status=R.FAILED, last_attempt_at=now - timedelta(hours=30))  # too old
    assert kinds(integration) == []
    recording(integration, status=R.REFUSED, last_attempt_at=now - timedelta(minutes=5))
    integration.refresh_from_db()
    [issue] = warnings_for(integration_health(integration))
    assert issue.kind == K.RECORDINGS_FAILING and issue.message.startswith("3 recordings failed")
    settings.HEALTH_RECORDINGS_FAILED = 0
    assert kinds(integration) == []


def test_badge_state_levels(
    integration: Integration, other: Integration, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(2):
        state = badge_state()
    assert (state.integrations, state.connected, state.warnings, state.level) == (2, 1, 0, "green")
    now = timezone.now()
    HealthWarning.objects.create(integration=integration, kind=K.SILENCE, opened_at=now, last_seen_at=now)
    assert badge_state().level == "amber"
    HealthWarning.objects.create(
        integration=integration, kind=K.REFRESH_TOKEN_EXPIRING, opened_at=now, last_seen_at=now
    )
    assert badge_state().level == "red"
    HealthWarning.objects.all().update(cleared_at=now)
    Integration.objects.filter(pk=integration.pk).update(status=Integration.Status.NEEDS_RECONNECT)
    assert badge_state().level == "red"  # before the first health check has even run
    Integration.objects.filter(pk=integration.pk).update(status=Integration.Status.NOT_CONNECTED)
    assert badge_state().level == "off"

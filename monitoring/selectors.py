"""Reads for the integration health panel, the badge, the warnings and `mtt health`.

``integration_health`` gathers every fact of one integration with three aggregate queries (inbox,
request log by method, recordings); ``warnings_for`` turns facts into the warnings a person must act on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Avg, Count, Max, Min, Q, Sum
from django.utils import timezone
from django.utils.timesince import timesince, timeuntil
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from calls.models import Call, Recording
from integrations.models import Integration, MttRequestLog, NotificationEvent
from webhooks.services import webhooks_disabled_count

from .hours import business_time_between, configured_business_hours
from .models import HealthWarning

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# "refresh token expires within 24 h" (issue 7): the keep-alive refreshes every 30 min, so a refresh
# token this close to its end means refreshing has failed for about two days.
REFRESH_TOKEN_WARNING = timedelta(hours=24)


@dataclass(frozen=True)
class MethodStats:
    """MTT requests of the last hour for one API method."""

    method: str
    requests: int
    errors: int
    limiter_waits: int  # requests that waited for a permit of the shared limiter
    limiter_wait_ms: int  # their total wait
    limiter_wait_max_ms: int
    avg_duration_ms: int


@dataclass(frozen=True)
class HealthFacts:
    integration_id: int
    name: str
    status: str
    now: datetime
    access_token_expires_at: datetime | None
    refresh_token_expires_at: datetime | None
    tokens_refreshed_at: datetime | None
    last_notification_at: datetime | None
    last_error: str
    last_error_at: datetime | None
    notifications_last_hour: int
    inbox_pending: int  # received, not applied yet
    inbox_oldest_pending_at: datetime | None
    inbox_backlog: int  # pending longer than HEALTH_INBOX_BACKLOG_MINUTES
    inbox_failed: int  # set aside after INBOX_MAX_ATTEMPTS (Admin → Notifications)
    requests_last_hour: int
    errors_last_hour: int
    limiter_waits_last_hour: int
    limiter_wait_ms_last_hour: int
    limiter_wait_max_ms_last_hour: int
    by_method: tuple[MethodStats, ...]
    recordings_pending: int  # waiting for download or downloading
    recordings_failed_24h: int  # failed or refused, last attempt within 24 h
    recordings_expiring: int  # not stored, deleted at MTT within RECORDINGS_EXPIRY_WARNING_DAYS
    # Calls closed by the reconciliation in the last 24 h: their final notifications never came.
    calls_unfinished_24h: int
    # Business time (HEALTH_BUSINESS_HOURS) since the last notification, or since the integration was
    # created if none ever came; None when the integration is not connected (nothing is expected).
    quiet_for: timedelta | None
    # Webhook subscriptions disabled after a day of failed deliveries (not per integration: every
    # integration's panel shows them).
    webhooks_disabled: int = 0

    @property
    def status_label(self) -> str:
        return str(Integration.Status(self.status).label)

    @property
    def connected(self) -> bool:
        return self.status == Integration.Status.CONNECTED

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = value.isoformat()
        data["quiet_for_seconds"] = (
            int(self.quiet_for.total_seconds()) if self.quiet_for is not None else None
        )
        del data["quiet_for"]
        return data


@dataclass(frozen=True)
class HealthIssue:
    """A warning that holds now: its kind (HealthWarning.Kind) and what to tell a person."""

    kind: str
    message: str

    @property
    def label(self) -> str:
        return str(HealthWarning.Kind(self.kind).label)

    @property
    def severe(self) -> bool:
        return self.kind in HealthWarning.SEVERE_KINDS


def _notification_facts(integration_id: int, now: datetime) -> dict[str, Any]:
    hour_ago = now - HOUR
    backlog_cutoff = now - timedelta(minutes=settings.HEALTH_INBOX_BACKLOG_MINUTES)
    pending = Q(status=NotificationEvent.Status.PENDING)
    # Only the last hour and the unapplied rows are read (indexes on received_at and status).
    return (
        NotificationEvent.objects.filter(integration_id=integration_id)
        .filter(
            Q(received_at__gte=hour_ago)
            | Q(status__in=[NotificationEvent.Status.PENDING, NotificationEvent.Status.FAILED])
        )
        .aggregate(
            last_hour=Count("pk", filter=Q(received_at__gte=hour_ago, received_at__lte=now)),
            pending=Count("pk", filter=pending),
            oldest_pending=Min("received_at", filter=pending),
            backlog=Count("pk", filter=pending & Q(received_at__lt=backlog_cutoff)),
            failed=Count("pk", filter=Q(status=NotificationEvent.Status.FAILED)),
        )
    )


def _request_facts(integration_id: int, now: datetime) -> tuple[MethodStats, ...]:
    waited = Q(limiter_wait_ms__gt=0)
    rows = (
        MttRequestLog.objects.filter(integration_id=integration_id, created_at__gte=now - HOUR)
        .values("method")
        .annotate(
            requests=Count("pk"),
            errors=Count("pk", filter=Q(ok=False)),
            waits=Count("pk", filter=waited),
            wait_ms=Sum("limiter_wait_ms", default=0),
            wait_max_ms=Max("limiter_wait_ms", default=0),
            avg_ms=Avg("duration_ms", default=0),
        )
        .order_by("method")
    )
    return tuple(
        MethodStats(
            method=row["method"],
            requests=row["requests"],
            errors=row["errors"],
            limiter_waits=row["waits"],
            limiter_wait_ms=int(row["wait_ms"]),
            limiter_wait_max_ms=int(row["wait_max_ms"]),
            avg_duration_ms=round(row["avg_ms"]),
        )
        for row in rows
    )


def _recording_facts(integration_id: int, now: datetime) -> dict[str, Any]:
    waiting = [Recording.Status.PENDING, Recording.Status.DOWNLOADING]
    failed = [Recording.Status.FAILED, Recording.Status.REFUSED]
    not_stored = [*waiting, Recording.Status.FAILED]
    horizon = now + timedelta(days=settings.RECORDINGS_EXPIRY_WARNING_DAYS)
    failed_recently = Q(status__in=failed, last_attempt_at__gte=now - DAY)
    expiring = Q(status__in=not_stored, mtt_expires_at__gt=now, mtt_expires_at__lte=horizon)
    return (
        Recording.objects.filter(integration_id=integration_id)
        .filter(Q(status__in=waiting) | failed_recently | expiring)
        .aggregate(
            pending=Count("pk", filter=Q(status__in=waiting)),
            failed=Count("pk", filter=failed_recently),
            expiring=Count("pk", filter=expiring),
        )
    )


def _unfinished_calls(integration_id: int, now: datetime) -> int:
    return Call.objects.filter(
        integration_id=integration_id, status=Call.Status.UNFINISHED, updated_at__gte=now - DAY
    ).count()


def integration_health(integration: Integration, now: datetime | None = None) -> HealthFacts:
    """Every fact of the health panel for one integration (five queries besides the row itself)."""
    now = now or timezone.now()
    inbox = _notification_facts(integration.pk, now)
    methods = _request_facts(integration.pk, now)
    recordings = _recording_facts(integration.pk, now)
    quiet_for = None
    if integration.status != Integration.Status.NOT_CONNECTED:
        since = integration.last_notification_at or integration.created_at
        quiet_for = business_time_between(since, now, configured_business_hours())
    return HealthFacts(
        integration_id=integration.pk,
        name=integration.name,
        status=integration.status,
        now=now,
        access_token_expires_at=integration.access_token_expires_at,
        refresh_token_expires_at=integration.refresh_token_expires_at,
        tokens_refreshed_at=integration.tokens_refreshed_at,
        last_notification_at=integration.last_notification_at,
        last_error=integration.last_error,
        last_error_at=integration.last_error_at,
        notifications_last_hour=inbox["last_hour"],
        inbox_pending=inbox["pending"],
        inbox_oldest_pending_at=inbox["oldest_pending"],
        inbox_backlog=inbox["backlog"],
        inbox_failed=inbox["failed"],
        requests_last_hour=sum(m.requests for m in methods),
        errors_last_hour=sum(m.errors for m in methods),
        limiter_waits_last_hour=sum(m.limiter_waits for m in methods),
        limiter_wait_ms_last_hour=sum(m.limiter_wait_ms for m in methods),
        limiter_wait_max_ms_last_hour=max((m.limiter_wait_max_ms for m in methods), default=0),
        by_method=methods,
        recordings_pending=recordings["pending"],
        recordings_failed_24h=recordings["failed"],
        recordings_expiring=recordings["expiring"],
        calls_unfinished_24h=_unfinished_calls(integration.pk, now),
        quiet_for=quiet_for,
        webhooks_disabled=webhooks_disabled_count(),
    )


def _when(value: datetime) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")


def duration_words(value: timedelta) -> str:
    # timesince's words ("2 hours, 5 minutes"), translated, for a span rather than a moment.
    anchor = timezone.now()
    return timesince(anchor - value, anchor)


def warnings_for(facts: HealthFacts) -> list[HealthIssue]:
    """The warnings that hold for these facts, in words (the active language). Thresholds: settings."""
    issues: list[HealthIssue] = []
    K = HealthWarning.Kind
    error = facts.last_error or _("none recorded")
    if facts.status == Integration.Status.NEEDS_RECONNECT:
        issues.append(
            HealthIssue(
                K.NEEDS_RECONNECT,
                _(
                    "MTT refused the tokens: an administrator must press Reconnect on the integration's "
                    "admin page and log in at MTT. Last error: %(error)s"
                )
                % {"error": error},
            )
        )
    expires = facts.refresh_token_expires_at
    if facts.connected and expires is not None and expires - facts.now < REFRESH_TOKEN_WARNING:
        if expires > facts.now:
            text = _(
                "The refresh token expires in %(left)s (%(at)s) and refreshing it keeps failing; when it "
                "expires the integration needs a reconnect. Last error: %(error)s"
            ) % {"left": timeuntil(expires, facts.now), "at": _when(expires), "error": error}
        else:
            text = _(
                "The refresh token expired at %(at)s: the next refresh will fail and the integration "
                "will need a reconnect. Last error: %(error)s"
            ) % {"at": _when(expires), "error": error}
        issues.append(HealthIssue(K.REFRESH_TOKEN_EXPIRING, text))
    silence = timedelta(hours=settings.HEALTH_SILENCE_HOURS)
    if settings.HEALTH_SILENCE_HOURS > 0 and facts.quiet_for is not None and facts.quiet_for >= silence:
        last = _when(facts.last_notification_at) if facts.last_notification_at else _("never")
        issues.append(
            HealthIssue(
                K.SILENCE,
                _(
                    "No notification from MTT for %(quiet)s of business hours (last one: %(last)s). "
                    "Check the Redirect URI in the MTT portal and that MTT can reach the notify URL."
                )
                % {"quiet": duration_words(facts.quiet_for), "last": last},
            )
        )
    if settings.HEALTH_INBOX_BACKLOG_MINUTES > 0 and facts.inbox_backlog > 0:
        oldest = _when(facts.inbox_oldest_pending_at) if facts.inbox_oldest_pending_at else "—"
        issues.append(
            HealthIssue(
                K.INBOX_BACKLOG,
                ngettext(
                    "%(count)d notification has waited more than %(minutes)s min to be applied "
                    "(oldest received %(oldest)s): is the Celery worker running?",
                    "%(count)d notifications have waited more than %(minutes)s min to be applied "
                    "(oldest received %(oldest)s): is the Celery worker running?",
                    facts.inbox_backlog,
                )
                % {
                    "count": facts.inbox_backlog,
                    "minutes": f"{settings.HEALTH_INBOX_BACKLOG_MINUTES:g}",
                    "oldest": oldest,
                },
            )
        )
    threshold = settings.HEALTH_RECORDINGS_FAILED
    if threshold > 0 and facts.recordings_failed_24h >= threshold:
        issues.append(
            HealthIssue(
                K.RECORDINGS_FAILING,
                ngettext(
                    "%(count)d recording failed to download in the last 24 h (Admin → Recordings shows "
                    "why; Download again retries).",
                    "%(count)d recordings failed to download in the last 24 h (Admin → Recordings shows "
                    "why; Download again retries).",
                    facts.recordings_failed_24h,
                )
                % {"count": facts.recordings_failed_24h},
            )
        )
    if facts.webhooks_disabled:
        issues.append(
            HealthIssue(
                K.WEBHOOKS_DISABLED,
                ngettext(
                    "%(count)d webhook subscription was disabled after a day of failed deliveries "
                    "(Admin → Webhook subscriptions says why; fix the receiver, then tick Active again).",
                    "%(count)d webhook subscriptions were disabled after a day of failed deliveries "
                    "(Admin → Webhook subscriptions says why; fix the receivers, then tick Active again).",
                    facts.webhooks_disabled,
                )
                % {"count": facts.webhooks_disabled},
            )
        )
    return issues


def open_warnings(*, integration_ids: list[int] | None = None) -> list[HealthWarning]:
    """Open episodes (the panel, `mtt health`), oldest first."""
    qs = HealthWarning.objects.filter(cleared_at__isnull=True).select_related("integration")
    if integration_ids is not None:
        qs = qs.filter(integration_id__in=integration_ids)
    return list(qs.order_by("opened_at", "pk"))


@dataclass(frozen=True)
class BadgeState:
    """The staff badge's numbers (cached): integrations and open warnings."""

    integrations: int
    connected: int
    needs_reconnect: int
    warnings: int
    severe: int

    @property
    def level(self) -> str:
        """green / amber / red / off (no integration connected yet)."""
        if self.needs_reconnect or self.severe:
            return "red"
        if self.warnings:
            return "amber"
        if not self.connected:
            return "off"
        return "green"


def badge_state() -> BadgeState:
    """Two queries: integration statuses and open warnings."""
    status = Integration.objects.aggregate(
        total=Count("pk"),
        connected=Count("pk", filter=Q(status=Integration.Status.CONNECTED)),
        needs=Count("pk", filter=Q(status=Integration.Status.NEEDS_RECONNECT)),
    )
    warnings = HealthWarning.objects.filter(cleared_at__isnull=True).aggregate(
        total=Count("pk"), severe=Count("pk", filter=Q(kind__in=list(HealthWarning.SEVERE_KINDS)))
    )
    return BadgeState(
        integrations=status["total"],
        connected=status["connected"],
        needs_reconnect=status["needs"],
        warnings=warnings["total"],
        severe=warnings["severe"],
    )

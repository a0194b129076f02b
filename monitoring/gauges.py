"""The state gauges of /metrics: computed from the database at scrape time (monitoring/metrics.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from calls.models import Recording
from integrations.models import Integration, NotificationEvent

logger = logging.getLogger(__name__)


class DatabaseCollector(Collector):
    """Gauges from the database at scrape time: a handful of small queries on indexed columns."""

    def collect(self) -> Iterator[Metric]:
        try:
            metrics = list(self._gauges())
            up = 1.0
        except Exception as exc:
            # A scrape must answer even with the database down: that is when it matters.
            logger.warning("Metrics: database gauges unavailable (%s)", type(exc).__name__)
            metrics, up = [], 0.0
        yield from metrics
        yield GaugeMetricFamily(
            "mttcrm_metrics_database_up", "1 when the database answered this scrape's queries.", value=up
        )

    def _gauges(self) -> Iterator[Metric]:
        # NotificationEvent's (status, received_at) index answers both.
        pending = NotificationEvent.objects.filter(status=NotificationEvent.Status.PENDING).aggregate(
            n=Count("pk"), oldest=Min("received_at")
        )
        failed = NotificationEvent.objects.filter(status=NotificationEvent.Status.FAILED).count()
        yield GaugeMetricFamily(
            "mttcrm_inbox_pending_notifications",
            "Notifications stored and not applied yet (the inbox backlog).",
            value=pending["n"],
        )
        oldest = pending["oldest"]
        yield GaugeMetricFamily(
            "mttcrm_inbox_oldest_pending_age_seconds",
            "Age of the oldest notification still waiting to be applied; 0 when none waits.",
            value=max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0,
        )
        yield GaugeMetricFamily(
            "mttcrm_inbox_failed_notifications",
            "Notifications set aside after the applier's last failed attempt (Admin -> Notifications).",
            value=failed,
        )

        # Only the statuses of work still to do: "stored" grows with every call (and the index on
        # (status, last_attempt_at) makes these cheap while the backlog is small).
        backlog = [Recording.Status.PENDING, Recording.Status.DOWNLOADING, Recording.Status.FAILED]
        counts = dict(
            Recording.objects.filter(status__in=backlog)
            .values_list("status")
            .annotate(n=Count("pk"))
            .values_list("status", "n")
        )
        recordings = GaugeMetricFamily(
            "mttcrm_recordings_backlog",
            "Recordings not stored yet: pending, downloading, failed.",
            labels=["status"],
        )
        for status in backlog:
            recordings.add_metric([str(status)], counts.get(status, 0))
        yield recordings
        expiring = Recording.objects.filter(status__in=backlog, expiring_soon=True).count()
        yield GaugeMetricFamily(
            "mttcrm_recordings_expiring_at_mtt",
            "Recordings not stored yet that MTT deletes within RECORDINGS_EXPIRY_WARNING_DAYS.",
            value=expiring,
        )

        by_status = dict(
            Integration.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n")
        )
        integrations = GaugeMetricFamily(
            "mttcrm_integrations", "Integrations by connection status.", labels=["status"]
        )
        for connection in Integration.Status:
            integrations.add_metric([str(connection)], by_status.get(connection, 0))
        yield integrations

"""Prometheus metrics (README "Metrics and logs"): counted where things happen, read from the database
where the database knows the answer.

Two sources, one scrape (``render``):

- **Events** — notifications received / duplicate / rejected / applied, MTT requests, limiter waits,
  recording downloads, screen-pop latency — are counters and histograms of ``prometheus_client``,
  incremented by the process where the event happens: a Daphne process (the notify URL, the sockets), a
  Celery worker (the inbox sweep, downloads, the directory sync), a thread of either (routing commands).
  With ``PROMETHEUS_MULTIPROC_DIR`` set, every process writes its values to its own files in that
  directory (prometheus_client's multiprocess mode) and a scrape of any web process adds up the files of
  all of them — also of processes that have exited, so a counter does not go back when a worker
  restarts. ``make run`` and the compose file set it (the compose services share one volume); the
  directory is emptied when the stack starts. Without it each process counts only for itself: right
  for one process (tests, ``manage.py shell``), wrong for ``make run``.
- **State** — the inbox backlog, recordings waiting, integrations by status — are gauges computed by
  ``DatabaseCollector`` at scrape time from small indexed queries, exact whatever process answers.

Why events are not counted from the database instead (rows in the inbox, in MttRequestLog): duplicates,
refusals and the screen pop leave no row; the tables grow without end (a count over them on every
scrape gets slower every day, an incremental count per process goes wrong when rows are pruned or
commit out of order); and a row's status changes (re-applied, re-queued), which a counter must not see.

Recording a metric never fails the caller: every helper below swallows and logs its own errors.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ParamSpec

from django.conf import settings
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

P = ParamSpec("P")


def _process_identifier() -> str:
    # Files are named after this. The compose services share one directory from several containers,
    # where every main process is pid 1: the host name (the container's id) keeps them apart.
    host = socket.gethostname().replace("_", "-") or "host"
    return f"{host}-{os.getpid()}"


def multiprocess_dir() -> str:
    return str(getattr(settings, "PROMETHEUS_MULTIPROC_DIR", "") or "")


def _configure_multiprocess() -> None:
    """Multiprocess mode when the setting asks for it; must run before the first metric is made."""
    directory = multiprocess_dir()
    if not directory:
        # An empty PROMETHEUS_MULTIPROC_DIR (a copied .env.example) would make prometheus_client
        # write its files into the working directory: single-process mode instead.
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR") == "":
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]
        values.ValueClass = values.MutexValue
        return
    try:
        os.makedirs(directory, exist_ok=True)
        if not os.access(directory, os.W_OK):
            raise PermissionError(directory)
    except OSError as exc:
        # Metrics must never stop the application from starting: count for this process only.
        logger.error("Metrics: PROMETHEUS_MULTIPROC_DIR %s is not writable (%s)", directory, exc)
        values.ValueClass = values.MutexValue
        return
    # prometheus_client reads the directory from the environment when it opens a process's file.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    values.ValueClass = values.MultiProcessValue(_process_identifier)


_configure_multiprocess()
# No *_created series: they do not exist in multiprocess mode, so they would come and go with it.
disable_created_metrics()

# The metrics of this process (single-process mode); in multiprocess mode the files are what counts.
REGISTRY = CollectorRegistry(auto_describe=True)

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)
WAIT_BUCKETS = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
REQUEST_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)

NOTIFICATIONS_RECEIVED = Counter(
    "mttcrm_notifications_received",
    "Notifications accepted on a notify URL (answered 200), duplicates included.",
    registry=REGISTRY,
)
NOTIFICATIONS_DUPLICATE = Counter(
    "mttcrm_notifications_duplicate",
    "Accepted notifications that were in the inbox already (stored once, not applied again).",
    registry=REGISTRY,
)
NOTIFICATIONS_REJECTED = Counter(
    "mttcrm_notifications_rejected",
    "Notification POSTs refused: invalid (400), too_large (413), forbidden (sender not allowed), "
    "unknown_token (404).",
    ["reason"],
    registry=REGISTRY,
)
NOTIFICATIONS_APPLIED = Counter(
    "mttcrm_notifications_applied",
    "Stored notifications applied, by outcome: applied, or ignored (an event nobody handles).",
    ["outcome"],
    registry=REGISTRY,
)
NOTIFICATION_APPLY_ERRORS = Counter(
    "mttcrm_notifications_apply_errors",
    "Applies that raised; the inbox sweep retries them.",
    registry=REGISTRY,
)
NOTIFICATIONS_DISPATCHED = Counter(
    "mttcrm_notifications_dispatched",
    "Stored notifications handed on for applying: to the applier process (NOTIFY_APPLY_IN=applier), or "
    "applied in the request (NOTIFY_APPLY_IN=request, or a parked call's trying).",
    ["to"],
    registry=REGISTRY,
)
SCREEN_POP_LATENCY = Histogram(
    "mttcrm_screen_pop_latency_seconds",
    "From a call notification's arrival at the notify URL to the operator's page reporting the card "
    "shown (one observation per open workspace tab).",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
MTT_REQUESTS = Counter(
    "mttcrm_mtt_requests",
    "Requests to the MTT API by method and HTTP status (no_response: timeout or connection error).",
    ["method", "status"],
    registry=REGISTRY,
)
MTT_REQUEST_DURATION = Histogram(
    "mttcrm_mtt_request_duration_seconds",
    "Time of one request to the MTT API, without the limiter's wait.",
    ["method"],
    buckets=REQUEST_BUCKETS,
    registry=REGISTRY,
)
MTT_LIMITER_WAIT = Histogram(
    "mttcrm_mtt_limiter_wait_seconds",
    "Time a request to MTT waited for a permit of the shared 5 req/s limiter.",
    buckets=WAIT_BUCKETS,
    registry=REGISTRY,
)
RECORDING_DOWNLOADS = Counter(
    "mttcrm_recording_downloads",
    "Recording downloads by result: stored, failed, refused (link not allowed), expired (gone at MTT), "
    "retry (transient, retried), error (unexpected), skipped (nothing to download).",
    ["result"],
    registry=REGISTRY,
)

# Bounded label values: anything else is counted as "other".
REJECT_REASONS = frozenset({"invalid", "too_large", "forbidden", "unknown_token", "unavailable"})
APPLY_OUTCOMES = frozenset({"applied", "ignored"})
DOWNLOAD_RESULTS = frozenset({"stored", "failed", "refused", "expired", "retry", "error", "skipped"})
MAX_METHOD_LENGTH = 40


def _never_raises(func: Callable[P, None]) -> Callable[P, None]:
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            func(*args, **kwargs)
        except Exception:
            logger.warning("Metrics: %s failed", func.__name__, exc_info=True)

    return wrapper


def _bounded(value: str, allowed: Iterable[str]) -> str:
    return value if value in allowed else "other"


# --- what the application calls -------------------------------------------------------------------------


@_never_raises
def notification_received(*, duplicate: bool) -> None:
    """The notify URL answered 200 to a notification (stored now, or found in the inbox already)."""
    NOTIFICATIONS_RECEIVED.inc()
    if duplicate:
        NOTIFICATIONS_DUPLICATE.inc()


@_never_raises
def notification_rejected(reason: str) -> None:
    NOTIFICATIONS_REJECTED.labels(reason=_bounded(reason, REJECT_REASONS)).inc()


def rejection_reason(status: int) -> str:
    """The ``reason`` label of a refusal answered with this HTTP status."""
    return {400: "invalid", 403: "forbidden", 404: "unknown_token", 413: "too_large", 503: "unavailable"}.get(
        status, "other"
    )


@_never_raises
def notification_applied(outcome: str) -> None:
    NOTIFICATIONS_APPLIED.labels(outcome=_bounded(str(outcome), APPLY_OUTCOMES)).inc()


@_never_raises
def notification_dispatched(to: str) -> None:
    NOTIFICATIONS_DISPATCHED.labels(to=_bounded(to, ("applier", "request"))).inc()


@_never_raises
def notification_apply_failed() -> None:
    NOTIFICATION_APPLY_ERRORS.inc()


@_never_raises
def mtt_request(*, method: str, status_code: int | None, duration: float, waited: float) -> None:
    """One HTTP request to MTT (integrations/mtt/client.py), whatever its outcome."""
    method = (method or "unknown")[:MAX_METHOD_LENGTH]
    MTT_REQUESTS.labels(method=method, status=str(status_code) if status_code else "no_response").inc()
    MTT_REQUEST_DURATION.labels(method=method).observe(max(0.0, duration))
    MTT_LIMITER_WAIT.observe(max(0.0, waited))


@_never_raises
def mtt_limiter_wait(waited: float) -> None:
    """A permit taken outside the API client (a recording download's request to MTT's record host)."""
    MTT_LIMITER_WAIT.observe(max(0.0, waited))


@_never_raises
def recording_download(result: str) -> None:
    RECORDING_DOWNLOADS.labels(result=_bounded(str(result), DOWNLOAD_RESULTS)).inc()


# A page's acknowledgement further off than this is a clock problem or a page asleep, not a latency.
MAX_SCREEN_POP_LATENCY = 600.0


@_never_raises
def screen_pop_shown(*, received_at: float, now: float | None = None) -> None:
    """A page reported a card shown; ``received_at`` is the notification's arrival (epoch seconds)."""
    latency = (time.time() if now is None else now) - received_at
    if 0 <= latency <= MAX_SCREEN_POP_LATENCY:
        SCREEN_POP_LATENCY.observe(latency)


# --- state from the database ----------------------------------------------------------------------------


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
        from django.db.models import Count, Min
        from django.utils import timezone

        from calls.models import Recording
        from integrations.models import Integration, NotificationEvent

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
            "Notifications set aside after INBOX_MAX_ATTEMPTS failed applies (Admin -> Notifications).",
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


class _ThisProcess(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def render(accept: str = "") -> tuple[bytes, str]:
    """The exposition (body, content type) for a scrape with this Accept header."""
    registry = CollectorRegistry(auto_describe=False)
    directory = multiprocess_dir()
    if directory and os.path.isdir(directory):
        MultiProcessCollector(registry, path=directory)
    else:
        registry.register(_ThisProcess())
    registry.register(DatabaseCollector())
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type


def clear_multiprocess_dir(directory: str | os.PathLike[str]) -> int:
    """Remove the value files of a previous run (at start-up, before any process writes)."""
    removed = 0
    path = os.fspath(directory)
    if not os.path.isdir(path):
        return 0
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))
            removed += 1
    return removed


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    """This process's value of one sample (0 when absent): for tests and the shell."""
    value: Any = REGISTRY.get_sample_value(name, labels or {})
    return float(value or 0.0)

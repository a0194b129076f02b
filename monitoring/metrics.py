"""Prometheus metrics (README "Metrics and logs"): counted where things happen, read from the database
where the database knows the answer.

Two sources, one scrape (``render``, GET /metrics):

- **Events** — notifications received / duplicate / rejected / applied, MTT requests, limiter waits,
  recording downloads, screen-pop latency — are counters and histograms of ``prometheus_client``,
  incremented by the process where the event happens: a web process (the notify URL), Daphne (the sockets),
  an applier, a Celery worker (downloads, the directory sync). With ``METRICS_DIR`` set, every process
  writes its values to files (prometheus_client's documented multiprocess mode: settings point its
  ``PROMETHEUS_MULTIPROC_DIR`` at this host's subfolder), and a scrape adds up the files of every process of
  every host — also of processes that have exited, so a counter does not go back when a worker restarts.
  ``make run`` and the compose file set it; the folder is emptied when the stack starts. Without it each
  process counts only for itself: right for one process (tests, ``manage.py shell``).
- **State** — the inbox backlog, recordings waiting, integrations by status — are gauges computed at scrape
  time from small indexed queries (monitoring/gauges.py), exact whatever process answers.

Why events are not counted from the database instead (rows in the inbox, in MttRequestLog): duplicates,
refusals and the screen pop leave no row; the tables grow without end (a count over them on every
scrape gets slower every day, an incremental count per process goes wrong when rows are pruned or
commit out of order); and a row's status changes (re-applied, re-queued), which a counter must not see.

Recording a metric never fails the caller: every helper below swallows and logs its own errors.
"""

from __future__ import annotations

import functools
import glob
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ParamSpec

from django.conf import settings
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

P = ParamSpec("P")


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
    "Stored notifications by outcome: applied (by an applier), or ignored (kept; nothing we understand).",
    ["outcome"],
    registry=REGISTRY,
)
NOTIFICATION_APPLY_ERRORS = Counter(
    "mttcrm_notifications_apply_errors",
    "Applies that raised; the applier tries them again later (with backoff).",
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


class _ThisProcess(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def render(accept: str = "", *, collectors: Iterable[Collector] = ()) -> tuple[bytes, str]:
    """The exposition (body, content type) for a scrape with this Accept header: the counters of every
    process (METRICS_DIR: each host's subfolder, added up), else of this one, and ``collectors``."""
    registry = CollectorRegistry(auto_describe=False)
    root = str(getattr(settings, "METRICS_DIR", "") or "")
    registry.register(_AllProcesses(root) if root else _ThisProcess())
    for collector in collectors:
        registry.register(collector)
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type


class _AllProcesses(Collector):
    """prometheus_client's multiprocess collection over every host's subfolder of METRICS_DIR."""

    def __init__(self, root: str) -> None:
        self.root = root

    def collect(self) -> Iterator[Metric]:
        files = glob.glob(os.path.join(self.root, "*", "*.db"))
        return iter(MultiProcessCollector.merge(files, accumulate=True))


def clear_metrics_dir(directory: str | os.PathLike[str]) -> int:
    """Remove the value files of a previous run (at start-up, before any process writes)."""
    removed = 0
    for path in glob.glob(os.path.join(os.fspath(directory), "*", "*.db")):
        os.unlink(path)
        removed += 1
    return removed


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    """This process's value of one sample (0 when absent): for tests and the shell."""
    value: Any = REGISTRY.get_sample_value(name, labels or {})
    return float(value or 0.0)

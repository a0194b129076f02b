"""Integration health (monitoring/), metrics (Prometheus) and logs."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from .base import env
from .services import CELERY_BEAT_SCHEDULE

# --- Integration health (monitoring/) ----------------------------------------------------------
# Beat evaluates every integration this often: warning episodes, one mail each to ADMINS (or, when
# ADMINS is empty, to the active superusers with an e-mail address). README "Integration health".
HEALTH_CHECK_EVERY_SECONDS = env.float("HEALTH_CHECK_EVERY_SECONDS", default=300.0)
# Warn when no notification arrived for this many hours of business hours; 0 turns it off.
HEALTH_SILENCE_HOURS = env.float("HEALTH_SILENCE_HOURS", default=2.0)
# When notifications are expected (TIME_ZONE): "09:00-18:00", "mon-fri 09:00-18:00", "mon-fri";
# empty: always. Only these hours count towards HEALTH_SILENCE_HOURS (monitoring/hours.py).
HEALTH_BUSINESS_HOURS = env.str("HEALTH_BUSINESS_HOURS", default="")
# Warn when a notification has waited longer than this many minutes to be applied; 0 turns it off.
HEALTH_INBOX_BACKLOG_MINUTES = env.float("HEALTH_INBOX_BACKLOG_MINUTES", default=10.0)
# Warn when at least this many recordings failed (or were refused) in the last 24 h; 0 turns it off.
HEALTH_RECORDINGS_FAILED = env.int("HEALTH_RECORDINGS_FAILED", default=3)
CELERY_BEAT_SCHEDULE["integration-health"] = {
    "task": "monitoring.tasks.check_health",
    "schedule": HEALTH_CHECK_EVERY_SECONDS,
}

# --- Metrics and logs --------------------------------------------------------------------------
# GET /metrics (Prometheus) answers a request with "Authorization: Bearer <METRICS_TOKEN>" or from a
# logged-in staff user; empty turns the endpoint off (404).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Counters of every process (web, applier, worker) are added up at scrape time: prometheus_client's
# multiprocess mode, through its documented PROMETHEUS_MULTIPROC_DIR variable, set here before the library is
# first imported. Each host writes into its own subfolder (processes of one host have distinct pids; the
# containers of a compose stack share the folder and may all be pid 1), and /metrics adds up every subfolder
# (monitoring/metrics.py). make run and compose empty the folder at start. Empty: each process counts only
# for itself (tests, the shell).
METRICS_DIR = env.str("METRICS_DIR", default="")
if METRICS_DIR:
    _host = socket.gethostname().replace("/", "-") or "host"
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(Path(METRICS_DIR) / _host)
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
else:
    # An empty PROMETHEUS_MULTIPROC_DIR (a copied .env) would make prometheus_client write into the cwd.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# "text" (one plain line) or "json" (one JSON object per line: time, level, logger, message, extra
# fields). Both mask the notify URL's token and token-like values (mttcrm/logs.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="text").strip().lower()
if LOG_FORMAT not in ("text", "json"):
    raise ValueError(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"()": "mttcrm.logs.TextFormatter"},
        "json": {"()": "mttcrm.logs.JsonFormatter"},
    },
    "filters": {"no_traceback_below_500": {"()": "mttcrm.logs.NoTracebackBelow500"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["no_traceback_below_500"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "daphne": {"level": "WARNING"},
        # Quiet starts: django-axes' "BEGIN" line in every process, kombu's warning about the folder
        # broker's missing host name, the sandbox's development server (werkzeug) and its request lines.
        "axes.apps": {"level": "WARNING"},
        "kombu.connection": {"level": "ERROR"},
        "werkzeug": {"level": "WARNING"},
        # gunicorn's error log (start, stop, worker restarts) through the same handler and format.
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "urllib3": {"level": "WARNING"},
        # requests-oauthlib logs token bodies at DEBUG: never let that through.
        "requests_oauthlib": {"level": "WARNING"},
        "oauthlib": {"level": "WARNING"},
    },
}

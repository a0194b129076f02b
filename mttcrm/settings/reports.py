"""Reports: how often beat rebuilds the rollups the reports read (README "Reports")."""

from __future__ import annotations

from .base import env
from .services import CELERY_BEAT_SCHEDULE

# Beat rebuilds the report rollups (calls.reports.rollups) this often, over the last
# REPORTS_ROLLUP_RECENT_HOURS up to the current hour; older hours are final (manage.py reports_rollup
# rebuilds any range). Reports count what the rollups do not hold yet from the calls themselves.
REPORTS_ROLLUP_EVERY_SECONDS = env.float("REPORTS_ROLLUP_EVERY_SECONDS", default=300.0)
REPORTS_ROLLUP_RECENT_HOURS = env.int("REPORTS_ROLLUP_RECENT_HOURS", default=24)
if REPORTS_ROLLUP_EVERY_SECONDS <= 0 or REPORTS_ROLLUP_RECENT_HOURS < 1:
    raise ValueError("REPORTS_ROLLUP_EVERY_SECONDS and REPORTS_ROLLUP_RECENT_HOURS must be positive")
CELERY_BEAT_SCHEDULE["report-rollups"] = {
    "task": "calls.tasks.refresh_report_rollups",
    "schedule": REPORTS_ROLLUP_EVERY_SECONDS,
}

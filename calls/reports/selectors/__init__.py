"""The reports' figures: pure reads taking a ``ReportScope`` (period, line, the calls the user may see)
and returning plain data.

- ``scope``: the scope and the definitions every figure shares;
- ``plan``: which part of the period the rollups hold (``calls.models.reports``) and which is counted
  from the call tables;
- ``measures``: the call figures as additive measures from both, and percentiles from histograms;
- ``calls``, ``operators``, ``lines``, ``results`` (by wrap-up result): the reports; ``dashboard``: all
  of them.
"""

from __future__ import annotations

from .calls import (
    HourShare,
    SeriesPoint,
    Summary,
    calls_series,
    incoming_heatmap,
    missed_share_by_hour,
    report_summary,
)
from .dashboard import Dashboard, report_dashboard
from .lines import LineRow, RoutingRow, line_stats, routing_decisions, routing_outcomes
from .operators import OperatorRow, closed_callbacks, missed_offers, operator_stats
from .results import ResultRow, result_stats
from .scope import CALLBACK_DELAY, MAX_DAYS, WAIT_PERCENTILE, ReportScope

__all__ = [
    "CALLBACK_DELAY",
    "MAX_DAYS",
    "WAIT_PERCENTILE",
    "Dashboard",
    "HourShare",
    "LineRow",
    "OperatorRow",
    "ReportScope",
    "ResultRow",
    "RoutingRow",
    "SeriesPoint",
    "Summary",
    "calls_series",
    "closed_callbacks",
    "incoming_heatmap",
    "line_stats",
    "missed_offers",
    "missed_share_by_hour",
    "operator_stats",
    "report_dashboard",
    "report_summary",
    "result_stats",
    "routing_decisions",
    "routing_outcomes",
]

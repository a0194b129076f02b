"""The whole dashboard: every report of one scope."""

from __future__ import annotations

from dataclasses import dataclass

from ..aggregates import analytic
from .calls import (
    HourShare,
    SeriesPoint,
    Summary,
    calls_series,
    incoming_heatmap,
    missed_share_by_hour,
    report_summary,
    weekday_hour_measures,
)
from .lines import LineRow, RoutingRow, line_stats, routing_outcomes
from .operators import OperatorRow, operator_stats
from .results import ResultRow, result_stats
from .scope import ReportScope


@dataclass
class Dashboard:
    scope: ReportScope
    summary: Summary
    series: list[SeriesPoint]
    heatmap: list[list[int]]
    hours: list[HourShare]
    operators: list[OperatorRow]
    lines: list[LineRow]
    routing: list[RoutingRow]
    results: list[ResultRow]


@analytic
def report_dashboard(scope: ReportScope) -> Dashboard:
    grid = weekday_hour_measures(scope)  # one read for both grids
    return Dashboard(
        scope=scope,
        summary=report_summary(scope),
        series=calls_series(scope),
        heatmap=incoming_heatmap(scope, grid),
        hours=missed_share_by_hour(scope, grid),
        operators=operator_stats(scope),
        lines=line_stats(scope),
        routing=routing_outcomes(scope),
        results=result_stats(scope),
    )

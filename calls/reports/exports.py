"""The dashboard's tables as CSV or XLSX (``calls.spreadsheets``): machine-readable column names (like
the call log's export); in CSV seconds and percentages as plain numbers, in XLSX as durations and
percentages."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..spreadsheets import Column, neutralise
from .selectors import ReportScope, calls_series, line_stats, operator_stats, result_stats, routing_outcomes

# Kept for callers of the old name: the CSV text cell.
csv_text = neutralise

Table = tuple[list[Column], Iterable[Sequence[Any]]]


def _series(scope: ReportScope) -> Table:
    columns = [
        Column("hour", "datetime", width=20) if scope.hourly else Column("date", "date", width=12),
        Column("incoming_answered", "int", width=18),
        Column("incoming_missed", "int", width=16),
        Column("outgoing", "int", width=10),
    ]
    rows = ([point.bucket, point.answered, point.missed, point.outgoing] for point in calls_series(scope))
    return columns, rows


def _operators(scope: ReportScope) -> Table:
    columns = [
        Column("operator", width=28),
        Column("taken", "int", width=8),
        Column("offered_missed", "int", width=15),
        Column("outgoing", "int", width=10),
        Column("wait_avg_s", "seconds", width=11),
        Column("wait_p90_s", "seconds", width=11),
        Column("talk_avg_s", "seconds", width=11),
        Column("talk_total_s", "seconds", width=12),
        Column("callbacks_closed", "int", width=16),
        Column("callback_median_s", "seconds", width=17),
    ]
    rows = (
        [
            row.name,
            row.taken,
            row.offered_missed,
            row.outgoing,
            row.wait_avg,
            row.wait_p90,
            row.talk_avg,
            row.talk_total,
            row.callbacks_closed,
            row.callback_median,
        ]
        for row in operator_stats(scope)
    )
    return columns, rows


def _lines(scope: ReportScope) -> Table:
    columns = [
        Column("line", width=16),
        Column("incoming", "int", width=10),
        Column("answered", "int", width=10),
        Column("missed", "int", width=8),
        Column("missed_share_pct", "percent", width=16),
        Column("outgoing", "int", width=10),
        Column("wait_avg_s", "seconds", width=11),
        Column("talk_total_s", "seconds", width=12),
    ]
    rows = (
        [
            row.number,
            row.incoming,
            row.answered,
            row.missed,
            row.missed_share,
            row.outgoing,
            row.wait_avg,
            row.talk_total,
        ]
        for row in line_stats(scope)
    )
    return columns, rows


def _routing(scope: ReportScope) -> Table:
    columns = [
        Column("decision", width=12),
        Column("label", width=20),
        Column("count", "int", width=8),
        Column("share_pct", "percent", width=10),
    ]
    rows = ([row.decision, row.label, row.count, row.share] for row in routing_outcomes(scope))
    return columns, rows


def _results(scope: ReportScope) -> Table:
    columns = [
        Column("result", width=20),
        Column("calls", "int", width=8),
        Column("share_pct", "percent", width=10),
    ]
    return columns, ([row.name, row.count, row.share] for row in result_stats(scope))


TABLES: dict[str, Callable[[ReportScope], Table]] = {
    "series": _series,
    "operators": _operators,
    "lines": _lines,
    "routing": _routing,
    "results": _results,
}


def report_table(table: str, scope: ReportScope) -> Table:
    """The columns and rows of one dashboard table (a few hundred rows at most)."""
    return TABLES[table](scope)


def report_filename(table: str, scope: ReportScope, extension: str) -> str:
    line = f"-line{scope.line_id}" if scope.line_id is not None else ""
    return f"report-{table}-{scope.first_day:%Y%m%d}-{scope.last_day:%Y%m%d}{line}.{extension}"

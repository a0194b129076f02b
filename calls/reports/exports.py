"""The dashboard's tables as CSV: UTF-8 with a BOM (Excel then reads Cyrillic right), comma-separated,
machine-readable column names (like the call log's export), seconds and percentages as plain numbers."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from django.utils import timezone

from .selectors import (
    ReportScope,
    calls_series,
    line_stats,
    operator_stats,
    routing_outcomes,
)

BOM = "\ufeff"
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def csv_text(value: Any) -> str:
    """A free-text cell made safe from spreadsheet formula injection: text starting with = + - @ (or a
    tab / carriage return) gets a leading apostrophe, unless it is a plain number (+74951234567)."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _number(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def _percent(share: float | None) -> str:
    return "" if share is None else f"{share * 100:.1f}"


def _series(scope: ReportScope) -> Iterable[Sequence[str]]:
    yield ["hour" if scope.hourly else "date", "incoming_answered", "incoming_missed", "outgoing"]
    for point in calls_series(scope):
        bucket = point.bucket
        label = (
            timezone.localtime(bucket, scope.tz).isoformat()
            if isinstance(bucket, datetime)
            else bucket.isoformat()
        )
        yield [label, str(point.answered), str(point.missed), str(point.outgoing)]


def _operators(scope: ReportScope) -> Iterable[Sequence[str]]:
    yield [
        "operator",
        "taken",
        "offered_missed",
        "outgoing",
        "wait_avg_s",
        "wait_p90_s",
        "talk_avg_s",
        "talk_total_s",
        "callbacks_closed",
        "callback_median_s",
    ]
    for row in operator_stats(scope):
        yield [
            csv_text(row.name),
            str(row.taken),
            str(row.offered_missed),
            str(row.outgoing),
            _number(row.wait_avg),
            _number(row.wait_p90),
            _number(row.talk_avg),
            str(row.talk_total),
            str(row.callbacks_closed),
            _number(row.callback_median),
        ]


def _lines(scope: ReportScope) -> Iterable[Sequence[str]]:
    yield [
        "line",
        "incoming",
        "answered",
        "missed",
        "missed_share_pct",
        "outgoing",
        "wait_avg_s",
        "talk_total_s",
    ]
    for row in line_stats(scope):
        yield [
            csv_text(row.number),
            str(row.incoming),
            str(row.answered),
            str(row.missed),
            _percent(row.missed_share),
            str(row.outgoing),
            _number(row.wait_avg),
            str(row.talk_total),
        ]


def _routing(scope: ReportScope) -> Iterable[Sequence[str]]:
    yield ["decision", "label", "count", "share_pct"]
    for row in routing_outcomes(scope):
        yield [row.decision, csv_text(row.label), str(row.count), _percent(row.share)]


TABLES: dict[str, Callable[[ReportScope], Iterable[Sequence[str]]]] = {
    "series": _series,
    "operators": _operators,
    "lines": _lines,
    "routing": _routing,
}


def report_csv(table: str, scope: ReportScope) -> str:
    """The whole CSV text of one table (a few hundred rows at most: no streaming needed)."""
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(TABLES[table](scope))
    return buffer.getvalue()


def csv_filename(table: str, scope: ReportScope) -> str:
    line = f"-line{scope.line_id}" if scope.line_id is not None else ""
    return f"report-{table}-{scope.first_day:%Y%m%d}-{scope.last_day:%Y%m%d}{line}.csv"

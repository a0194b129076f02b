"""The period's calls: the summary, calls per day or hour, when clients call, missed share by hour.

Every figure comes from ``call_measures`` (rollups where they hold the period, the call tables for the
rest); Python only lays the grouped rows into fixed-size grids (every day or hour of the period, 7 × 24)
so that buckets without calls show as zeros.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db.models import F

from ...models import Direction
from ..aggregates import analytic, percentile_by_group
from .measures import Measures, call_measures, uses_rollups
from .plan import rollup_plan
from .scope import ANSWERED_IN, INCOMING, WAIT_PERCENTILE, ReportScope, scope_calls

# --- Summary --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    incoming: int
    answered: int
    missed: int
    missed_share: float | None
    outgoing: int
    wait_avg: float | None
    wait_p90: float | None
    talk_total: int


@analytic
def report_summary(scope: ReportScope) -> Summary:
    """The period's totals. ``incoming`` counts every incoming call (ringing ones too)."""
    plan = rollup_plan(scope)
    rolled = uses_rollups(plan, "day")
    total = call_measures(scope, histogram=rolled, plan=plan).get((), Measures())
    if rolled:
        p90 = total.wait_percentile(WAIT_PERCENTILE)
    else:
        # One group: every answered incoming call has direction "incoming".
        p90 = percentile_by_group(
            scope_calls(scope).filter(ANSWERED_IN),
            group="direction",
            value=F("wait_seconds"),
            fraction=WAIT_PERCENTILE,
        ).get(Direction.INCOMING)
    return Summary(
        incoming=total.incoming,
        answered=total.answered,
        missed=total.missed,
        missed_share=total.missed_share,
        outgoing=total.outgoing,
        wait_avg=total.wait_avg,
        wait_p90=p90,
        talk_total=total.talk_sum,
    )


# --- Calls per day / hour -------------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesPoint:
    bucket: date | datetime  # a local date, or the local start of an hour
    answered: int = 0
    missed: int = 0
    outgoing: int = 0


@analytic
def calls_series(scope: ReportScope) -> list[SeriesPoint]:
    """Incoming answered, incoming missed and outgoing calls per local day (per hour for one day);
    every bucket of the period is present, zeros where there were no calls."""
    if scope.hourly:
        found = call_measures(scope, by=("hour",), kind="hour")
    else:
        found = call_measures(scope, by=("day",), kind="day")
    points = []
    for bucket in scope.buckets():
        row = found.get((bucket,))
        if row is None:
            points.append(SeriesPoint(bucket=bucket))
        else:
            points.append(
                SeriesPoint(bucket=bucket, answered=row.answered, missed=row.missed, outgoing=row.outgoing)
            )
    return points


# --- When clients call ----------------------------------------------------------------------------


GridMeasures = dict[tuple[Any, ...], Measures]


def weekday_hour_measures(scope: ReportScope) -> GridMeasures:
    """Incoming calls' measures by local ISO weekday × hour of the day (what the two grids read)."""
    return call_measures(scope, by=("weekday", "local_hour"), kind="hour", where=INCOMING)


@analytic
def incoming_heatmap(scope: ReportScope, grid: GridMeasures | None = None) -> list[list[int]]:
    """Incoming calls (any outcome) by local ISO weekday × hour: 7 rows (Monday first) of 24 counts.
    ``grid``: ``weekday_hour_measures`` already read (the dashboard reads it once for both grids)."""
    found = weekday_hour_measures(scope) if grid is None else grid
    heatmap = [[0] * 24 for _ in range(7)]
    for (weekday, hour), row in found.items():
        heatmap[int(weekday) - 1][int(hour)] += row.incoming
    return heatmap


@dataclass(frozen=True)
class HourShare:
    hour: int
    answered: int = 0
    missed: int = 0
    missed_share: float | None = None


@analytic
def missed_share_by_hour(scope: ReportScope, grid: GridMeasures | None = None) -> list[HourShare]:
    """For each local hour of the day (0–23, all days of the period together): incoming answered,
    missed, and the missed share (``None`` for an hour without answered or missed calls)."""
    by_hour: dict[int, Measures] = {}
    for (_, hour), row in (weekday_hour_measures(scope) if grid is None else grid).items():
        summed = by_hour.setdefault(int(hour), Measures())
        summed.answered += row.answered
        summed.missed += row.missed
    result = []
    for hour in range(24):
        total = by_hour.get(hour)
        result.append(
            HourShare(hour=hour)
            if total is None
            else HourShare(
                hour=hour, answered=total.answered, missed=total.missed, missed_share=total.missed_share
            )
        )
    return result

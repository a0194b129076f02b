"""The period's calls: the summary, calls per day or hour, when clients call, missed share by hour.

Every figure comes from ``call_measures`` (rollups where they hold the period, the call tables for the
rest); Python only lays the grouped rows into fixed-size grids (every day or hour of the period, 7 × 24)
so that buckets without calls show as zeros.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

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
        found = call_measures(scope, by=("hour",), grain="hour")
    else:
        found = call_measures(scope, by=("day",), grain="day")
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


@analytic
def incoming_heatmap(scope: ReportScope) -> list[list[int]]:
    """Incoming calls (any outcome) by local ISO weekday × hour: 7 rows (Monday first) of 24 counts."""
    found = call_measures(scope, by=("weekday", "local_hour"), grain="hour", where=INCOMING)
    grid = [[0] * 24 for _ in range(7)]
    for (weekday, hour), row in found.items():
        grid[int(weekday) - 1][int(hour)] += row.incoming  # type: ignore[call-overload]
    return grid


@dataclass(frozen=True)
class HourShare:
    hour: int
    answered: int = 0
    missed: int = 0
    missed_share: float | None = None


@analytic
def missed_share_by_hour(scope: ReportScope) -> list[HourShare]:
    """For each local hour of the day (0–23, all days of the period together): incoming answered,
    missed, and the missed share (``None`` for an hour without answered or missed calls)."""
    found = {
        int(key[0]): row  # type: ignore[call-overload]
        for key, row in call_measures(scope, by=("local_hour",), grain="hour", where=INCOMING).items()
    }
    result = []
    for hour in range(24):
        row = found.get(hour)
        result.append(
            HourShare(hour=hour)
            if row is None
            else HourShare(hour=hour, answered=row.answered, missed=row.missed, missed_share=row.missed_share)
        )
    return result

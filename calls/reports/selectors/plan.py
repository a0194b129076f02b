"""Which part of a report's period is read from the rollups and which from the call tables.

The rollups hold every hour in ``[built_from, built_until)`` (``ReportRollupState``). A report reads:

- hour-grain figures (calls per hour of one day, the local hour / weekday grids): ``CallHourRollup`` for
  the period's hours inside that range, the call tables for the hours outside it (the current hours:
  calls of the last minutes show at once);
- day-grain figures (summary, calls per day, lines, operators, routing): the day rollups for the local
  days wholly inside that range, the call tables for the rest (today, until its last hour is rolled up).

Nothing is read from the rollups when there is no state, when ``TIME_ZONE`` changed since they were
built (their days are the old zone's), when the zone's offset is not whole hours (a UTC hour would
straddle two local hours) or when the report counts a restricted set of calls (``ReportScope.calls``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from ...models.reports import ReportRollupState
from .scope import ReportScope, Span


@dataclass(frozen=True)
class RollupPlan:
    hours: Span | None = None  # [a, b): read from CallHourRollup
    days: tuple[date, date] | None = None  # first and last local day read from the day rollups
    exact_hours: list[Span] = field(default_factory=list)  # the rest, for hour-grain figures
    exact_days: list[Span] = field(default_factory=list)  # the rest, for day-grain figures


def rollup_state() -> ReportRollupState | None:
    return ReportRollupState.objects.order_by("pk").first()


def _whole_hour_offsets(scope: ReportScope) -> bool:
    for moment in (scope.start, scope.end):
        offset = moment.utcoffset()
        if offset is None or offset.total_seconds() % 3600:
            return False
    return True


def _rest(whole: Span, inner: Span) -> list[Span]:
    return [span for span in ((whole[0], inner[0]), (inner[1], whole[1])) if span[0] < span[1]]


def rollup_plan(scope: ReportScope, state: ReportRollupState | None = None) -> RollupPlan:
    whole: Span = (scope.start, scope.end)
    exact = RollupPlan(exact_hours=[whole], exact_days=[whole])
    if scope.calls is not None or not _whole_hour_offsets(scope):
        return exact
    state = state or rollup_state()
    if state is None or state.time_zone != settings.TIME_ZONE:
        return exact
    begin, until = state.built_from, state.built_until

    hours: Span | None = (max(scope.start, begin), min(scope.end, until))
    if hours is not None and hours[0] >= hours[1]:
        hours = None

    first = timezone.localdate(begin, scope.tz)
    if scope.day_start(first) < begin:
        first += timedelta(days=1)
    first = max(first, scope.first_day)
    last = min(scope.last_day, timezone.localdate(until, scope.tz) - timedelta(days=1))
    days = (first, last) if first <= last else None

    return RollupPlan(
        hours=hours,
        days=days,
        exact_hours=_rest(whole, hours) if hours else [whole],
        exact_days=_rest(whole, (scope.day_start(days[0]), scope.day_start(days[1] + timedelta(days=1))))
        if days
        else [whole],
    )


def day_bounds(scope: ReportScope, days: tuple[date, date]) -> tuple[datetime, datetime]:
    return scope.day_start(days[0]), scope.day_start(days[1] + timedelta(days=1))

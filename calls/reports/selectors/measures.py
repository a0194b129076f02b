"""The call figures as additive measures, counted from the call tables, the rollups, or both.

A report asks ``call_measures(scope, by=(...), grain=...)`` for its groups (line, operator, local day,
hour, local hour of the day, weekday). The answer adds up the rollup rows of the part of the period the
rollups hold (``plan``) and an exact GROUP BY over the calls of the rest: counts and sums add, so the
figures are the exact ones either way. The wait percentile is read from the merged wait histogram
(``histogram_percentile``) when rollups are involved; from the calls themselves otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import ExtractHour, ExtractIsoWeekDay, TruncDate, TruncHour

from ...models import Call, Direction
from ..models import WAIT_BUCKETS, WAIT_FIELDS, CallDayRollup, CallHourRollup
from .plan import RollupPlan, rollup_plan
from .scope import ANSWERED_ANY, ANSWERED_IN, CALL, INCOMING, MISSED_IN, OUTGOING, ReportScope, scope_calls

Grain = Literal["day", "hour"]
Key = tuple[Hashable, ...]


COUNTS = ("incoming", "answered", "missed", "outgoing", "wait_count", "wait_sum", "talk_count", "talk_sum")


@dataclass
class Measures:
    incoming: int = 0
    answered: int = 0  # incoming answered
    missed: int = 0  # incoming missed
    outgoing: int = 0
    wait_count: int = 0  # incoming answered with a wait
    wait_sum: int = 0
    talk_count: int = 0  # answered (any direction) with a talk time
    talk_sum: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * len(WAIT_BUCKETS))

    def add(self, row: dict[str, Any]) -> None:
        """Add a row of ``exact_measures`` / ``rollup_measures`` (aliases ``m_<name>``)."""
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + (row.get(f"m_{name}") or 0))
        for i, name in enumerate(WAIT_FIELDS):
            self.histogram[i] += row.get(f"m_{name}") or 0

    @property
    def wait_avg(self) -> float | None:
        return self.wait_sum / self.wait_count if self.wait_count else None

    @property
    def talk_avg(self) -> float | None:
        return self.talk_sum / self.talk_count if self.talk_count else None

    @property
    def missed_share(self) -> float | None:
        total = self.answered + self.missed
        return self.missed / total if total else None

    def wait_percentile(self, fraction: float) -> float | None:
        return histogram_percentile(self.histogram, fraction)


# --- Counting from the calls ----------------------------------------------------------------------


def wait_bucket_q(index: int) -> Q:
    condition = Q(wait_seconds__gte=WAIT_BUCKETS[index])
    if index + 1 < len(WAIT_BUCKETS):
        condition &= Q(wait_seconds__lt=WAIT_BUCKETS[index + 1])
    return condition


def exact_measures(*, histogram: bool) -> dict[str, Any]:
    """The aggregates of ``Measures`` over calls (the definitions of ``scope``)."""
    measures: dict[str, Any] = {
        "m_incoming": Count(CALL, filter=INCOMING),
        "m_answered": Count(CALL, filter=ANSWERED_IN),
        "m_missed": Count(CALL, filter=MISSED_IN),
        "m_outgoing": Count(CALL, filter=OUTGOING),
        "m_wait_count": Count("wait_seconds", filter=ANSWERED_IN),
        "m_wait_sum": Sum("wait_seconds", filter=ANSWERED_IN),
        "m_talk_count": Count("talk_seconds", filter=ANSWERED_ANY),
        "m_talk_sum": Sum("talk_seconds", filter=ANSWERED_ANY),
    }
    if histogram:
        for i, name in enumerate(WAIT_FIELDS):
            measures[f"m_{name}"] = Count(CALL, filter=ANSWERED_IN & wait_bucket_q(i))
    return measures


def exact_groups(scope: ReportScope, field_name: str = "started_at") -> dict[str, Any]:
    """Group names → expressions over a timestamp of the call tables."""
    return {
        "line": "line_id",
        "operator": "operator_id",
        "day": TruncDate(field_name, tzinfo=scope.tz),
        "hour": TruncHour(field_name, tzinfo=scope.tz),
        "local_hour": ExtractHour(field_name, tzinfo=scope.tz),
        "weekday": ExtractIsoWeekDay(field_name, tzinfo=scope.tz),
    }


# --- Counting from the rollups --------------------------------------------------------------------

_ROLLUP_ANSWERED_IN = Q(direction=Direction.INCOMING, answered=True)


def rollup_measures(*, histogram: bool) -> dict[str, Any]:
    """The same aggregates over rollup rows (each row is one direction, status and answered)."""
    measures: dict[str, Any] = {
        "m_incoming": Sum("calls", filter=Q(direction=Direction.INCOMING)),
        "m_answered": Sum("calls", filter=_ROLLUP_ANSWERED_IN),
        "m_missed": Sum("calls", filter=Q(direction=Direction.INCOMING, status=Call.Status.MISSED)),
        "m_outgoing": Sum("calls", filter=Q(direction=Direction.OUTGOING)),
        "m_wait_count": Sum("wait_count", filter=_ROLLUP_ANSWERED_IN),
        "m_wait_sum": Sum("wait_sum", filter=_ROLLUP_ANSWERED_IN),
        "m_talk_count": Sum("talk_count", filter=Q(answered=True)),
        "m_talk_sum": Sum("talk_sum", filter=Q(answered=True)),
    }
    if histogram:
        measures.update({f"m_{name}": Sum(name) for name in WAIT_FIELDS})
    return measures


def rollup_groups(scope: ReportScope, grain: Grain) -> dict[str, Any]:
    groups: dict[str, Any] = {"line": "line_id"}
    if grain == "day":
        groups.update(operator="operator_id", day="day")
    else:
        groups.update(
            hour="hour",
            local_hour=ExtractHour("hour", tzinfo=scope.tz),
            weekday=ExtractIsoWeekDay("hour", tzinfo=scope.tz),
        )
    return groups


def _grouped(
    qs: QuerySet[Any], groups: dict[str, Any], by: Sequence[str], measures: dict[str, Any]
) -> list[dict[str, Any]]:
    if not by:
        return [qs.aggregate(**measures)]
    names = [f"g_{name}" for name in by]
    expressions = {
        f"g_{name}": F(groups[name]) if isinstance(groups[name], str) else groups[name] for name in by
    }
    return list(qs.annotate(**expressions).values(*names).annotate(**measures))


def call_measures(
    scope: ReportScope,
    *,
    by: Sequence[str] = (),
    grain: Grain = "day",
    where: Q | None = None,
    histogram: bool = False,
    plan: RollupPlan | None = None,
) -> dict[Key, Measures]:
    """{group key (values of ``by``, in order): its measures}; groups without calls are absent.

    ``where`` narrows the calls (a condition on ``direction`` or ``operator``, fields both the calls
    and the rollups have)."""
    plan = plan or rollup_plan(scope)
    found: dict[Key, Measures] = {}

    def take(rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            key = tuple(row[f"g_{name}"] for name in by)
            found.setdefault(key, Measures()).add(row)

    rolled: QuerySet[Any] | None = None
    if grain == "day" and plan.days is not None:
        rolled = CallDayRollup.objects.filter(day__gte=plan.days[0], day__lte=plan.days[1])
    elif grain == "hour" and plan.hours is not None:
        rolled = CallHourRollup.objects.filter(hour__gte=plan.hours[0], hour__lt=plan.hours[1])
    if rolled is not None:
        if scope.line_id is not None:
            rolled = rolled.filter(line_id=scope.line_id)
        if where is not None:
            rolled = rolled.filter(where)
        take(
            _grouped(rolled.order_by(), rollup_groups(scope, grain), by, rollup_measures(histogram=histogram))
        )

    spans = plan.exact_days if grain == "day" else plan.exact_hours
    if spans:
        calls = scope_calls(scope, spans)
        if where is not None:
            calls = calls.filter(where)
        take(_grouped(calls, exact_groups(scope), by, exact_measures(histogram=histogram)))
    return found


def uses_rollups(plan: RollupPlan, grain: Grain) -> bool:
    return (plan.days if grain == "day" else plan.hours) is not None


# --- Percentiles from the histogram ---------------------------------------------------------------


def _value_at(histogram: Sequence[int], rank: int) -> float:
    """An estimate of the rank-th smallest wait (0-based): exact in a one-second bucket, else spread
    evenly over the bucket's whole seconds."""
    seen = 0
    for i, count in enumerate(histogram):
        if rank < seen + count:
            low = WAIT_BUCKETS[i]
            if i + 1 == len(WAIT_BUCKETS):
                return float(low)  # the open-ended bucket: its lower edge
            width = WAIT_BUCKETS[i + 1] - low
            if width == 1:
                return float(low)
            estimate = low + (rank - seen + 0.5) * width / count - 0.5
            return min(max(estimate, float(low)), float(low + width - 1))
        seen += count
    raise ValueError("rank beyond the histogram")


def histogram_percentile(histogram: Sequence[int], fraction: float) -> float | None:
    """``percentile_cont(fraction)`` of the values the histogram counts: rank (n - 1) × fraction,
    linear between the two values around it (None when empty)."""
    total = sum(histogram)
    if not total:
        return None
    position = (total - 1) * fraction
    lower, upper = math.floor(position), math.ceil(position)
    below = _value_at(histogram, lower)
    above = below if upper == lower else _value_at(histogram, upper)
    return below + (above - below) * (position - lower)

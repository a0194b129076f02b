"""The call figures as additive measures, counted from the call tables, the rollups, or both.

A report asks ``call_measures(scope, by=(...), kind=...)`` for its groups (line, operator, local day,
hour, local hour of the day, weekday). The answer adds up the rollup rows of the part of the period the
rollups hold (``plan``) and an exact GROUP BY over the calls of the rest: counts and sums add, so the
figures are the exact ones either way. The wait percentile is read from the merged wait histogram
(``histogram_percentile``) when rollups are involved; from the calls themselves otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from django.db import connection
from django.db.models import Case, Count, F, Func, IntegerField, Q, QuerySet, Sum, Value, When
from django.db.models.functions import ExtractHour, ExtractIsoWeekDay, TruncDate, TruncHour
from django.db.models.lookups import LessThan

from ...models import Call, Direction
from ...models.reports import (
    CALLBACK_BUCKETS,
    WAIT_BUCKETS,
    WAIT_FIELDS,
    CallDayRollup,
    CallHourRollup,
    OperatorDayRollup,
)
from .plan import RollupPlan, rollup_plan
from .scope import (
    ANSWERED_ANY,
    ANSWERED_IN,
    CALL,
    CALLBACK_DELAY,
    INCOMING,
    MISSED_IN,
    OUTGOING,
    ReportScope,
    scope_calls,
)

# Which rollup a figure is read from: calls per hour, calls per day, operators' calls per day.
Kind = Literal["hour", "day", "operator"]
Key = tuple[Hashable, ...]


COUNTS = (
    "calls",
    "incoming",
    "answered",
    "missed",
    "outgoing",
    "wait_count",
    "wait_sum",
    "talk_count",
    "talk_sum",
)


@dataclass
class Measures:
    calls: int = 0  # every call of the group
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
        return histogram_percentile(self.histogram, fraction, WAIT_BUCKETS)


# --- Counting from the calls ----------------------------------------------------------------------


def bucket_index(value: Any, edges: Sequence[Any]) -> Any:
    """The index of the histogram bucket ``value`` falls in (edges ascending, the first one the least
    value there is): PostgreSQL's ``width_bucket`` (one binary search per row), elsewhere a CASE."""
    if connection.vendor == "postgresql":
        return Func(value, Value(list(edges)), function="width_bucket", output_field=IntegerField()) - 1
    whens = [When(LessThan(value, edge), then=Value(i)) for i, edge in enumerate(edges[1:])]
    return Case(*whens, default=Value(len(edges) - 1), output_field=IntegerField())


def wait_bucket() -> Any:
    """The wait's bucket for answered incoming calls (the ones the percentile is about), else NULL."""
    return Case(
        When(ANSWERED_IN & Q(wait_seconds__isnull=False), then=bucket_index(F("wait_seconds"), WAIT_BUCKETS))
    )


def callback_bucket() -> Any:
    """The bucket of a callback task's time to callback."""
    return bucket_index(CALLBACK_DELAY, [timedelta(seconds=edge) for edge in CALLBACK_BUCKETS])


def _exact_histograms(
    calls: QuerySet[Call], groups: dict[str, Any], by: Sequence[str]
) -> list[dict[str, Any]]:
    """Rows of per-bucket counts (``m_wait_bNN``) per group, from one GROUP BY group, bucket."""
    names = [f"g_{name}" for name in by]
    expressions = {
        f"g_{name}": F(groups[name]) if isinstance(groups[name], str) else groups[name] for name in by
    }
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    found = (
        calls.filter(ANSWERED_IN, wait_seconds__isnull=False)
        .annotate(**expressions, r_bucket=wait_bucket())
        .values(*names, "r_bucket")
        .annotate(n=Count(CALL))
    )
    for row in found:
        key = tuple(row[name] for name in names)
        target = rows.setdefault(key, {name: row[name] for name in names})
        target[f"m_{WAIT_FIELDS[row['r_bucket']]}"] = row["n"]
    return list(rows.values())


def exact_measures() -> dict[str, Any]:
    """The aggregates of ``Measures`` over calls (the definitions of ``scope``; the histogram apart)."""
    measures: dict[str, Any] = {
        "m_calls": Count(CALL),
        "m_incoming": Count(CALL, filter=INCOMING),
        "m_answered": Count(CALL, filter=ANSWERED_IN),
        "m_missed": Count(CALL, filter=MISSED_IN),
        "m_outgoing": Count(CALL, filter=OUTGOING),
        "m_wait_count": Count("wait_seconds", filter=ANSWERED_IN),
        "m_wait_sum": Sum("wait_seconds", filter=ANSWERED_IN),
        "m_talk_count": Count("talk_seconds", filter=ANSWERED_ANY),
        "m_talk_sum": Sum("talk_seconds", filter=ANSWERED_ANY),
    }
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


def rollup_measures(kind: Kind, *, histogram: bool) -> dict[str, Any]:
    """The same aggregates over rollup rows (a call rollup row is one direction, status and answered;
    an operator row has the operator table's measures already split)."""
    hist = {f"m_{name}": Sum(name) for name in WAIT_FIELDS} if histogram else {}
    if kind == "operator":
        return {
            "m_calls": Sum("calls"),
            "m_answered": Sum("taken"),
            "m_outgoing": Sum("outgoing"),
            **{f"m_{name}": Sum(name) for name in ("wait_count", "wait_sum", "talk_count", "talk_sum")},
            **hist,
        }
    return {
        "m_calls": Sum("calls"),
        "m_incoming": Sum("calls", filter=Q(direction=Direction.INCOMING)),
        "m_answered": Sum("calls", filter=_ROLLUP_ANSWERED_IN),
        "m_missed": Sum("calls", filter=Q(direction=Direction.INCOMING, status=Call.Status.MISSED)),
        "m_outgoing": Sum("calls", filter=Q(direction=Direction.OUTGOING)),
        "m_wait_count": Sum("wait_count", filter=_ROLLUP_ANSWERED_IN),
        "m_wait_sum": Sum("wait_sum", filter=_ROLLUP_ANSWERED_IN),
        "m_talk_count": Sum("talk_count", filter=Q(answered=True)),
        "m_talk_sum": Sum("talk_sum", filter=Q(answered=True)),
        **hist,
    }


ROLLUPS: dict[Kind, Any] = {"hour": CallHourRollup, "day": CallDayRollup, "operator": OperatorDayRollup}
ROLLUP_GROUPS: dict[Kind, dict[str, str]] = {
    "hour": {"line": "line_id", "hour": "hour", "local_hour": "local_hour", "weekday": "local_weekday"},
    "day": {"line": "line_id", "day": "day"},
    "operator": {"line": "line_id", "day": "day", "operator": "operator_id"},
}


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
    kind: Kind = "day",
    where: Q | None = None,
    histogram: bool = False,
    plan: RollupPlan | None = None,
) -> dict[Key, Measures]:
    """{group key (values of ``by``, in order): its measures}; groups without calls are absent.

    ``kind`` names the rollup that holds the groups (``ROLLUP_GROUPS``); ``where`` narrows the calls
    (a condition on fields both the calls and that rollup have: ``direction``, ``operator``)."""
    plan = plan or rollup_plan(scope)
    found: dict[Key, Measures] = {}

    def take(rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            key = tuple(row[f"g_{name}"] for name in by)
            found.setdefault(key, Measures()).add(row)

    if uses_rollups(plan, kind):
        if kind == "hour":
            assert plan.hours is not None
            rolled = ROLLUPS[kind].objects.filter(hour__gte=plan.hours[0], hour__lt=plan.hours[1])
        else:
            assert plan.days is not None
            rolled = ROLLUPS[kind].objects.filter(day__gte=plan.days[0], day__lte=plan.days[1])
        if scope.line_id is not None:
            rolled = rolled.filter(line_id=scope.line_id)
        if where is not None:
            rolled = rolled.filter(where)
        take(_grouped(rolled.order_by(), ROLLUP_GROUPS[kind], by, rollup_measures(kind, histogram=histogram)))

    spans = plan.exact_hours if kind == "hour" else plan.exact_days
    if spans:
        calls = scope_calls(scope, spans)
        if where is not None:
            calls = calls.filter(where)
        take(_grouped(calls, exact_groups(scope), by, exact_measures()))
        if histogram:
            take(_exact_histograms(calls, exact_groups(scope), by))
    return found


def uses_rollups(plan: RollupPlan, kind: Kind) -> bool:
    return (plan.hours if kind == "hour" else plan.days) is not None


# --- Percentiles from the histogram ---------------------------------------------------------------


def _value_at(histogram: Sequence[int], rank: int, edges: Sequence[int]) -> float:
    """An estimate of the rank-th smallest value (0-based): exact in a one-second bucket (the waits are
    whole seconds), else spread evenly over the bucket's whole seconds."""
    seen = 0
    for i, count in enumerate(histogram):
        if rank < seen + count:
            low = edges[i]
            if i + 1 == len(edges):
                return float(low)  # the open-ended bucket: its lower edge
            width = edges[i + 1] - low
            if width == 1:
                return float(low)
            estimate = low + (rank - seen + 0.5) * width / count - 0.5
            return min(max(estimate, float(low)), float(low + width - 1))
        seen += count
    raise ValueError("rank beyond the histogram")


def histogram_percentile(histogram: Sequence[int], fraction: float, edges: Sequence[int]) -> float | None:
    """``percentile_cont(fraction)`` of the values the histogram counts: rank (n - 1) × fraction,
    linear between the two values around it (None when empty)."""
    total = sum(histogram)
    if not total:
        return None
    position = (total - 1) * fraction
    lower, upper = math.floor(position), math.ceil(position)
    below = _value_at(histogram, lower, edges)
    above = below if upper == lower else _value_at(histogram, upper, edges)
    return below + (above - below) * (position - lower)

"""The line table and the routing outcomes of parked calls."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Q, QuerySet, Sum

from integrations.models import ExternalNumber

from ...models import RoutingDecision
from ...models.reports import RoutingDayRollup
from ..aggregates import analytic
from .measures import call_measures
from .plan import rollup_plan
from .scope import ReportScope, Span, span_q


@dataclass
class LineRow:
    line_id: int | None  # None: calls with no known line
    number: str = ""
    incoming: int = 0
    answered: int = 0
    missed: int = 0
    missed_share: float | None = None
    outgoing: int = 0
    wait_avg: float | None = None
    talk_total: int = 0


@analytic
def line_stats(scope: ReportScope) -> list[LineRow]:
    """One row per line: the chosen one, or every active line plus any line that had calls (zeros for
    lines without calls), then calls on no known line when there were any. Columns as in the summary."""
    found = {key[0]: measures for key, measures in call_measures(scope, by=("line",)).items()}
    if scope.line_id is not None:
        lines = ExternalNumber.objects.filter(pk=scope.line_id)
    else:
        lines = ExternalNumber.objects.filter(
            Q(is_active=True) | Q(pk__in=[k for k in found if k is not None])
        )
    result = []
    numbers: list[tuple[int | None, str]] = list(lines.order_by("number", "pk").values_list("pk", "number"))
    for line_id, number in [*numbers, *([(None, "")] if None in found else [])]:
        data = found.get(line_id)
        line = LineRow(line_id=line_id, number=number)
        if data is not None:
            line.incoming, line.answered, line.missed = data.incoming, data.answered, data.missed
            line.missed_share, line.outgoing = data.missed_share, data.outgoing
            line.wait_avg, line.talk_total = data.wait_avg, data.talk_sum
        result.append(line)
    return result


@dataclass(frozen=True)
class RoutingRow:
    decision: str
    label: str
    count: int
    share: float | None


def routing_decisions(scope: ReportScope, spans: Iterable[Span] | None = None) -> QuerySet[RoutingDecision]:
    """Routing decisions made in the period (or in ``spans`` of it), on the scope's line."""
    qs = RoutingDecision.objects.filter(
        span_q([(scope.start, scope.end)] if spans is None else spans, "decided_at")
    )
    if scope.calls is not None:
        qs = qs.filter(call__in=scope.calls)
    if scope.line_id is not None:
        # Decided seconds after the call started: the bound keeps the join to the period's calls.
        qs = qs.filter(
            call__line_id=scope.line_id,
            call__started_at__gte=scope.start - timedelta(days=1),
            call__started_at__lt=scope.end,
        )
    return qs.order_by()


@analytic
def routing_outcomes(scope: ReportScope) -> list[RoutingRow]:
    """Parked calls by what the CRM did (``RoutingDecision.decision``, decided in the period):
    transferred to the personal manager, released to the PBX's routing, too late (the PBX routed it
    before the CRM could), failed. All four rows, zeros included; share of all decisions."""
    plan = rollup_plan(scope)
    counts: dict[str, int] = {}
    if plan.days is not None:
        rolled = RoutingDayRollup.objects.filter(day__gte=plan.days[0], day__lte=plan.days[1])
        if scope.line_id is not None:
            rolled = rolled.filter(line_id=scope.line_id)
        for decision, n in rolled.order_by().values_list("decision").annotate(n=Sum("decisions")):
            counts[decision] = counts.get(decision, 0) + n
    if plan.exact_days:
        exact = (
            routing_decisions(scope, plan.exact_days).values_list("decision").annotate(n=Count("decided_at"))
        )
        for decision, n in exact:
            counts[decision] = counts.get(decision, 0) + n
    total = sum(counts.values())
    return [
        RoutingRow(
            decision=str(value),
            label=str(label),
            count=counts.get(value, 0),
            share=counts.get(value, 0) / total if total else None,
        )
        for value, label in RoutingDecision.Decision.choices
    ]

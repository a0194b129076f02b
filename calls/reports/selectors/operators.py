"""The operator table: calls taken and placed, offers not taken, waits, talk, callbacks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, DurationField, Exists, F, OuterRef, Q, QuerySet, Sum

from ...models import CallbackTask, CallLeg
from ...models.reports import CALLBACK_BUCKETS, CALLBACK_FIELDS, CallbackDayRollup, OfferDayRollup
from ..aggregates import PercentileCont, analytic, percentile_by_group, uses_percentile_cont
from .measures import call_measures, callback_bucket, histogram_percentile, uses_rollups
from .plan import RollupPlan, rollup_plan
from .scope import ANSWERED_IN, CALLBACK_DELAY, WAIT_PERCENTILE, ReportScope, Span, scope_calls, span_q


@dataclass
class OperatorRow:
    user_id: int
    name: str = ""
    taken: int = 0
    offered_missed: int = 0
    outgoing: int = 0
    wait_avg: float | None = None
    wait_p90: float | None = None
    talk_avg: float | None = None
    talk_total: int = 0
    callbacks_closed: int = 0
    callback_median: float | None = None


def missed_offers(scope: ReportScope, spans: Iterable[Span] | None = None) -> QuerySet[CallLeg]:
    """Legs offered to an operator and not taken: a leg on a workplace with an operator that rang
    there (``offered_at``, the ``showing`` state) in the period (or in ``spans`` of it) and never
    connected (no ``connected_at``, no talk duration). Counted per offer: a call that rang an operator
    twice and was missed twice counts 2; with group ringing every operator whose phone rang and who did
    not answer counts the call, whoever took it. The operator is the workplace's operator now (legs keep
    the workplace, not the person)."""
    qs = CallLeg.objects.filter(
        span_q([(scope.start, scope.end)] if spans is None else spans, "offered_at"),
        connected_at__isnull=True,
        workplace__user__isnull=False,
    ).filter(Q(duration__isnull=True) | Q(duration=0))
    if scope.calls is not None:
        qs = qs.filter(call__in=scope.calls)
    if scope.line_id is not None:
        # The call started at most a day before its leg rang: bounding it lets the database take only
        # that line's calls of the period (the report index) instead of all the line's calls.
        qs = qs.filter(
            call__line_id=scope.line_id,
            call__started_at__gte=scope.start - timedelta(days=1),
            call__started_at__lt=scope.end,
        )
    return qs.order_by()


def closed_callbacks(scope: ReportScope, spans: Iterable[Span] | None = None) -> QuerySet[CallbackTask]:
    """Callback tasks closed in the period (or in ``spans`` of it) by an operator (the operator of the
    call that reached the client). With a line: tasks with a missed call on that line."""
    qs = CallbackTask.objects.filter(
        span_q([(scope.start, scope.end)] if spans is None else spans, "closed_at"), closed_by__isnull=False
    )
    if scope.calls is not None:
        qs = qs.filter(closed_call__in=scope.calls)
    if scope.line_id is not None:
        through = CallbackTask.missed_calls.through
        qs = qs.filter(
            Exists(through.objects.filter(callbacktask_id=OuterRef("pk"), call__line_id=scope.line_id))
        )
    return qs.order_by()


def _offers_by_operator(scope: ReportScope) -> dict[int, int]:
    """Offers not taken per operator: the offer rollups for the days they hold, the legs for the rest."""
    plan = rollup_plan(scope)
    counts: dict[int, int] = {}
    if plan.days is not None:
        rolled = OfferDayRollup.objects.filter(
            day__gte=plan.days[0], day__lte=plan.days[1], workplace__user__isnull=False
        )
        if scope.line_id is not None:
            rolled = rolled.filter(line_id=scope.line_id)
        for user_id, n in rolled.order_by().values_list("workplace__user_id").annotate(n=Sum("offers")):
            counts[user_id] = counts.get(user_id, 0) + n
    if plan.exact_days:
        exact = (
            missed_offers(scope, plan.exact_days).values_list("workplace__user_id").annotate(n=Count("pk"))
        )
        for user_id, n in exact:
            counts[user_id] = counts.get(user_id, 0) + n
    return counts


def _callbacks_by_operator(scope: ReportScope, plan: RollupPlan) -> dict[int, tuple[int, float | None]]:
    """{operator: (callbacks closed, median time to callback in seconds)}: from the callback rollups
    (the median from their histogram) for the days they hold and the tasks for the rest, or from the
    tasks alone (the exact median) when the rollups hold none of the period."""
    result: dict[int, tuple[int, float | None]] = {}
    if plan.days is None:
        aggregates: dict[str, Any] = {"n": Count("closed_at")}
        if uses_percentile_cont():
            aggregates["median"] = PercentileCont(CALLBACK_DELAY, 0.5, output_field=DurationField())
        medians: dict[Any, float | None] = {}
        if not uses_percentile_cont():
            medians = percentile_by_group(
                closed_callbacks(scope), group="closed_by_id", value=CALLBACK_DELAY, fraction=0.5
            )
        found: dict[str, Any]
        for found in closed_callbacks(scope).values("closed_by_id").annotate(**aggregates):  # type: ignore[assignment]
            median = found.get("median")
            seconds = median.total_seconds() if median is not None else medians.get(found["closed_by_id"])
            result[found["closed_by_id"]] = (found["n"], seconds)
        return result

    histograms: dict[int, list[int]] = {}

    def take(user_id: int, n: int, counts: list[int]) -> None:
        histogram = histograms.setdefault(user_id, [0] * len(CALLBACK_BUCKETS))
        for i, count in enumerate(counts):
            histogram[i] += count or 0
        closed, _ = result.get(user_id, (0, None))
        result[user_id] = (closed + n, None)

    rolled = CallbackDayRollup.objects.filter(day__gte=plan.days[0], day__lte=plan.days[1])
    rolled = (
        rolled.filter(line_id=scope.line_id) if scope.line_id is not None else rolled.filter(all_lines=True)
    )
    sums = {name: Sum(name) for name in CALLBACK_FIELDS}
    for found in rolled.order_by().values("closed_by_id").annotate(n=Sum("closed"), **sums):  # type: ignore[assignment]
        take(found["closed_by_id"], found["n"], [found[name] for name in CALLBACK_FIELDS])
    if plan.exact_days:
        exact = (
            closed_callbacks(scope, plan.exact_days)
            .annotate(r_bucket=callback_bucket())
            .values_list("closed_by_id", "r_bucket")
            .annotate(n=Count("pk"))
        )
        for user_id, bucket, n in exact:
            counts = [0] * len(CALLBACK_BUCKETS)
            counts[bucket] = n
            take(user_id, n, counts)
    return {
        user_id: (closed, histogram_percentile(histograms[user_id], 0.5, CALLBACK_BUCKETS))
        for user_id, (closed, _) in result.items()
    }


@analytic
def operator_stats(scope: ReportScope) -> list[OperatorRow]:
    """One row per operator who took, missed, placed a call or closed a callback in the period:

    - ``taken``: incoming answered calls whose operator (``Call.operator``, who answered) is them;
    - ``offered_missed``: ``missed_offers`` on their workplace;
    - ``outgoing``: outgoing calls they placed (any outcome);
    - ``wait_avg`` / ``wait_p90``: mean and 90th percentile (continuous, interpolated) of the wait of
      the calls they took;
    - ``talk_avg`` / ``talk_total``: mean and sum of the talk time of all their answered calls, incoming
      taken and outgoing answered (time on the phone);
    - ``callbacks_closed`` / ``callback_median``: ``closed_callbacks`` closed by them and the median of
      ``closed_at − first_missed_at``.

    Sorted by name.
    """
    rows: dict[int, OperatorRow] = {}

    def row(user_id: int) -> OperatorRow:
        return rows.setdefault(user_id, OperatorRow(user_id=user_id))

    plan = rollup_plan(scope)
    rolled = uses_rollups(plan, "day")
    by_operator = call_measures(
        scope, by=("operator",), kind="operator", where=Q(operator__isnull=False), histogram=rolled, plan=plan
    )
    for (user_id,), measures in by_operator.items():
        target = row(int(user_id))  # type: ignore[call-overload]
        target.taken, target.outgoing = measures.answered, measures.outgoing
        target.wait_avg, target.talk_avg = measures.wait_avg, measures.talk_avg
        target.talk_total = measures.talk_sum
        if rolled:
            target.wait_p90 = measures.wait_percentile(WAIT_PERCENTILE)
    if not rolled:
        p90 = percentile_by_group(
            scope_calls(scope).filter(ANSWERED_IN, operator_id__isnull=False),
            group="operator_id",
            value=F("wait_seconds"),
            fraction=WAIT_PERCENTILE,
        )
        for user_id, value in p90.items():
            row(int(user_id)).wait_p90 = value  # type: ignore[call-overload]

    for user_id, n in _offers_by_operator(scope).items():
        row(user_id).offered_missed = n

    for user_id, (closed, median) in _callbacks_by_operator(scope, plan).items():
        target = row(user_id)
        target.callbacks_closed, target.callback_median = closed, median

    users = (
        get_user_model().objects.filter(pk__in=list(rows)).values("pk", "username", "first_name", "last_name")
    )
    for user in users:
        full = f"{user['first_name']} {user['last_name']}".strip()
        rows[user["pk"]].name = full or user["username"]
    return sorted(rows.values(), key=lambda r: (r.name.casefold(), r.user_id))

"""The operator table: calls taken and placed, offers not taken, waits, talk, callbacks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, DurationField, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet, Sum

from ...models import CallbackTask, CallLeg
from ..aggregates import PercentileCont, analytic, percentile_by_group, uses_percentile_cont
from ..models import OfferDayRollup
from .measures import call_measures, uses_rollups
from .plan import rollup_plan
from .scope import ANSWERED_IN, WAIT_PERCENTILE, ReportScope, Span, scope_calls, span_q


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


def closed_callbacks(scope: ReportScope) -> QuerySet[CallbackTask]:
    """Callback tasks closed in the period by an operator (the operator of the call that reached the
    client). With a line: tasks with a missed call on that line."""
    qs = CallbackTask.objects.filter(
        closed_at__gte=scope.start, closed_at__lt=scope.end, closed_by__isnull=False
    )
    if scope.calls is not None:
        qs = qs.filter(closed_call__in=scope.calls)
    if scope.line_id is not None:
        through = CallbackTask.missed_calls.through
        qs = qs.filter(
            Exists(through.objects.filter(callbacktask_id=OuterRef("pk"), call__line_id=scope.line_id))
        )
    return qs.order_by()


# Time to callback: from the client's FIRST missed call to the connected call that closed the task.
# The first miss, not the last: the client has been waiting for us since then, and each new attempt
# by the client must not reset the clock (measuring from the last miss would reward not calling back
# until the client gives up calling).
CALLBACK_DELAY = ExpressionWrapper(F("closed_at") - F("first_missed_at"), output_field=DurationField())


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
        scope, by=("operator",), where=Q(operator__isnull=False), histogram=rolled, plan=plan
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

    callback_aggregates: dict[str, Any] = {"n": Count("closed_at")}
    if uses_percentile_cont():
        callback_aggregates["median"] = PercentileCont(CALLBACK_DELAY, 0.5, output_field=DurationField())
    found: dict[str, Any]
    for found in closed_callbacks(scope).values("closed_by_id").annotate(**callback_aggregates):  # type: ignore[assignment]
        target = row(found["closed_by_id"])
        target.callbacks_closed = found["n"]
        if "median" in found:
            target.callback_median = found["median"].total_seconds() if found["median"] is not None else None
    if not uses_percentile_cont():
        medians = percentile_by_group(
            closed_callbacks(scope), group="closed_by_id", value=CALLBACK_DELAY, fraction=0.5
        )
        for user_id, value in medians.items():
            row(int(user_id)).callback_median = value  # type: ignore[call-overload]

    users = (
        get_user_model().objects.filter(pk__in=list(rows)).values("pk", "username", "first_name", "last_name")
    )
    for user in users:
        full = f"{user['first_name']} {user['last_name']}".strip()
        rows[user["pk"]].name = full or user["username"]
    return sorted(rows.values(), key=lambda r: (r.name.casefold(), r.user_id))

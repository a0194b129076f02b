"""The reports' figures: pure reads taking a ``ReportScope`` (period + line) and returning plain data.

Every number is an SQL aggregate (conditional ``Count``/``Sum``/``Avg`` with ``filter=Q(...)`` over
``values(...).annotate(...)``, percentiles in ``aggregates``); Python only lays the grouped rows into
fixed-size grids (every day or hour of the period, 7 × 24, the four routing decisions) so that buckets
without calls show as zeros.

Definitions (how ``calls.services._summarise`` and ``calls.callbacks`` set the fields):

- A call belongs to the period when it *started* in it (``Call.started_at``, local days and hours of
  ``TIME_ZONE``: a day is [00:00, 24:00) Moscow time), and to a line when ``Call.line`` is it.
- *Incoming answered*: ``direction = incoming`` and ``answered_at`` set — some leg connected (or, with
  forwarding outside, finished with a talk duration, guide §6.1); a call still in conversation counts.
- *Incoming missed*: ``direction = incoming`` and ``status = missed`` — every leg finished and none
  connected: nobody answered. Calls still ringing are neither answered nor missed.
- *Outgoing*: ``direction = outgoing``, whatever the outcome (``not_answered`` included).
- *Missed share*: missed / (answered + missed) incoming calls; ``None`` when there were none.
- *Wait*: ``Call.wait_seconds`` — from the call's start to the answer (parking, IVR and ringing included).
- *Talk*: ``Call.talk_seconds`` of answered calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import (
    Avg,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.functions import Cast, ExtractHour, ExtractIsoWeekDay, NullIf, TruncDate, TruncHour
from django.utils import timezone

from integrations.models import ExternalNumber

from ..models import Call, CallbackTask, CallLeg, Direction, RoutingDecision
from .aggregates import PercentileCont, analytic, percentile_by_group, uses_percentile_cont

# The longest period a report covers (a custom period is refused beyond it).
MAX_DAYS = 366
WAIT_PERCENTILE = 0.9

# Calls are counted as COUNT(started_at) — never NULL inside a period — rather than COUNT(id): every
# column the call aggregates read is in the report indexes (Call.Meta), so PostgreSQL answers them with
# index-only scans, without visiting the table.
CALL = "started_at"

INCOMING = Q(direction=Direction.INCOMING)
ANSWERED_IN = Q(direction=Direction.INCOMING, answered_at__isnull=False)
MISSED_IN = Q(direction=Direction.INCOMING, status=Call.Status.MISSED)
OUTGOING = Q(direction=Direction.OUTGOING)
ANSWERED_ANY = Q(answered_at__isnull=False)


@dataclass(frozen=True)
class ReportScope:
    """Local days ``first_day`` … ``last_day`` (both included) and one line (``None``: every line)."""

    first_day: date
    last_day: date
    line_id: int | None = None

    @property
    def tz(self) -> tzinfo:
        return timezone.get_default_timezone()

    @property
    def start(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.first_day, time.min), self.tz)

    @property
    def end(self) -> datetime:
        """Exclusive: the local midnight after the last day."""
        return timezone.make_aware(datetime.combine(self.last_day + timedelta(days=1), time.min), self.tz)

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def hourly(self) -> bool:
        """One day is charted per hour, longer periods per day."""
        return self.first_day == self.last_day

    def buckets(self) -> list[date] | list[datetime]:
        """Every bucket of the period, in order: local dates, or local starts of hours for one day
        (counted in UTC, so a day with a DST change has its 23 or 25 hours)."""
        if not self.hourly:
            return [self.first_day + timedelta(days=i) for i in range(self.days)]
        start, end = self.start.astimezone(UTC), self.end.astimezone(UTC)
        hours = int((end - start).total_seconds() // 3600)
        return [(start + timedelta(hours=i)).astimezone(self.tz) for i in range(hours)]


def _calls(scope: ReportScope) -> QuerySet[Call]:
    qs = Call.objects.filter(started_at__gte=scope.start, started_at__lt=scope.end)
    if scope.line_id is not None:
        qs = qs.filter(line_id=scope.line_id)
    return qs.order_by()


def _share(part: str, whole: Any) -> Any:
    """part / whole as a float computed by the database; NULL when whole is 0."""
    return Cast(F(part), FloatField()) / NullIf(whole, 0)


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
    aggregates: dict[str, Any] = {
        "incoming": Count(CALL, filter=INCOMING),
        "answered": Count(CALL, filter=ANSWERED_IN),
        "missed": Count(CALL, filter=MISSED_IN),
        "outgoing": Count(CALL, filter=OUTGOING),
        "wait_avg": Avg("wait_seconds", filter=ANSWERED_IN),
        "talk_total": Sum("talk_seconds", filter=ANSWERED_ANY),
        "missed_share": Cast(Count(CALL, filter=MISSED_IN), FloatField())
        / NullIf(Count(CALL, filter=ANSWERED_IN | MISSED_IN), 0),
    }
    if uses_percentile_cont():
        aggregates["wait_p90"] = PercentileCont("wait_seconds", WAIT_PERCENTILE, filter=ANSWERED_IN)
    row = _calls(scope).aggregate(**aggregates)
    if not uses_percentile_cont():
        # One group: every answered incoming call has direction "incoming".
        p90 = percentile_by_group(
            _calls(scope).filter(ANSWERED_IN),
            group="direction",
            value=F("wait_seconds"),
            fraction=WAIT_PERCENTILE,
        )
        row["wait_p90"] = p90.get(Direction.INCOMING)
    return Summary(
        incoming=row["incoming"],
        answered=row["answered"],
        missed=row["missed"],
        missed_share=row["missed_share"],
        outgoing=row["outgoing"],
        wait_avg=row["wait_avg"],
        wait_p90=row["wait_p90"],
        talk_total=row["talk_total"] or 0,
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
    trunc = (
        TruncHour("started_at", tzinfo=scope.tz) if scope.hourly else TruncDate("started_at", tzinfo=scope.tz)
    )
    rows = (
        _calls(scope)
        .annotate(bucket=trunc)
        .values("bucket")
        .annotate(
            answered=Count(CALL, filter=ANSWERED_IN),
            missed=Count(CALL, filter=MISSED_IN),
            outgoing=Count(CALL, filter=OUTGOING),
        )
    )
    found = {row["bucket"]: row for row in rows}
    points = []
    for bucket in scope.buckets():
        row = found.get(bucket)
        if row is None:
            points.append(SeriesPoint(bucket=bucket))
        else:
            points.append(
                SeriesPoint(
                    bucket=bucket, answered=row["answered"], missed=row["missed"], outgoing=row["outgoing"]
                )
            )
    return points


# --- When clients call ----------------------------------------------------------------------------


@analytic
def incoming_heatmap(scope: ReportScope) -> list[list[int]]:
    """Incoming calls (any outcome) by local ISO weekday × hour: 7 rows (Monday first) of 24 counts."""
    rows = (
        _calls(scope)
        .filter(INCOMING)
        .annotate(
            weekday=ExtractIsoWeekDay("started_at", tzinfo=scope.tz),
            hour=ExtractHour("started_at", tzinfo=scope.tz),
        )
        .values("weekday", "hour")
        .annotate(calls=Count(CALL))
    )
    grid = [[0] * 24 for _ in range(7)]
    for row in rows:
        grid[row["weekday"] - 1][row["hour"]] = row["calls"]
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
    rows = (
        _calls(scope)
        .filter(INCOMING)
        .annotate(hour=ExtractHour("started_at", tzinfo=scope.tz))
        .values("hour")
        .annotate(
            answered=Count(CALL, filter=ANSWERED_IN),
            missed=Count(CALL, filter=MISSED_IN),
        )
        .annotate(missed_share=_share("missed", F("answered") + F("missed")))
    )
    found = {row["hour"]: row for row in rows}
    result = []
    for hour in range(24):
        row = found.get(hour)
        result.append(
            HourShare(hour=hour)
            if row is None
            else HourShare(
                hour=hour, answered=row["answered"], missed=row["missed"], missed_share=row["missed_share"]
            )
        )
    return result


# --- Operators ------------------------------------------------------------------------------------


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


def missed_offers(scope: ReportScope) -> QuerySet[CallLeg]:
    """Legs offered to an operator and not taken: a leg on a workplace with an operator that rang
    there (``offered_at``, the ``showing`` state) in the period and never connected (no
    ``connected_at``, no talk duration). Counted per offer: a call that rang an operator twice and was
    missed twice counts 2; with group ringing every operator whose phone rang and who did not answer
    counts the call, whoever took it. The operator is the workplace's operator now (legs keep the
    workplace, not the person)."""
    qs = CallLeg.objects.filter(
        offered_at__gte=scope.start,
        offered_at__lt=scope.end,
        connected_at__isnull=True,
        workplace__user__isnull=False,
    ).filter(Q(duration__isnull=True) | Q(duration=0))
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

    call_aggregates: dict[str, Any] = {
        "taken": Count(CALL, filter=ANSWERED_IN),
        "outgoing": Count(CALL, filter=OUTGOING),
        "wait_avg": Avg("wait_seconds", filter=ANSWERED_IN),
        "talk_avg": Avg("talk_seconds", filter=ANSWERED_ANY),
        "talk_total": Sum("talk_seconds", filter=ANSWERED_ANY),
    }
    if uses_percentile_cont():
        call_aggregates["wait_p90"] = PercentileCont("wait_seconds", WAIT_PERCENTILE, filter=ANSWERED_IN)
    by_operator = _calls(scope).filter(operator_id__isnull=False)
    found: dict[str, Any]
    for found in by_operator.values("operator_id").annotate(**call_aggregates):  # type: ignore[assignment]
        target = row(found["operator_id"])
        target.taken, target.outgoing = found["taken"], found["outgoing"]
        target.wait_avg, target.talk_avg = found["wait_avg"], found["talk_avg"]
        target.talk_total = found["talk_total"] or 0
        target.wait_p90 = found.get("wait_p90")
    if not uses_percentile_cont():
        p90 = percentile_by_group(
            by_operator.filter(ANSWERED_IN),
            group="operator_id",
            value=F("wait_seconds"),
            fraction=WAIT_PERCENTILE,
        )
        for user_id, value in p90.items():
            row(int(user_id)).wait_p90 = value  # type: ignore[call-overload]

    offers = missed_offers(scope).values("workplace__user_id").annotate(n=Count("offered_at"))
    for found in offers:  # type: ignore[assignment]
        row(found["workplace__user_id"]).offered_missed = found["n"]

    callback_aggregates: dict[str, Any] = {"n": Count("closed_at")}
    if uses_percentile_cont():
        callback_aggregates["median"] = PercentileCont(CALLBACK_DELAY, 0.5, output_field=DurationField())
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


# --- Lines ----------------------------------------------------------------------------------------


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
    rows = (
        _calls(scope)
        .values("line_id")
        .annotate(
            incoming=Count(CALL, filter=INCOMING),
            answered=Count(CALL, filter=ANSWERED_IN),
            missed=Count(CALL, filter=MISSED_IN),
            outgoing=Count(CALL, filter=OUTGOING),
            wait_avg=Avg("wait_seconds", filter=ANSWERED_IN),
            talk_total=Sum("talk_seconds", filter=ANSWERED_ANY),
        )
        .annotate(missed_share=_share("missed", F("answered") + F("missed")))
    )
    found: dict[int | None, dict[str, Any]] = {r["line_id"]: dict(r) for r in rows}
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
            line.incoming, line.answered, line.missed = data["incoming"], data["answered"], data["missed"]
            line.missed_share, line.outgoing = data["missed_share"], data["outgoing"]
            line.wait_avg, line.talk_total = data["wait_avg"], data["talk_total"] or 0
        result.append(line)
    return result


# --- Routing outcomes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RoutingRow:
    decision: str
    label: str
    count: int
    share: float | None


@analytic
def routing_outcomes(scope: ReportScope) -> list[RoutingRow]:
    """Parked calls by what the CRM did (``RoutingDecision.decision``, decided in the period):
    transferred to the personal manager, released to the PBX's routing, too late (the PBX routed it
    before the CRM could), failed. All four rows, zeros included; share of all decisions."""
    qs = RoutingDecision.objects.filter(decided_at__gte=scope.start, decided_at__lt=scope.end)
    if scope.line_id is not None:
        # Decided seconds after the call started: the bound keeps the join to the period's calls.
        qs = qs.filter(
            call__line_id=scope.line_id,
            call__started_at__gte=scope.start - timedelta(days=1),
            call__started_at__lt=scope.end,
        )
    counts = {r["decision"]: r["n"] for r in qs.order_by().values("decision").annotate(n=Count("decided_at"))}
    total = sum(counts.values())  # four grouped counts
    return [
        RoutingRow(
            decision=str(value),
            label=str(label),
            count=counts.get(value, 0),
            share=counts.get(value, 0) / total if total else None,
        )
        for value, label in RoutingDecision.Decision.choices
    ]


# --- Everything -----------------------------------------------------------------------------------


@dataclass
class Dashboard:
    scope: ReportScope
    summary: Summary
    series: list[SeriesPoint]
    heatmap: list[list[int]]
    hours: list[HourShare]
    operators: list[OperatorRow]
    lines: list[LineRow]
    routing: list[RoutingRow]


@analytic
def report_dashboard(scope: ReportScope) -> Dashboard:
    return Dashboard(
        scope=scope,
        summary=report_summary(scope),
        series=calls_series(scope),
        heatmap=incoming_heatmap(scope),
        hours=missed_share_by_hour(scope),
        operators=operator_stats(scope),
        lines=line_stats(scope),
        routing=routing_outcomes(scope),
    )

"""Building the report rollups (``calls.models.reports``) from the call tables.

- ``rollups_refresh``: what beat runs every ``REPORTS_ROLLUP_EVERY_SECONDS``. It rebuilds the last
  ``REPORTS_ROLLUP_RECENT_HOURS`` up to the *cut* — the start of the current hour, or the hour of the
  earliest call of that window still ringing or in conversation — and moves the state's
  ``built_until`` to the cut. Hours before the window are final. The first run (no state, or a new
  ``TIME_ZONE``) builds everything from the day of the first call.
- ``rollups_rebuild``: any range of local days on demand (``manage.py reports_rollup``), everything by
  default.

A range is rebuilt by deleting its rows and inserting them again from one GROUP BY over the source
tables (INSERT … SELECT: no row passes through Python), in transactions of at most ``CHUNK_DAYS`` days.
Rebuilds never run at the same time (a PostgreSQL advisory lock; SQLite writes one at a time anyway).
The applier is never involved: it writes calls as before, and reports count what the rollups do not
hold yet from the calls themselves (``selectors.plan``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Case,
    Count,
    ExpressionWrapper,
    F,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, ExtractHour, ExtractIsoWeekDay, TruncDate, TruncHour
from django.utils import timezone

from ..models import Call, CallbackTask, CallLeg, RoutingDecision
from ..models.reports import (
    CALLBACK_FIELDS,
    WAIT_FIELDS,
    CallbackDayRollup,
    CallDayRollup,
    CallHourRollup,
    CallKey,
    OfferDayRollup,
    OperatorDayRollup,
    ReportRollupState,
    RoutingDayRollup,
)
from .selectors.measures import callback_bucket, wait_bucket
from .selectors.scope import ANSWERED_ANY, ANSWERED_IN, CALL, OUTGOING

# The tables rebuilt per local day.
DAY_MODELS = (CallDayRollup, OperatorDayRollup, OfferDayRollup, RoutingDayRollup, CallbackDayRollup)

logger = logging.getLogger(__name__)

CHUNK_DAYS = 31
# Any constant: the key of the PostgreSQL advisory lock that keeps two rebuilds apart.
LOCK_KEY = 0x6D7474_726570  # "mtt" "rep"


@dataclass
class RebuildResult:
    start: datetime
    end: datetime
    hour_rows: int = 0
    day_rows: int = 0
    skipped: bool = False  # another rebuild held the lock


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()), timezone.get_default_timezone())


def _local_day(moment: datetime) -> date:
    return timezone.localdate(moment, timezone.get_default_timezone())


@contextmanager
def _rebuild_lock(*, wait: bool) -> Iterator[bool]:
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_lock(%s)" if wait else "SELECT pg_try_advisory_lock(%s)", [LOCK_KEY]
        )
        got = wait or bool(cursor.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])


# --- The SELECTs the rows come from --------------------------------------------------------------

ANSWERED = ExpressionWrapper(Q(answered_at__isnull=False), output_field=BooleanField())


def _insert(
    model: type[Any], columns: dict[str, Any], source: QuerySet[Any], measures: dict[str, Any]
) -> int:
    """INSERT INTO model's table (columns…, measures…) SELECT … GROUP BY columns; the row count.

    Every selected column is an annotation named after its target, in order: the SELECT lists
    annotations in the order they were made."""
    aliases = {f"r_{name}": expression for name, expression in columns.items()}
    query = source.order_by().annotate(**aliases).values(*aliases).annotate(**measures)
    sql, params = query.query.sql_with_params()
    meta = model._meta
    targets = [meta.get_field(name).column for name in [*columns, *measures]]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(c) for c in targets)}) {sql}",
            params,
        )
        return cursor.rowcount


def _insert_histogram(
    model: type[Any],
    columns: dict[str, Any],
    source: QuerySet[Any],
    values: dict[str, Any],
    aggregates: dict[str, str],
    *,
    histogram: tuple[str, ...],
    distinct: str = "*",
) -> int:
    """Like ``_insert``, for the tables with a histogram: the rows of ``source`` with their key
    ``columns``, the per-row ``values`` (``v_…``) and their bucket (``r_bucket``) go through a subquery,
    so that each row's bucket is computed once; the outer GROUP BY adds up ``aggregates`` (target
    field → SQL over the ``v_…`` columns) and one COUNT per bucket (of ``distinct`` when given)."""
    keys = {f"r_{name}": expression for name, expression in columns.items()}
    inner = source.order_by().annotate(**keys, **values).values(*keys, *values, "r_bucket")
    sql, params = inner.query.sql_with_params()
    quote = connection.ops.quote_name
    counted = "*" if distinct == "*" else f"DISTINCT {quote(distinct)}"
    selects = [
        *(quote(key) for key in keys),
        *aggregates.values(),
        *(f"COUNT({counted}) FILTER (WHERE {quote('r_bucket')} = {i:d})" for i in range(len(histogram))),
    ]
    meta = model._meta
    targets = [meta.get_field(name).column for name in [*columns, *aggregates, *histogram]]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(c) for c in targets)}) "  # noqa: S608
            f"SELECT {', '.join(selects)} FROM ({sql}) AS src GROUP BY {', '.join(quote(k) for k in keys)}",
            params,
        )
        return cursor.rowcount


def call_key_columns() -> dict[str, Any]:
    """Every field of ``CallKey``, copied from the ``Call`` field of the same name."""
    return {field.name: F(field.attname) for field in CallKey._meta.fields}


def _measures() -> dict[str, Any]:
    return {
        "calls": Count(CALL),
        "wait_count": Count("wait_seconds"),
        "wait_sum": Coalesce(Sum("wait_seconds"), 0),
        "talk_count": Count("talk_seconds"),
        "talk_sum": Coalesce(Sum("talk_seconds"), 0),
    }


def _sql_sum(alias: str) -> str:
    return f"COALESCE(SUM({connection.ops.quote_name(alias)}), 0)"


def _sql_count(alias: str) -> str:
    return f"COUNT({connection.ops.quote_name(alias)})"


# The per-row values of the day tables' subquery, and what the rows of a group add up to.
CALL_VALUES: dict[str, Any] = {"v_wait": F("wait_seconds"), "v_talk": F("talk_seconds")}
CALL_AGGREGATES = {
    "calls": "COUNT(*)",
    "wait_count": _sql_count("v_wait"),
    "wait_sum": _sql_sum("v_wait"),
    "talk_count": _sql_count("v_talk"),
    "talk_sum": _sql_sum("v_talk"),
}
OPERATOR_VALUES: dict[str, Any] = {
    "v_taken": Case(When(ANSWERED_IN, then=Value(1))),
    "v_outgoing": Case(When(OUTGOING, then=Value(1))),
    "v_wait": Case(When(ANSWERED_IN, then=F("wait_seconds"))),
    "v_talk": Case(When(ANSWERED_ANY, then=F("talk_seconds"))),
}
OPERATOR_AGGREGATES = {
    "calls": "COUNT(*)",
    "taken": _sql_count("v_taken"),
    "outgoing": _sql_count("v_outgoing"),
    "wait_count": _sql_count("v_wait"),
    "wait_sum": _sql_sum("v_wait"),
    "talk_count": _sql_count("v_talk"),
    "talk_sum": _sql_sum("v_talk"),
}


def _rebuild_chunk(start: datetime, end: datetime) -> tuple[int, int]:
    """Hours [start, end) and the local days that end inside (start, end]: delete, insert."""
    tz = timezone.get_default_timezone()
    first_day, last_day = _local_day(start), _local_day(end) - timedelta(days=1)
    outcome = {"direction": F("direction"), "status": F("status"), "answered": ANSWERED}
    CallHourRollup.objects.filter(hour__gte=start, hour__lt=end).delete()
    hour_rows = _insert(
        CallHourRollup,
        {
            "hour": TruncHour("started_at", tzinfo=UTC),
            "local_weekday": ExtractIsoWeekDay("started_at", tzinfo=tz),
            "local_hour": ExtractHour("started_at", tzinfo=tz),
            **call_key_columns(),
            **outcome,
        },
        Call.objects.filter(started_at__gte=start, started_at__lt=end),
        _measures(),
    )
    day_rows = 0
    if first_day <= last_day:
        days = {"day__gte": first_day, "day__lte": last_day}
        day_start, day_end = local_midnight(first_day), local_midnight(last_day + timedelta(days=1))
        for model in DAY_MODELS:
            model.objects.filter(**days).delete()
        calls = Call.objects.filter(started_at__gte=day_start, started_at__lt=day_end).annotate(
            r_bucket=wait_bucket()
        )
        local_day = TruncDate("started_at", tzinfo=tz)
        day_rows = _insert_histogram(
            CallDayRollup,
            {"day": local_day, **call_key_columns(), **outcome},
            calls,
            CALL_VALUES,
            CALL_AGGREGATES,
            histogram=WAIT_FIELDS,
        )
        day_rows += _insert_histogram(
            OperatorDayRollup,
            {"day": local_day, **call_key_columns(), "operator": F("operator_id")},
            calls.filter(operator_id__isnull=False),
            OPERATOR_VALUES,
            OPERATOR_AGGREGATES,
            histogram=WAIT_FIELDS,
        )
        # Offers not taken: any workplace (whose operator it is is read with the report).
        _insert(
            OfferDayRollup,
            {
                "day": TruncDate("offered_at", tzinfo=tz),
                "line": F("call__line_id"),
                "workplace": F("workplace_id"),
            },
            CallLeg.objects.filter(
                Q(duration__isnull=True) | Q(duration=0),
                offered_at__gte=day_start,
                offered_at__lt=day_end,
                connected_at__isnull=True,
                workplace__isnull=False,
            ),
            {"offers": Count("offered_at")},
        )
        _insert(
            RoutingDayRollup,
            {
                "day": TruncDate("decided_at", tzinfo=tz),
                "line": F("call__line_id"),
                "decision": F("decision"),
            },
            RoutingDecision.objects.filter(decided_at__gte=day_start, decided_at__lt=day_end),
            {"decisions": Count("decided_at")},
        )
        closed = CallbackTask.objects.filter(
            closed_at__gte=day_start, closed_at__lt=day_end, closed_by__isnull=False
        ).annotate(r_bucket=callback_bucket())
        task = {"v_task": F("pk")}  # a task joined to its missed calls counts once per line
        closed_count = {"closed": f"COUNT(DISTINCT {connection.ops.quote_name('v_task')})"}
        closed_day = TruncDate("closed_at", tzinfo=tz)
        no_line = Cast(Value(None), BigIntegerField())  # a typed NULL (the subquery passes it through)
        _insert_histogram(
            CallbackDayRollup,
            {"day": closed_day, "closed_by": F("closed_by_id"), "all_lines": Value(True), "line": no_line},
            closed,
            task,
            closed_count,
            histogram=CALLBACK_FIELDS,
            distinct="v_task",
        )
        _insert_histogram(
            CallbackDayRollup,
            {
                "day": closed_day,
                "closed_by": F("closed_by_id"),
                "all_lines": Value(False),
                "line": F("missed_calls__line_id"),
            },
            closed.filter(missed_calls__line_id__isnull=False),
            task,
            closed_count,
            histogram=CALLBACK_FIELDS,
            distinct="v_task",
        )
    return hour_rows, day_rows


def rollups_rebuild_range(*, start: datetime, end: datetime) -> RebuildResult:
    """Rebuild the hours [start, end) (UTC hour boundaries) and the local days that end inside it, in
    chunks of CHUNK_DAYS days cut at local midnights. Does not move the state."""
    result = RebuildResult(start=start, end=end)
    chunk_start = start
    while chunk_start < end:
        chunk_end = min(end, local_midnight(_local_day(chunk_start) + timedelta(days=CHUNK_DAYS)))
        with transaction.atomic():
            hours, days = _rebuild_chunk(chunk_start, chunk_end)
        result.hour_rows += hours
        result.day_rows += days
        chunk_start = chunk_end
    return result


def rollup_cut(now: datetime, *, recent_hours: int) -> datetime:
    """The start of the current hour, or of the hour of the earliest call of the recent window that is
    still live (its figures are about to change: the reports count it from the calls meanwhile)."""
    now_hour = floor_hour(now)
    earliest_live = Call.objects.filter(
        status__in=Call.LIVE_STATUSES,
        started_at__gte=now_hour - timedelta(hours=recent_hours),
        started_at__lt=now_hour,
    ).aggregate(first=Min("started_at"))["first"]
    return min(now_hour, floor_hour(earliest_live)) if earliest_live else now_hour


def _first_call_midnight(default: datetime) -> datetime:
    first = Call.objects.aggregate(first=Min("started_at"))["first"]
    return min(local_midnight(_local_day(first)), default) if first else default


def _save_state(state: ReportRollupState | None, *, built_from: datetime, built_until: datetime) -> None:
    state = state or ReportRollupState()
    state.built_from, state.built_until, state.time_zone = built_from, built_until, settings.TIME_ZONE
    state.save()


def rollups_refresh(*, now: datetime | None = None, recent_hours: int | None = None) -> RebuildResult:
    """Beat: bring the rollups up to the cut (see the module's docstring)."""
    now = now or timezone.now()
    recent = settings.REPORTS_ROLLUP_RECENT_HOURS if recent_hours is None else recent_hours
    with _rebuild_lock(wait=False) as got:
        cut = rollup_cut(now, recent_hours=recent)
        if not got:
            logger.info("Report rollups: another rebuild is running; skipped")
            return RebuildResult(start=cut, end=cut, skipped=True)
        state = ReportRollupState.objects.order_by("pk").first()
        if state is None or state.time_zone != settings.TIME_ZONE:
            start = built_from = _first_call_midnight(default=cut)
        else:
            built_from = state.built_from
            start = max(built_from, min(state.built_until, cut - timedelta(hours=recent)))
        result = rollups_rebuild_range(start=start, end=cut)
        _save_state(state, built_from=built_from, built_until=max(cut, built_from))
    logger.info(
        "Report rollups: rebuilt %s – %s (%d hour rows, %d day rows)",
        start.isoformat(),
        cut.isoformat(),
        result.hour_rows,
        result.day_rows,
    )
    return result


def rollups_rebuild(
    *, first_day: date | None = None, last_day: date | None = None, now: datetime | None = None
) -> RebuildResult:
    """Rebuild the local days first_day … last_day (default: from the first call's day up to the cut).
    A rebuild that starts at or before the rolled-up range's start extends it; one that ends at the
    cut moves its end there."""
    now = now or timezone.now()
    with _rebuild_lock(wait=True):
        cut = rollup_cut(now, recent_hours=settings.REPORTS_ROLLUP_RECENT_HOURS)
        start = local_midnight(first_day) if first_day else _first_call_midnight(default=cut)
        end = min(cut, local_midnight(last_day + timedelta(days=1))) if last_day else cut
        if start >= end:
            return RebuildResult(start=start, end=start)
        result = rollups_rebuild_range(start=start, end=end)
        state = ReportRollupState.objects.order_by("pk").first()
        if state is None or state.time_zone != settings.TIME_ZONE:
            if first_day is None and last_day is None:  # everything: the rollups hold [start, cut)
                _save_state(state, built_from=start, built_until=end)
        elif start <= state.built_until and end >= state.built_from:  # touches the rolled-up range
            _save_state(
                state,
                built_from=min(state.built_from, start),
                built_until=end if end == cut else state.built_until,
            )
    return result

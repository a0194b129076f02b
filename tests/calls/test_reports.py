"""The reports dashboard: every aggregate against figures worked out by hand on a small fixed data set,
the CSV downloads, the period form and the permission.

The data set (times are Moscow time, UTC+3; the period is Mon 2 – Wed 4 March 2026, Tuesday has no
calls). Lines L1, L2 (L3 active without calls, L4 inactive without calls); operators Иванова (wp1) and
Петров (wp2), wp3 has no operator.

    call  day  time   line  direction  outcome      operator  wait  talk  legs offered, not taken
    C1    Mon  00:30  L1    in         answered     ivanova     10    60  -            (UTC: Sunday 21:30)
    C2    Mon  10:15  L1    in         answered     ivanova     20   120  -
    C3    Mon  10:40  L1    in         missed       -           30     0  wp1, wp2
    C14   Mon  11:00  L1    in         missed       -           25     0  -
    C4    Wed  10:05  L2    in         answered     petrov      40   300  wp1
    C9    Wed  10:30  -     in         answered     petrov       4    10  (wp2 talked without "connected")
    C8    Wed  11:00  L2    in         answered     ivanova     60    30  wp2
    C13   Wed  13:00  L2    in         missed       -           20     0  -
    C5    Wed  14:00  L2    in         missed       -           35     0  wp2, wp3 (no operator)
    C6    Wed  15:00  L1    out        answered     ivanova      5    90  -
    C7    Wed  16:00  L2    out        not answered petrov      15     0  -
    C12   Wed  17:00  L1    in         ringing      -            -     -  -
    C11   Sun  23:30  L1    in         answered     ivanova  (before the period)
    C10   Thu  00:30  L1    in         missed       -        (after the period; UTC: Wednesday 21:30)

Callbacks: T1 (C3) closed by ivanova Wed 15:00, first miss Mon 10:40 → 52 h 20 min = 188,400 s;
T2 (C13, C5) closed by ivanova Wed 17:00, first miss Wed 13:00 → 14,400 s (from the last miss 10,800);
T3 (C14) closed by petrov Mon 11:30 → 1,800 s; not counted: T4 open, T5 closed Thursday, T6 closed by
nobody. Routing decisions: transfer C1 (L1) and C4 (L2), release C2 (L1), too late C3 (L1); a transfer
decided Thursday does not count.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import NotSupportedError, connection
from django.db.models import F
from django.test import Client
from django.urls import reverse
from django.utils import translation

from calls.models import Call, CallbackTask, CallLeg, Direction, RoutingDecision
from calls.reports.aggregates import ANALYTIC_SETTINGS, PercentileCont, analytic, percentile_by_group
from calls.reports.exports import csv_text
from calls.reports.forms import ReportFilterForm
from calls.reports.selectors import (
    ReportScope,
    calls_series,
    incoming_heatmap,
    line_stats,
    missed_share_by_hour,
    operator_stats,
    report_summary,
    routing_outcomes,
)
from integrations.models import ExternalNumber, Integration, Workplace

pytestmark = pytest.mark.django_db

MSK = ZoneInfo("Europe/Moscow")
MON, TUE, WED = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)
PERIOD = ReportScope(first_day=MON, last_day=WED)
URL = "/reports/"


@pytest.fixture(autouse=True)
def _english(settings: Any) -> Iterator[None]:
    # The assertions read the English source strings, whatever the catalogue translates them to.
    settings.LANGUAGE_CODE = "en"
    settings.TIME_ZONE = "Europe/Moscow"
    with translation.override("en"):
        yield


def msk(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=MSK)


@pytest.fixture
def data(integration: Integration) -> dict[str, Any]:
    users = get_user_model().objects
    ivanova = users.create_user("ivanova", password="x-pass-123", first_name="Мария", last_name="Иванова")
    petrov = users.create_user("petrov", password="x-pass-123", first_name="Алексей", last_name="Петров")
    wp1 = Workplace.objects.create(integration=integration, sip_id="wp1", user=ivanova)
    wp2 = Workplace.objects.create(integration=integration, sip_id="wp2", user=petrov)
    wp3 = Workplace.objects.create(integration=integration, sip_id="wp3")
    l1 = ExternalNumber.objects.create(integration=integration, number="74951110000")
    l2 = ExternalNumber.objects.create(integration=integration, number="78002220000")
    l3 = ExternalNumber.objects.create(integration=integration, number="78123330000")
    ExternalNumber.objects.create(integration=integration, number="78124440000", is_active=False)
    lines = {"L1": l1, "L2": l2, None: None}
    ops = {"ivanova": ivanova, "petrov": petrov, None: None}
    statuses = {
        "answered": Call.Status.ANSWERED,
        "missed": Call.Status.MISSED,
        "not_answered": Call.Status.NOT_ANSWERED,
        "ringing": Call.Status.RINGING,
    }
    calls: dict[str, Call] = {}

    def call(key: str, start: datetime, line: str | None, direction: str, status: str, op: str | None,
             wait: int | None, talk: int | None) -> Call:  # fmt: skip
        answered = start + timedelta(seconds=wait or 0) if status == "answered" else None
        ended = None if status == "ringing" else start + timedelta(seconds=(wait or 0) + (talk or 0))
        calls[key] = Call.objects.create(
            integration=integration,
            call_key=key,
            direction=direction,
            status=statuses[status],
            client_number=f"+7921000{len(calls):04d}",
            line=lines[line],
            line_number=lines[line].number if lines[line] else "",
            operator=ops[op],
            workplace=ops[op].workplace if ops[op] else None,
            started_at=start,
            answered_at=answered,
            ended_at=ended,
            wait_seconds=wait,
            talk_seconds=talk,
        )
        return calls[key]

    IN, OUT = Direction.INCOMING, Direction.OUTGOING
    call("C1", msk(MON, 0, 30), "L1", IN, "answered", "ivanova", 10, 60)
    call("C2", msk(MON, 10, 15), "L1", IN, "answered", "ivanova", 20, 120)
    call("C3", msk(MON, 10, 40), "L1", IN, "missed", None, 30, 0)
    call("C14", msk(MON, 11, 0), "L1", IN, "missed", None, 25, 0)
    call("C4", msk(WED, 10, 5), "L2", IN, "answered", "petrov", 40, 300)
    call("C9", msk(WED, 10, 30), None, IN, "answered", "petrov", 4, 10)
    call("C8", msk(WED, 11, 0), "L2", IN, "answered", "ivanova", 60, 30)
    call("C13", msk(WED, 13, 0), "L2", IN, "missed", None, 20, 0)
    call("C5", msk(WED, 14, 0), "L2", IN, "missed", None, 35, 0)
    call("C6", msk(WED, 15, 0), "L1", OUT, "answered", "ivanova", 5, 90)
    call("C7", msk(WED, 16, 0), "L2", OUT, "not_answered", "petrov", 15, 0)
    call("C12", msk(WED, 17, 0), "L1", IN, "ringing", None, None, None)
    call("C11", msk(MON, 0, 0) - timedelta(minutes=30), "L1", IN, "answered", "ivanova", 10, 10)
    call("C10", msk(WED + timedelta(days=1), 0, 30), "L1", IN, "missed", None, 30, 0)

    leg_no = iter(range(1, 1000))

    def leg(key: str, workplace: Workplace | None, *, taken: bool, duration: int | None = None,
            line_leg: bool = False) -> CallLeg:  # fmt: skip
        c = calls[key]
        assert c.started_at is not None
        offered = c.started_at + timedelta(seconds=2)
        return CallLeg.objects.create(
            call=c,
            integration=integration,
            leg_id=f"{key}-{next(leg_no)}",
            direction=c.direction,
            is_line_leg=line_leg,
            workplace=workplace,
            started_at=c.started_at,
            offered_at=None if line_leg else offered,
            connected_at=c.answered_at if taken else None,
            duration=duration,
        )

    # Every answered call's operator leg (connected): not a missed offer.
    for key, wp in [("C1", wp1), ("C2", wp1), ("C4", wp2), ("C8", wp1), ("C11", wp1)]:
        leg(key, wp, taken=True)
    # Offered and not taken.
    leg("C3", wp1, taken=False)
    leg("C3", wp2, taken=False)
    leg("C4", wp1, taken=False)
    leg("C8", wp2, taken=False)
    leg("C5", wp2, taken=False)
    leg("C5", wp3, taken=False)  # a workplace without an operator: nobody's miss
    leg("C10", wp1, taken=False)  # offered after the period
    # Forwarding outside: finished with a talk duration and no "connected" — answered, not missed.
    leg("C9", wp2, taken=False, duration=10)

    # Routing decisions, each on its call's parked (line) leg.
    def decide(key: str, decision: str, at: datetime) -> None:
        parked = leg(key, None, taken=False, line_leg=True)
        RoutingDecision.objects.create(
            call=calls[key], leg=parked, decision=decision, reason=RoutingDecision.Reason.NO_MANAGER,
            received_at=at, decided_at=at,
        )  # fmt: skip

    decide("C1", RoutingDecision.Decision.TRANSFER, msk(MON, 0, 30))
    decide("C4", RoutingDecision.Decision.TRANSFER, msk(WED, 10, 5))
    decide("C2", RoutingDecision.Decision.RELEASE, msk(MON, 10, 15))
    decide("C3", RoutingDecision.Decision.TOO_LATE, msk(MON, 10, 40))
    decide("C10", RoutingDecision.Decision.TRANSFER, msk(WED + timedelta(days=1), 0, 30))

    def task(number: str, missed: list[str], first: datetime, last: datetime, closed: datetime | None,
             by: str | None) -> None:  # fmt: skip
        t = CallbackTask.objects.create(
            client_number=number, missed_count=len(missed), first_missed_at=first, last_missed_at=last,
            closed_at=closed, closed_by=ops[by],
        )  # fmt: skip
        t.missed_calls.set([calls[k] for k in missed])

    task("+79210000001", ["C3"], msk(MON, 10, 40), msk(MON, 10, 40), msk(WED, 15, 0), "ivanova")  # T1
    task("+79210000002", ["C13", "C5"], msk(WED, 13, 0), msk(WED, 14, 0), msk(WED, 17, 0), "ivanova")  # T2
    task("+79210000003", ["C14"], msk(MON, 11, 0), msk(MON, 11, 0), msk(MON, 11, 30), "petrov")  # T3
    task("+79210000004", ["C10"], msk(WED, 23, 0), msk(WED, 23, 0), None, None)  # T4: open
    task(
        "+79210000005", ["C3"], msk(MON, 9, 0), msk(MON, 9, 0), msk(WED + timedelta(days=1), 10, 0), "petrov"
    )
    task("+79210000006", ["C14"], msk(MON, 9, 0), msk(MON, 9, 0), msk(MON, 12, 0), None)  # T6: nobody

    return {"calls": calls, "ivanova": ivanova, "petrov": petrov, "l1": l1, "l2": l2, "l3": l3}


# --- Aggregates -----------------------------------------------------------------------------------


def test_summary(data: dict[str, Any]) -> None:
    s = report_summary(PERIOD)
    assert (s.incoming, s.answered, s.missed, s.outgoing) == (10, 5, 4, 2)
    assert s.missed_share == pytest.approx(4 / 9)
    assert s.wait_avg == pytest.approx(134 / 5)  # 10 + 20 + 40 + 4 + 60
    assert s.wait_p90 == pytest.approx(52.0)  # [4, 10, 20, 40, 60]: rank 3.6 → 40 + 0.6 × 20
    assert s.talk_total == 610  # 60 + 120 + 300 + 10 + 30 + 90


def test_summary_of_an_empty_period(data: dict[str, Any]) -> None:
    s = report_summary(ReportScope(first_day=TUE, last_day=TUE))
    assert (s.incoming, s.answered, s.missed, s.outgoing, s.talk_total) == (0, 0, 0, 0, 0)
    assert s.missed_share is None and s.wait_avg is None and s.wait_p90 is None


def test_series_per_local_day_with_the_empty_day_as_zeros(data: dict[str, Any]) -> None:
    series = calls_series(PERIOD)
    assert [(p.bucket, p.answered, p.missed, p.outgoing) for p in series] == [
        (MON, 2, 2, 0),  # C1 (Sunday 21:30 UTC is Monday in Moscow), C2; C3, C14
        (TUE, 0, 0, 0),
        (WED, 3, 2, 2),  # C4, C9, C8; C13, C5; C6, C7 (C12 still ringing counts in neither)
    ]


def test_series_per_hour_for_one_day(data: dict[str, Any]) -> None:
    series = calls_series(ReportScope(first_day=WED, last_day=WED))
    assert [p.bucket for p in series] == [msk(WED, h) for h in range(24)]
    by_hour = {p.bucket.hour: (p.answered, p.missed, p.outgoing) for p in series}  # type: ignore[union-attr]
    assert by_hour == {
        **{h: (0, 0, 0) for h in range(24)},
        10: (2, 0, 0),
        11: (1, 0, 0),
        13: (0, 1, 0),
        14: (0, 1, 0),
        15: (0, 0, 1),
        16: (0, 0, 1),
    }


def test_series_for_one_line(data: dict[str, Any]) -> None:
    series = calls_series(ReportScope(first_day=MON, last_day=WED, line_id=data["l2"].pk))
    assert [(p.answered, p.missed, p.outgoing) for p in series] == [(0, 0, 0), (0, 0, 0), (2, 2, 1)]


def test_heatmap_of_incoming_calls_by_weekday_and_hour(data: dict[str, Any]) -> None:
    grid = incoming_heatmap(PERIOD)
    assert len(grid) == 7 and all(len(row) == 24 for row in grid)
    cells = {(day, hour): n for day, row in enumerate(grid, start=1) for hour, n in enumerate(row) if n}
    assert cells == {
        (1, 0): 1,  # C1
        (1, 10): 2,  # C2, C3
        (1, 11): 1,  # C14
        (3, 10): 2,  # C4, C9
        (3, 11): 1,  # C8
        (3, 13): 1,  # C13
        (3, 14): 1,  # C5
        (3, 17): 1,  # C12, ringing: a client called
    }


def test_missed_share_by_hour(data: dict[str, Any]) -> None:
    hours = missed_share_by_hour(PERIOD)
    assert [h.hour for h in hours] == list(range(24))
    shares = {h.hour: (h.answered, h.missed, h.missed_share) for h in hours if h.answered or h.missed}
    assert shares == {
        0: (1, 0, 0.0),
        10: (3, 1, 0.25),  # C2, C4, C9; C3
        11: (1, 1, 0.5),  # C8; C14
        13: (0, 1, 1.0),
        14: (0, 1, 1.0),
    }
    assert hours[17].missed_share is None  # only a call still ringing
    assert hours[3].missed_share is None  # no calls


def _operators(scope: ReportScope) -> dict[str, Any]:
    return {row.name: row for row in operator_stats(scope)}


def test_operator_table(data: dict[str, Any]) -> None:
    rows = operator_stats(PERIOD)
    assert [r.name for r in rows] == ["Алексей Петров", "Мария Иванова"]
    ivanova, petrov = rows[1], rows[0]

    assert ivanova.taken == 3  # C1, C2, C8
    assert ivanova.offered_missed == 2  # C3, C4 (C10 is after the period)
    assert ivanova.outgoing == 1  # C6
    assert ivanova.wait_avg == pytest.approx(30.0)  # (10 + 20 + 60) / 3
    assert ivanova.wait_p90 == pytest.approx(52.0)  # [10, 20, 60]: rank 1.8 → 20 + 0.8 × 40
    assert ivanova.talk_total == 300  # 60 + 120 + 30 + 90 (C6, outgoing)
    assert ivanova.talk_avg == pytest.approx(75.0)
    assert ivanova.callbacks_closed == 2  # T1, T2
    assert ivanova.callback_median == pytest.approx((188_400 + 14_400) / 2)

    assert petrov.taken == 2  # C4, C9
    assert petrov.offered_missed == 3  # C3, C8, C5 (C9's leg talked)
    assert petrov.outgoing == 1  # C7
    assert petrov.wait_avg == pytest.approx(22.0)  # (40 + 4) / 2
    assert petrov.wait_p90 == pytest.approx(36.4)  # [4, 40]: rank 0.9 → 4 + 0.9 × 36
    assert petrov.talk_total == 310  # 300 + 10 (C7 not answered)
    assert petrov.talk_avg == pytest.approx(155.0)
    assert petrov.callbacks_closed == 1  # T3 (T5 closed after the period)
    assert petrov.callback_median == pytest.approx(1_800.0)


def test_operator_table_for_one_line(data: dict[str, Any]) -> None:
    rows = _operators(ReportScope(first_day=MON, last_day=WED, line_id=data["l1"].pk))
    ivanova, petrov = rows["Мария Иванова"], rows["Алексей Петров"]
    assert (ivanova.taken, ivanova.offered_missed, ivanova.outgoing) == (2, 1, 1)  # C1, C2; C3; C6
    assert ivanova.wait_avg == pytest.approx(15.0)
    assert ivanova.wait_p90 == pytest.approx(19.0)  # [10, 20]: 10 + 0.9 × 10
    assert (ivanova.talk_total, ivanova.talk_avg) == (270, pytest.approx(90.0))
    assert (ivanova.callbacks_closed, ivanova.callback_median) == (1, pytest.approx(188_400.0))  # T1
    assert (petrov.taken, petrov.offered_missed, petrov.outgoing) == (0, 1, 0)  # C3's offer
    assert petrov.wait_avg is None and petrov.wait_p90 is None and petrov.talk_avg is None
    assert (petrov.callbacks_closed, petrov.callback_median) == (1, pytest.approx(1_800.0))  # T3 (C14)

    rows = _operators(ReportScope(first_day=MON, last_day=WED, line_id=data["l2"].pk))
    ivanova, petrov = rows["Мария Иванова"], rows["Алексей Петров"]
    assert (ivanova.taken, ivanova.offered_missed, ivanova.callbacks_closed) == (1, 1, 1)  # C8; C4; T2
    assert ivanova.callback_median == pytest.approx(14_400.0)
    assert (petrov.taken, petrov.offered_missed, petrov.outgoing, petrov.callbacks_closed) == (1, 2, 1, 0)


def test_operator_table_is_empty_without_calls(data: dict[str, Any]) -> None:
    assert operator_stats(ReportScope(first_day=TUE, last_day=TUE)) == []


def test_line_table(data: dict[str, Any]) -> None:
    rows = line_stats(PERIOD)
    assert [r.number for r in rows] == [
        "74951110000",
        "78002220000",
        "78123330000",
        "",
    ]  # L4 inactive, unused
    l1, l2, l3, none = rows
    assert (l1.incoming, l1.answered, l1.missed, l1.outgoing) == (5, 2, 2, 1)  # C12 ringing is incoming
    assert l1.missed_share == pytest.approx(0.5)
    assert (l1.wait_avg, l1.talk_total) == (pytest.approx(15.0), 270)
    assert (l2.incoming, l2.answered, l2.missed, l2.outgoing) == (4, 2, 2, 1)
    assert (l2.wait_avg, l2.talk_total) == (pytest.approx(50.0), 330)
    assert (l3.incoming, l3.answered, l3.missed, l3.outgoing, l3.talk_total) == (0, 0, 0, 0, 0)
    assert l3.missed_share is None and l3.wait_avg is None
    assert none.line_id is None
    assert (none.incoming, none.answered, none.missed, none.missed_share, none.talk_total) == (
        1,
        1,
        0,
        0.0,
        10,
    )


def test_line_table_for_one_line(data: dict[str, Any]) -> None:
    rows = line_stats(ReportScope(first_day=MON, last_day=WED, line_id=data["l3"].pk))
    assert [(r.number, r.incoming) for r in rows] == [("78123330000", 0)]


def test_routing_outcomes(data: dict[str, Any]) -> None:
    rows = {r.decision: (r.count, r.share) for r in routing_outcomes(PERIOD)}
    assert rows == {"transfer": (2, 0.5), "release": (1, 0.25), "too_late": (1, 0.25), "failed": (0, 0.0)}
    one_line = {r.decision: r.count for r in routing_outcomes(ReportScope(MON, WED, line_id=data["l2"].pk))}
    assert one_line == {"transfer": 1, "release": 0, "too_late": 0, "failed": 0}
    empty = routing_outcomes(ReportScope(first_day=TUE, last_day=TUE))
    assert [(r.count, r.share) for r in empty] == [(0, None)] * 4


def test_percentile_matches_the_interpolation_rule(data: dict[str, Any]) -> None:
    """The same answers as PostgreSQL's percentile_cont on both backends, including the edges."""
    calls = Call.objects.filter(direction=Direction.INCOMING, answered_at__isnull=False).exclude(
        call_key="C11"
    )
    wait = percentile_by_group(calls, group="operator_id", value=F("wait_seconds"), fraction=0.5)
    assert wait == {data["ivanova"].pk: pytest.approx(20.0), data["petrov"].pk: pytest.approx(22.0)}
    lowest = percentile_by_group(calls, group="direction", value=F("wait_seconds"), fraction=0.0)
    highest = percentile_by_group(calls, group="direction", value=F("wait_seconds"), fraction=1.0)
    assert (lowest, highest) == ({"incoming": 4.0}, {"incoming": 60.0})
    assert percentile_by_group(calls.none(), group="direction", value=F("wait_seconds"), fraction=0.9) == {}


def test_percentile_cont_is_postgresql_only(data: dict[str, Any]) -> None:
    calls = Call.objects.filter(direction=Direction.INCOMING, answered_at__isnull=False).exclude(
        call_key="C11"
    )
    p90 = PercentileCont("wait_seconds", 0.9)
    if connection.vendor == "postgresql":
        assert calls.aggregate(p90=p90)["p90"] == pytest.approx(52.0)
    else:
        with pytest.raises(NotSupportedError):
            calls.aggregate(p90=p90)
    with pytest.raises(ValueError):
        PercentileCont("wait_seconds", 90)


def test_report_queries_run_with_room_to_aggregate(postgres_only: None, db: Any) -> None:
    seen: list[tuple[str, str]] = []

    @analytic
    def probe() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('work_mem'), current_setting('jit')")
            seen.append(cursor.fetchone())

    probe()
    assert seen == [(ANALYTIC_SETTINGS["work_mem"], ANALYTIC_SETTINGS["jit"])]


# --- Period form ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "first", "last"),
    [
        ({"period": "today"}, WED, WED),
        ({"period": "7d"}, WED - timedelta(days=6), WED),
        ({"period": "30d"}, WED - timedelta(days=29), WED),
        ({"period": "custom", "date_from": "2026-03-02", "date_to": "2026-03-04"}, MON, WED),
        ({"date_from": "2026-03-02", "date_to": "2026-03-02"}, MON, MON),  # dates alone mean custom
        ({"period": "custom", "date_from": "2025-03-05", "date_to": "2026-03-05"}, date(2025, 3, 5), WED + timedelta(days=1)),
    ],
)  # fmt: skip
def test_periods(params: dict[str, str], first: date, last: date) -> None:
    form = ReportFilterForm(params, today=WED)
    assert form.is_valid(), form.errors
    scope = form.scope()
    assert (scope.first_day, scope.last_day) == (first, last)
    assert scope.start == msk(first, 0) and scope.end == msk(last + timedelta(days=1), 0)


def test_default_period_is_30_days() -> None:
    scope = ReportFilterForm(None, today=WED).scope()
    assert (scope.first_day, scope.last_day, scope.line_id) == (WED - timedelta(days=29), WED, None)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"period": "custom", "date_from": "2026-03-04", "date_to": "2026-03-02"}, "The end date is before the start date."),
        ({"period": "custom", "date_from": "2026-03-04"}, "Choose both dates of a custom period."),
        ({"period": "custom"}, "Choose both dates of a custom period."),
        ({"period": "custom", "date_from": "2025-03-04", "date_to": "2026-03-05"}, "A report covers at most 366 days"),
    ],
)  # fmt: skip
def test_period_errors(params: dict[str, str], message: str) -> None:
    form = ReportFilterForm(params, today=WED)
    assert not form.is_valid()
    assert message in " ".join(form.non_field_errors())


def test_bad_values_are_field_errors(data: dict[str, Any]) -> None:
    form = ReportFilterForm(
        {"period": "custom", "date_from": "yesterday", "date_to": "2026-03-04", "line": "999"}
    )
    assert not form.is_valid()
    assert set(form.errors) == {"date_from", "line"}
    assert not ReportFilterForm({"period": "year"}).is_valid()


# --- Pages, permission, CSV -----------------------------------------------------------------------


@pytest.fixture
def supervisor(data: dict[str, Any]) -> Any:
    user = get_user_model().objects.create_user("boss", password="x-pass-123")
    group = Group.objects.create(name="Руководители")
    group.permissions.add(Permission.objects.get(codename="view_reports", content_type__app_label="calls"))
    user.groups.add(group)
    return user


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


CUSTOM = {"period": "custom", "date_from": "2026-03-02", "date_to": "2026-03-04"}


def test_anonymous_goes_to_the_login_page(client: Client) -> None:
    for url in (URL, reverse("calls:report_csv", args=["operators"])):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_without_the_permission_it_is_forbidden(data: dict[str, Any]) -> None:
    operator = logged_in(data["ivanova"])
    assert operator.get(URL).status_code == 403
    for table in ("series", "operators", "lines", "routing"):
        assert operator.get(reverse("calls:report_csv", args=[table])).status_code == 403
    assert reverse("calls:reports") not in operator.get(reverse("calls:log")).content.decode()


def test_supervisor_sees_the_dashboard(supervisor: Any) -> None:
    client = logged_in(supervisor)
    assert reverse("calls:reports") in client.get(reverse("calls:log")).content.decode()  # menu link
    response = client.get(URL, CUSTOM)
    assert response.status_code == 200
    html = response.content.decode()
    assert response.context["data"].summary.missed == 4
    assert 'id="report-data"' in html  # the charts' data, as JSON
    assert "chart.umd.min.js" in html and "js/reports.js" in html
    assert "Мария Иванова" in html and "Алексей Петров" in html
    assert 'class="heat-5">2<' in html  # the busiest weekday × hour cells
    chart = response.context["chart"]
    assert chart["series"]["answered"] == [2, 0, 3]
    assert chart["series"]["missed"] == [2, 0, 2]
    assert chart["hours"]["missed_share"][10] == 25.0
    assert chart["hours"]["missed_share"][3] is None
    assert " style=" not in html and "<script>" not in html  # CSP: no inline styles or scripts


def test_superuser_sees_the_dashboard(admin_user: Any) -> None:
    assert logged_in(admin_user).get(URL).status_code == 200


def test_dashboard_for_one_day_and_one_line(supervisor: Any, data: dict[str, Any]) -> None:
    response = logged_in(supervisor).get(
        URL, {"period": "custom", "date_from": "2026-03-04", "date_to": "2026-03-04", "line": data["l2"].pk}
    )
    assert response.status_code == 200
    chart = response.context["chart"]
    assert chart["series"]["labels"][:2] == ["00:00", "01:00"] and len(chart["series"]["labels"]) == 24
    assert chart["series"]["answered"][10] == 1 and chart["series"]["missed"][13:15] == [1, 1]


def test_dashboard_shows_period_errors(supervisor: Any) -> None:
    response = logged_in(supervisor).get(
        URL, {"period": "custom", "date_from": "2026-03-04", "date_to": "2026-03-01"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "The end date is before the start date." in html
    assert "data" not in response.context and 'id="report-data"' not in html


def read_csv(response: Any) -> list[list[str]]:
    body = response.content.decode("utf-8")
    assert body.startswith("\ufeff")  # BOM: Excel reads the Cyrillic right
    return list(csv.reader(io.StringIO(body[1:])))


def test_csv_operators(supervisor: Any) -> None:
    response = logged_in(supervisor).get(reverse("calls:report_csv", args=["operators"]), CUSTOM)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="report-operators-20260302-20260304.csv"'
    assert read_csv(response) == [
        ["operator", "taken", "offered_missed", "outgoing", "wait_avg_s", "wait_p90_s", "talk_avg_s",
         "talk_total_s", "callbacks_closed", "callback_median_s"],
        ["Алексей Петров", "2", "3", "1", "22.0", "36.4", "155.0", "310", "1", "1800.0"],
        ["Мария Иванова", "3", "2", "1", "30.0", "52.0", "75.0", "300", "2", "101400.0"],
    ]  # fmt: skip


def test_csv_lines_series_routing(supervisor: Any, data: dict[str, Any]) -> None:
    client = logged_in(supervisor)
    lines = read_csv(client.get(reverse("calls:report_csv", args=["lines"]), CUSTOM))
    assert lines == [
        [
            "line",
            "incoming",
            "answered",
            "missed",
            "missed_share_pct",
            "outgoing",
            "wait_avg_s",
            "talk_total_s",
        ],
        ["74951110000", "5", "2", "2", "50.0", "1", "15.0", "270"],
        ["78002220000", "4", "2", "2", "50.0", "1", "50.0", "330"],
        ["78123330000", "0", "0", "0", "", "0", "", "0"],
        ["", "1", "1", "0", "0.0", "0", "4.0", "10"],
    ]
    series = read_csv(client.get(reverse("calls:report_csv", args=["series"]), CUSTOM))
    assert series == [
        ["date", "incoming_answered", "incoming_missed", "outgoing"],
        ["2026-03-02", "2", "2", "0"],
        ["2026-03-03", "0", "0", "0"],
        ["2026-03-04", "3", "2", "2"],
    ]
    one_day = {"period": "custom", "date_from": "2026-03-04", "date_to": "2026-03-04", "line": data["l1"].pk}
    response = client.get(reverse("calls:report_csv", args=["series"]), one_day)
    assert response["Content-Disposition"].endswith(f'-20260304-20260304-line{data["l1"].pk}.csv"')
    hourly = read_csv(response)
    assert hourly[0][0] == "hour" and len(hourly) == 25
    assert hourly[16] == ["2026-03-04T15:00:00+03:00", "0", "0", "1"]  # C6
    routing = read_csv(client.get(reverse("calls:report_csv", args=["routing"]), CUSTOM))
    assert routing == [
        ["decision", "label", "count", "share_pct"],
        ["transfer", "Transferred", "2", "50.0"],
        ["release", "Released", "1", "25.0"],
        ["too_late", "Too late", "1", "25.0"],
        ["failed", "Failed", "0", "0.0"],
    ]


def test_csv_neutralises_formulas(supervisor: Any, data: dict[str, Any]) -> None:
    data["petrov"].first_name, data["petrov"].last_name = '=HYPERLINK("http://x")', ""
    data["petrov"].save()
    rows = read_csv(logged_in(supervisor).get(reverse("calls:report_csv", args=["operators"]), CUSTOM))
    assert '\'=HYPERLINK("http://x")' in [row[0] for row in rows]
    assert [csv_text(v) for v in ["+74951234567", "-12", "@SUM(A1)", "+1+2", "-", "\tx", "Иванова"]] == [
        "+74951234567", "-12", "'@SUM(A1)", "'+1+2", "'-", "'\tx", "Иванова",
    ]  # fmt: skip


def test_csv_refuses_bad_periods_and_unknown_tables(supervisor: Any) -> None:
    client = logged_in(supervisor)
    bad = client.get(
        reverse("calls:report_csv", args=["lines"]), {"period": "custom", "date_from": "2026-03-04"}
    )
    assert bad.status_code == 400
    assert "Choose both dates of a custom period." in bad.content.decode()
    assert client.get("/reports/secrets.csv").status_code == 404


def test_demo_gives_reports_to_supervisors_only(db: Any) -> None:
    from integrations.demo import REPORTS_GROUP, _ensure_users

    _ensure_users()
    users = get_user_model().objects
    assert users.get(username="admin").groups.filter(name=REPORTS_GROUP).exists()
    assert users.get(username="admin").has_perm("calls.view_reports")
    for operator in ("ivanova", "petrov", "sidorova"):
        assert not users.get(username=operator).has_perm("calls.view_reports")


# --- Calls by wrap-up result (issue 16) -------------------------------------------------------------


def test_calls_by_result_match_exact_queries(data: dict[str, Any]) -> None:
    from calls.models import CallResult
    from calls.reports.selectors import result_stats

    calls = data["calls"]
    sale = CallResult.objects.get(name="Продажа")
    complaint = CallResult.objects.get(name="Жалоба")
    retired = CallResult.objects.create(name="Старый", position=1, is_active=False)
    Call.objects.filter(call_key__in=["C1", "C4"]).update(result=sale)
    Call.objects.filter(call_key="C8").update(result=complaint)
    Call.objects.filter(call_key="C6").update(result=retired)
    Call.objects.filter(call_key="C11").update(result=sale)  # before the period: not counted
    rows = {r.name: (r.count, r.share) for r in result_stats(PERIOD)}
    answered = Call.objects.filter(
        started_at__gte=msk(MON, 0), started_at__lt=msk(WED + timedelta(days=1), 0), answered_at__isnull=False
    )
    total = answered.count()
    assert total == 6  # C1 C2 C4 C9 C8 C6
    expected = {
        name: (answered.filter(result__name=name).count(), answered.filter(result__name=name).count() / total)
        for name in ["Продажа", "Консультация", "Жалоба", "Нецелевой", "Перезвонить", "Старый"]
    }
    expected["No result"] = (answered.filter(result__isnull=True).count(), 2 / 6)
    assert rows == expected
    assert rows["Продажа"] == (2, 2 / 6) and rows["No result"] == (2, 2 / 6) and rows["Старый"] == (1, 1 / 6)
    # The order: the results list's, the calls without one last; a line narrows it.
    names = [r.name for r in result_stats(PERIOD)]
    assert names[0] == "Старый" and names[-1] == "No result"
    one_line = {r.name: r.count for r in result_stats(ReportScope(MON, WED, line_id=data["l2"].pk))}
    assert (one_line["Продажа"], one_line["Жалоба"], one_line["No result"]) == (1, 1, 0)
    empty = result_stats(ReportScope(first_day=TUE, last_day=TUE))
    assert {r.share for r in empty} == {None} and {r.count for r in empty} == {0}
    assert "Старый" not in {r.name for r in empty}  # a retired result shows only with calls
    assert calls["C2"].result_id is None


def test_calls_by_result_on_the_dashboard_and_its_csv(data: dict[str, Any], client: Client) -> None:
    from calls.models import CallResult

    boss = get_user_model().objects.create_user("boss", password="x-pass-123")
    boss.user_permissions.add(Permission.objects.get(codename="view_reports"))
    client.force_login(boss)
    Call.objects.filter(call_key="C1").update(result=CallResult.objects.get(name="Продажа"))
    query = {"period": "custom", "date_from": "2026-03-02", "date_to": "2026-03-04"}
    page = client.get(URL, query).content.decode()
    assert 'id="table-results"' in page and "Продажа" in page
    body = client.get("/reports/results.csv", query).content.decode().lstrip("\ufeff")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert (rows[0]["result"], rows[0]["calls"]) == ("Продажа", "1")
    assert rows[-1]["result"] == "No result" and rows[-1]["calls"] == "5"


# --- Rounding and words (the new-user trial) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("share", "page", "csv_cell_text"),
    [
        (2 / 7, "28.6 %", "28.6"),  # 28.571…: was "28.5 %" on the page (truncated)
        (1 / 6, "16.7 %", "16.7"),  # 16.666…: was "16.6 %"
        (0.0125, "1.3 %", "1.3"),  # half up: 1.25 -> 1.3 (the CSV said 1.2)
        (0.25, "25.0 %", "25.0"),
        (1.0, "100.0 %", "100.0"),
    ],
)
def test_percentages_round_half_up_alike_on_the_page_and_in_the_csv(
    share: float, page: str, csv_cell_text: str
) -> None:
    from calls.spreadsheets import COMMA, SEMICOLON, Column, csv_cell
    from calls.templatetags.report_tags import percent

    assert percent(share) == page
    column = Column("share_pct", "percent")
    assert csv_cell(column, share, COMMA) == csv_cell_text
    assert csv_cell(column, share, SEMICOLON) == csv_cell_text.replace(".", ",")


def test_the_chart_rounds_the_missed_share_half_up(supervisor: Any, data: dict[str, Any]) -> None:
    from calls.spreadsheets import percent_of

    assert float(percent_of(2 / 7)) == 28.6 and float(percent_of(1 / 6)) == 16.7
    chart = logged_in(supervisor).get(URL, CUSTOM).context["chart"]
    assert chart["hours"]["missed_share"][10] == 25.0


def test_report_counts_are_labelled_with_plural_words_in_russian(
    supervisor: Any, data: dict[str, Any], settings: Any
) -> None:
    settings.LANGUAGE_CODE = "ru"
    client = logged_in(supervisor)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ru"
    with translation.override("ru"):
        response = client.get(URL, CUSTOM)
    html = response.content.decode()
    for word in ("Входящие", "Отвеченные", "Пропущенные", "Исходящие"):
        assert f"<dt>{word}</dt>" in html  # the summary
        assert f'<th class="num">{word}</th>' in html  # the Lines table (Operators: Исходящие)
    for singular in ("Входящий", "Отвечен", "Пропущен", "Исходящий"):
        assert f"<dt>{singular}</dt>" not in html and f'<th class="num">{singular}</th>' not in html
    assert response.context["chart"]["strings"]["outgoing"] == "Исходящие"

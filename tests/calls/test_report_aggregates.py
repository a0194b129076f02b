"""The reports' aggregates (calls/reports/selectors, aggregates) against the figures worked out by hand on
the small fixed data set of tests/calls/report_handworked.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import NotSupportedError, connection
from django.db.models import F

from calls.models import Call, Direction
from calls.reports.aggregates import ANALYTIC_SETTINGS, PercentileCont, analytic, percentile_by_group
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
from tests.calls.report_handworked import MON, PERIOD, TUE, WED, msk

# The assertions read the English source strings, on Moscow days (tests/calls/conftest.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english_in_moscow")]


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

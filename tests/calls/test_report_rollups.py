"""The report rollups give the same figures as the exact queries over the call tables: generated data on
Moscow's day, hour and weekday edges, rollups holding the whole period or part of it; how beat keeps them
current; the rebuild command."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from calls.models import Call, Direction
from calls.models.reports import (
    CALLBACK_BUCKETS,
    WAIT_BUCKETS,
    CallDayRollup,
    CallHourRollup,
    ReportRollupState,
)
from calls.reports.rollups import rollups_rebuild, rollups_refresh
from calls.reports.selectors import (
    ReportScope,
    calls_series,
    closed_callbacks,
    incoming_heatmap,
    line_stats,
    missed_share_by_hour,
    operator_stats,
    report_summary,
    routing_outcomes,
)
from calls.reports.selectors.measures import histogram_percentile
from calls.reports.selectors.plan import rollup_plan
from calls.reports.selectors.scope import ANSWERED_IN, WAIT_PERCENTILE, scope_calls
from integrations.models import Integration
from tests.calls.report_data import DAYS, FIRST_DAY, MSK, generate

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _moscow(settings: Any) -> Iterator[None]:
    settings.TIME_ZONE = "Europe/Moscow"
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def generated(integration: Integration) -> dict[str, Any]:
    return generate(integration)


def msk(day: date, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=MSK)


LAST_DAY = FIRST_DAY + timedelta(days=DAYS - 1)
SUNDAY = date(2026, 3, 8)


def scopes(lines: list[Any]) -> list[ReportScope]:
    return [
        ReportScope(FIRST_DAY, LAST_DAY),
        ReportScope(FIRST_DAY - timedelta(days=2), LAST_DAY + timedelta(days=2)),  # beyond the data
        ReportScope(FIRST_DAY, LAST_DAY, line_id=lines[0].pk),
        ReportScope(SUNDAY, SUNDAY),  # one day: per hour
        ReportScope(SUNDAY, SUNDAY + timedelta(days=1), line_id=lines[1].pk),  # Sunday → Monday
        ReportScope(FIRST_DAY + timedelta(days=3), FIRST_DAY + timedelta(days=3)),
    ]


def _width(value: float, edges: tuple[int, ...]) -> int:
    index = max(i for i, edge in enumerate(edges) if edge <= value)
    return edges[index + 1] - edges[index] if index + 1 < len(edges) else 0


def tolerance(values: list[float], fraction: float, edges: tuple[int, ...] = WAIT_BUCKETS) -> float:
    """How far a percentile read from the histogram may be from the exact one: the bucket widths of the
    two values it lies between (each is placed within its bucket)."""
    if not values:
        return 0.0
    values = sorted(values)
    position = (len(values) - 1) * fraction
    low, high = values[math.floor(position)], values[math.ceil(position)]
    return float(max(_width(low, edges), _width(high, edges)))


def figures(scope: ReportScope) -> dict[str, Any]:
    summary = report_summary(scope)
    operators = operator_stats(scope)
    return {
        "summary": dataclasses.replace(summary, wait_p90=None),
        "wait_p90": summary.wait_p90,
        "series": calls_series(scope),
        "heatmap": incoming_heatmap(scope),
        "hours": missed_share_by_hour(scope),
        "operators": [dataclasses.replace(r, wait_p90=None, callback_median=None) for r in operators],
        "operators_p90": {r.user_id: r.wait_p90 for r in operators},
        "callback_median": {r.user_id: r.callback_median for r in operators},
        "lines": line_stats(scope),
        "routing": routing_outcomes(scope),
    }


def assert_same(rolled: dict[str, Any], exact: dict[str, Any], scope: ReportScope) -> None:
    for name in ("summary", "series", "heatmap", "hours", "operators", "lines", "routing"):
        assert (
            rolled[name] == pytest.approx(exact[name]) if name == "summary" else rolled[name] == exact[name]
        ), name
    answered = scope_calls(scope).filter(ANSWERED_IN, wait_seconds__isnull=False)
    waits = list(answered.values_list("wait_seconds", flat=True))
    assert rolled["wait_p90"] == pytest.approx(exact["wait_p90"], abs=tolerance(waits, WAIT_PERCENTILE))
    assert rolled["operators_p90"].keys() == exact["operators_p90"].keys()
    for user_id, value in exact["operators_p90"].items():
        mine = list(answered.filter(operator_id=user_id).values_list("wait_seconds", flat=True))
        assert rolled["operators_p90"][user_id] == pytest.approx(value, abs=tolerance(mine, WAIT_PERCENTILE))
    assert rolled["callback_median"].keys() == exact["callback_median"].keys()
    for user_id, value in exact["callback_median"].items():
        delays = [
            (closed - first).total_seconds()
            for closed, first in closed_callbacks(scope)
            .filter(closed_by_id=user_id)
            .values_list("closed_at", "first_missed_at")
        ]
        bound = tolerance(delays, 0.5, CALLBACK_BUCKETS)
        assert rolled["callback_median"][user_id] == pytest.approx(value, abs=bound)


def exact_figures(scope: ReportScope) -> dict[str, Any]:
    state = list(ReportRollupState.objects.all())
    ReportRollupState.objects.all().delete()
    try:
        assert rollup_plan(scope).days is None
        return figures(scope)
    finally:
        for row in state:
            row.save()


def test_rollups_give_the_exact_figures(generated: dict[str, Any]) -> None:
    rollups_rebuild(now=msk(LAST_DAY + timedelta(days=5), 9, 30))
    assert CallDayRollup.objects.exists() and CallHourRollup.objects.exists()
    for scope in scopes(generated["lines"]):
        plan = rollup_plan(scope)
        if scope.first_day >= FIRST_DAY - timedelta(days=1):  # the day of the first call, or later
            assert plan.exact_days == [] and plan.exact_hours == []  # wholly from the rollups
        else:
            assert plan.exact_days == [(scope.start, msk(FIRST_DAY - timedelta(days=1)))]
        assert_same(figures(scope), exact_figures(scope), scope)


@pytest.mark.parametrize("cut_hour", [0, 1, 13, 23])
def test_rollups_and_calls_combine_inside_a_day(generated: dict[str, Any], cut_hour: int) -> None:
    """The rollups end in the middle of the period (today): the rest is counted from the calls."""
    now = msk(SUNDAY, cut_hour, 40)
    rollups_rebuild(now=now)
    for scope in scopes(generated["lines"]):
        assert_same(figures(scope), exact_figures(scope), scope)
    # The cut: this hour, or earlier when a call of the last hours is still live (the data has some).
    until = ReportRollupState.objects.get().built_until
    assert msk(SUNDAY, cut_hour) - timedelta(hours=24) <= until <= msk(SUNDAY, cut_hour)
    plan = rollup_plan(ReportScope(FIRST_DAY, LAST_DAY))
    assert plan.hours == (msk(FIRST_DAY), until)
    assert plan.days == (FIRST_DAY, until.astimezone(MSK).date() - timedelta(days=1))
    assert plan.exact_days == [(msk(until.astimezone(MSK).date()), msk(LAST_DAY + timedelta(days=1)))]


def test_histogram_percentile_interpolates_like_percentile_cont() -> None:
    histogram = [0] * len(WAIT_BUCKETS)
    assert histogram_percentile(histogram, 0.9, WAIT_BUCKETS) is None
    for wait in (4, 1, 7, 9):  # one-second buckets: exact
        histogram[wait] += 1
    assert histogram_percentile(histogram, 0.5, WAIT_BUCKETS) == pytest.approx(5.5)  # [1, 4, 7, 9]
    assert histogram_percentile(histogram, 0.9, WAIT_BUCKETS) == pytest.approx(8.4)
    assert histogram_percentile(histogram, 0.0, WAIT_BUCKETS) == 1.0
    assert histogram_percentile(histogram, 1.0, WAIT_BUCKETS) == 9.0


# --- Keeping them current -------------------------------------------------------------------------


def test_refresh_builds_everything_first_then_the_recent_hours(generated: dict[str, Any]) -> None:
    Call.objects.filter(status__in=Call.LIVE_STATUSES).update(status=Call.Status.FINISHED)  # no live calls
    now = msk(LAST_DAY + timedelta(days=1), 10, 5)
    rollups_refresh(now=now)
    state = ReportRollupState.objects.get()
    assert state.built_from == msk(FIRST_DAY - timedelta(days=1))  # the first call's local midnight
    assert state.built_until == msk(LAST_DAY + timedelta(days=1), 10)
    scope = ReportScope(FIRST_DAY, LAST_DAY)
    before = figures(scope)

    # A call of yesterday changes (a late notification): the next run, within the recent hours, sees it.
    call = Call.objects.filter(started_at__gte=msk(LAST_DAY, 12), direction=Direction.INCOMING).first()
    assert call is not None
    Call.objects.filter(pk=call.pk).update(direction=Direction.OUTGOING)
    assert figures(scope) == before  # not rebuilt yet: the rollups still hold the old figures
    rollups_refresh(now=now + timedelta(minutes=5))
    assert_same(figures(scope), exact_figures(scope), scope)

    # A change older than the recent hours is final for beat: the command rebuilds it.
    old = Call.objects.filter(started_at__lt=msk(FIRST_DAY + timedelta(days=1)), direction=Direction.INCOMING)
    Call.objects.filter(pk=old.first().pk).update(direction=Direction.OUTGOING)  # type: ignore[union-attr]
    rollups_refresh(now=now + timedelta(minutes=10))
    assert figures(scope) != exact_figures(scope)
    call_command("reports_rollup", "--from", str(FIRST_DAY - timedelta(days=1)), "--to", str(FIRST_DAY))
    assert_same(figures(scope), exact_figures(scope), scope)


def test_a_live_call_holds_the_cut_back_and_shows_at_once(integration: Integration) -> None:
    now = msk(SUNDAY, 15, 20)
    live = Call.objects.create(
        integration=integration,
        call_key="live",
        direction=Direction.INCOMING,
        status=Call.Status.RINGING,
        started_at=msk(SUNDAY, 14, 58),
    )
    rollups_refresh(now=now)
    assert ReportRollupState.objects.get().built_until == msk(SUNDAY, 14)
    today = ReportScope(SUNDAY, SUNDAY)
    assert report_summary(today).incoming == 1
    # Answered a minute ago: the page shows it before any rebuild.
    Call.objects.filter(pk=live.pk).update(
        status=Call.Status.IN_PROGRESS, answered_at=now - timedelta(minutes=1), wait_seconds=20
    )
    assert report_summary(today).answered == 1
    # A new call of the last minutes too.
    Call.objects.create(
        integration=integration, call_key="new", direction=Direction.OUTGOING, status=Call.Status.RINGING,
        started_at=now - timedelta(minutes=2),
    )  # fmt: skip
    assert report_summary(today).outgoing == 1
    assert calls_series(today)[15].outgoing == 1  # 15:00 Moscow time


def test_a_new_time_zone_rebuilds_everything(generated: dict[str, Any], settings: Any) -> None:
    rollups_refresh(now=msk(LAST_DAY + timedelta(days=1), 3))
    settings.TIME_ZONE = "Asia/Yekaterinburg"  # the day rollups hold Moscow days: not read any more
    scope = ReportScope(FIRST_DAY, LAST_DAY)
    assert rollup_plan(scope).days is None
    rollups_refresh(now=msk(LAST_DAY + timedelta(days=1), 3))
    assert ReportRollupState.objects.get().time_zone == "Asia/Yekaterinburg"
    assert rollup_plan(scope).days is not None
    assert_same(figures(scope), exact_figures(scope), scope)


def test_a_restricted_set_of_calls_is_counted_from_the_calls(generated: dict[str, Any]) -> None:
    rollups_rebuild(now=msk(LAST_DAY + timedelta(days=2)))
    mine = Call.objects.filter(operator=generated["operators"][0])
    scope = ReportScope(FIRST_DAY, LAST_DAY, calls=mine)
    assert rollup_plan(scope).days is None
    summary = report_summary(scope)
    assert (
        summary.incoming
        == mine.filter(
            direction=Direction.INCOMING, started_at__gte=scope.start, started_at__lt=scope.end
        ).count()
    )
    assert summary.missed == 0  # missed calls have no operator


def test_the_command_checks_its_days(generated: dict[str, Any]) -> None:
    with pytest.raises(CommandError):
        call_command("reports_rollup", "--from", "2026-03-10", "--to", "2026-03-01")
    with pytest.raises(CommandError):
        call_command("reports_rollup", "--from", "yesterday")
    call_command("reports_rollup")
    state = ReportRollupState.objects.get()
    assert state.built_from == msk(FIRST_DAY - timedelta(days=1))


def test_the_hand_worked_data_set_gives_its_figures_from_the_rollups(data: dict[str, Any]) -> None:
    """tests/calls/report_handworked.py's data set (worked out by hand), read from the rollups."""
    rollups_rebuild(now=msk(date(2026, 3, 12)))
    mon, wed = date(2026, 3, 2), date(2026, 3, 4)
    for scope in (
        ReportScope(mon, wed),
        ReportScope(wed, wed),
        ReportScope(mon, wed, line_id=data["l1"].pk),
        ReportScope(mon, wed, line_id=data["l2"].pk),
    ):
        assert rollup_plan(scope).exact_days == []
        assert_same(figures(scope), exact_figures(scope), scope)
    summary = report_summary(ReportScope(mon, wed))
    assert (summary.incoming, summary.answered, summary.missed, summary.outgoing) == (10, 5, 4, 2)
    assert summary.talk_total == 610 and summary.wait_avg == pytest.approx(134 / 5)
    assert summary.wait_p90 == pytest.approx(52.0, abs=10)  # exact: 52.0; 40 and 60 s in 5 and 10 s buckets


def test_beat_runs_the_refresh(generated: dict[str, Any], settings: Any) -> None:
    from calls.tasks import refresh_report_rollups

    entry = settings.CELERY_BEAT_SCHEDULE["report-rollups"]
    assert entry["task"] == refresh_report_rollups.name
    assert entry["schedule"] == settings.REPORTS_ROLLUP_EVERY_SECONDS
    assert refresh_report_rollups.delay().get() > 0  # eager in the tests: hour rows written
    assert ReportRollupState.objects.get().time_zone == "Europe/Moscow"

"""The reports' period form (calls/reports/forms.py): the named periods, custom dates and their errors."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from calls.reports.forms import ReportFilterForm
from tests.calls.report_handworked import MON, WED, msk

# The assertions read the English source strings, on Moscow days (tests/calls/conftest.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english_in_moscow")]


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

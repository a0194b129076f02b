"""The reports' CSV downloads (/reports/<table>.csv): every table's rows on the hand-worked data set
(tests/calls/report_handworked.py), formulas neutralised, bad periods and unknown tables refused."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.urls import reverse

from calls.reports.exports import csv_text
from tests.calls.report_handworked import CUSTOM, logged_in

# The assertions read the English source strings, on Moscow days (tests/calls/conftest.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english_in_moscow")]


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

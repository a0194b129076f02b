"""The reports dashboard (/reports/): who may see it, what it shows for a period and a line, its rounding
and its words, on the hand-worked data set (tests/calls/report_handworked.py)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import translation

from calls.models import Call
from tests.calls.report_handworked import CUSTOM, URL, logged_in

# The assertions read the English source strings, on Moscow days (tests/calls/conftest.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english_in_moscow")]


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


def test_demo_gives_reports_to_supervisors_only(db: Any) -> None:
    from integrations.demo import REPORTS_GROUP, _ensure_users

    _ensure_users()
    users = get_user_model().objects
    assert users.get(username="admin").groups.filter(name=REPORTS_GROUP).exists()
    assert users.get(username="admin").has_perm("calls.view_reports")
    for operator in ("ivanova", "petrov", "sidorova"):
        assert not users.get(username=operator).has_perm("calls.view_reports")


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

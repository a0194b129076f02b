"""Exports: the call log and the report tables as CSV (comma or semicolon, BOM) and XLSX (types, frozen
header, widths), and the regression tests of issue 18's probe: no text cell runs as a formula."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from calls.models import Call, CallResult, Direction
from calls.spreadsheets import is_dangerous, neutralise
from contacts.models import Contact
from integrations.models import ExternalNumber, Integration, Workplace

pytestmark = pytest.mark.django_db

MSK = ZoneInfo("Europe/Moscow")
# The probe's payloads (issue 18, item 1) and the class they stand for: = + - @ tab CR first, also
# behind spaces or other whitespace.
PAYLOADS = [
    "@SUM(1)",
    '=HYPERLINK("http://x","y")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "  =1+1",
    "\u00a0@SUM(1)",
    " \t+1+1",
    "\n-1+1",
]
SAFE = ["+74951234567", "74951234567", "-12", "3.5", "Иванова", "ООО «Ромашка»", "", "a=b", "1+1"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_are_dangerous_and_neutralised(payload: str) -> None:
    assert is_dangerous(payload)
    assert neutralise(payload) == "'" + payload


@pytest.mark.parametrize("text", SAFE)
def test_plain_values_stay_as_they_are(text: str) -> None:
    assert not is_dangerous(text)
    assert neutralise(text) == text


@pytest.fixture
def operator(integration: Integration) -> Any:
    user = get_user_model().objects.create_user("ivanova", password="x-pass-123", first_name="Мария")
    Workplace.objects.create(integration=integration, sip_id="wp1", user=user)
    return user


def hostile_call(integration: Integration, operator: Any, n: int, payload: str) -> Call:
    """A call whose every text field (as MTT or a user could set it) is the payload."""
    operator.first_name, operator.last_name = payload, ""
    operator.save()
    started = datetime(2026, 3, 2, 10, n, tzinfo=MSK)
    return Call.objects.create(
        integration=integration,
        call_key=payload + f"#{n}" if n else payload,
        direction=Direction.INCOMING,
        status=Call.Status.ANSWERED,
        client_number="",
        client_number_raw=payload,
        contact=Contact.objects.create(name=payload),
        operator=operator,
        line_number=payload,
        started_at=started,
        answered_at=started + timedelta(seconds=15),
        wait_seconds=15,
        talk_seconds=3725,
        end_reason=payload,
        result=CallResult.objects.get_or_create(name=payload)[0],
        comment=payload,
    )


def same(text: str, payload: str) -> bool:
    """The same text, whitespace aside (openpyxl leaves Excel's escape of a carriage return as it is)."""
    return text.replace("_x000D_", "\r").split() == payload.split()


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


ALL = {"period": "all"}


def csv_rows(response: Any, delimiter: str = ",") -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:]), delimiter=delimiter))


def workbook(response: Any) -> Any:
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))


TEXT_COLUMNS = ["call_id", "client_number", "contact", "operator", "line", "end_reason", "result", "comment"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_call_log_exports_neutralise_every_text_cell(
    integration: Integration, operator: Any, payload: str
) -> None:
    hostile_call(integration, operator, 0, payload)
    client = logged_in(operator)
    for sep, delimiter in (("", ","), ("semicolon", ";")):
        header, row = csv_rows(client.get(reverse("calls:export_csv"), {**ALL, "sep": sep}), delimiter)
        cells = dict(zip(header, row, strict=True))
        for name in TEXT_COLUMNS:
            # (the operator's name is stripped of outer spaces by Django's get_full_name)
            assert cells[name].startswith("'") and same(cells[name][1:], payload), (sep, name)

    sheet = workbook(client.get(reverse("calls:export_xlsx"), ALL)).active
    header = [cell.value for cell in sheet[1]]
    cells = dict(zip(header, sheet[2], strict=True))
    for name in TEXT_COLUMNS:
        cell = cells[name]
        assert cell.data_type == "s", name  # a string, never a formula
        assert same(cell.value, payload), name
        assert cell.quotePrefix, name  # stays text when someone edits the cell


def test_a_plain_number_keeps_its_plus(integration: Integration, operator: Any) -> None:
    call = hostile_call(integration, operator, 0, "Клиент")
    Call.objects.filter(pk=call.pk).update(client_number="+74951234567", line_number="74951110000")
    client = logged_in(operator)
    header, row = csv_rows(client.get(reverse("calls:export_csv"), ALL))
    assert dict(zip(header, row, strict=True))["client_number"] == "+74951234567"
    sheet = workbook(client.get(reverse("calls:export_xlsx"), ALL)).active
    cell = sheet.cell(row=2, column=5)
    assert (cell.value, cell.data_type, cell.quotePrefix) == ("+74951234567", "s", False)


def test_call_log_xlsx_types_and_layout(integration: Integration, operator: Any) -> None:
    hostile_call(integration, operator, 0, "Мария")
    response = logged_in(operator).get(reverse("calls:export_xlsx"), ALL)
    assert response["Content-Disposition"].startswith('attachment; filename="calls-')
    sheet = workbook(response).active
    header = [cell.value for cell in sheet[1]]
    assert header[:13] == [
        "call_id", "started_at", "direction", "status", "client_number", "contact", "operator",
        "workplace", "line", "wait_seconds", "talk_seconds", "end_reason", "recording_url",
    ]  # fmt: skip
    assert sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["A"].width > 20 and sheet.column_dimensions["B"].width > 15
    row = dict(zip(header, [cell.value for cell in sheet[2]], strict=True))
    assert row["started_at"] == datetime(2026, 3, 2, 10, 0)  # Moscow time
    assert row["wait_seconds"] == timedelta(seconds=15)
    assert row["talk_seconds"] == timedelta(hours=1, minutes=2, seconds=5)
    assert row["direction"] == "incoming"


def test_call_log_csv_columns_stay_and_sep_semicolon(integration: Integration, operator: Any) -> None:
    hostile_call(integration, operator, 0, "Мария")
    header, row = csv_rows(
        logged_in(operator).get(reverse("calls:export_csv"), {**ALL, "sep": "semicolon"}), ";"
    )
    assert header == (
        "call_id,started_at,direction,status,client_number,contact,operator,workplace,line,"
        "wait_seconds,talk_seconds,end_reason,recording_url,result,comment"
    ).split(",")
    assert row[1] == "2026-03-02T10:00:00+03:00" and row[9:11] == ["15", "3725"]


def test_exports_need_a_login(client: Client) -> None:
    for url in (reverse("calls:export_xlsx"), reverse("calls:report_xlsx", args=["lines"])):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


# --- Report tables --------------------------------------------------------------------------------


@pytest.fixture
def supervisor(integration: Integration, operator: Any) -> Any:
    user = get_user_model().objects.create_user("boss", password="x-pass-123")
    user.user_permissions.add(Permission.objects.get(codename="view_reports"))
    return user


CUSTOM = {"period": "custom", "date_from": "2026-03-02", "date_to": "2026-03-02"}


@pytest.mark.parametrize("payload", PAYLOADS)
def test_report_exports_neutralise_text_cells(
    integration: Integration, operator: Any, supervisor: Any, payload: str
) -> None:
    hostile_call(integration, operator, 0, payload)
    ExternalNumber.objects.create(integration=integration, number=payload)
    client = logged_in(supervisor)
    for table, column in (("operators", 0), ("lines", 0)):
        body = client.get(reverse("calls:report_csv", args=[table]), CUSTOM).content.decode()
        names = [row[column] for row in csv.reader(io.StringIO(body[1:]))][1:]
        assert any(name.startswith("'") and same(name[1:], payload) for name in names), table
        sheet = openpyxl.load_workbook(
            io.BytesIO(
                b"".join(client.get(reverse("calls:report_xlsx", args=[table]), CUSTOM).streaming_content)
            )
        ).active
        cells = [row[column] for row in sheet.iter_rows(min_row=2)]
        assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
        assert any(cell.quotePrefix and same(cell.value, payload) for cell in cells), table


def test_report_xlsx_types_and_semicolon_csv(
    integration: Integration, operator: Any, supervisor: Any
) -> None:
    hostile_call(integration, operator, 0, "Мария")
    client = logged_in(supervisor)
    response = client.get(reverse("calls:report_xlsx", args=["operators"]), CUSTOM)
    assert response["Content-Disposition"] == 'attachment; filename="report-operators-20260302-20260302.xlsx"'
    sheet = workbook(response).active
    assert sheet.freeze_panes == "A2"
    header = [cell.value for cell in sheet[1]]
    row = dict(zip(header, [cell.value for cell in sheet[2]], strict=True))
    assert row["operator"] == "Мария" and row["taken"] == 1
    assert row["wait_avg_s"] == timedelta(seconds=15) and row["talk_total_s"] == timedelta(seconds=3725)

    lines = workbook(client.get(reverse("calls:report_xlsx", args=["lines"]), CUSTOM)).active
    header = [cell.value for cell in lines[1]]
    missed_share = lines.cell(row=2, column=header.index("missed_share_pct") + 1)  # the row of no line
    assert missed_share.value == 0.0 and missed_share.number_format == "0.0%"

    series = workbook(client.get(reverse("calls:report_xlsx", args=["series"]), CUSTOM)).active
    assert series.cell(row=12, column=1).value == datetime(2026, 3, 2, 10, 0)  # hour 10:00, Moscow time

    body = client.get(reverse("calls:report_csv", args=["operators"]), {**CUSTOM, "sep": "semicolon"}).content
    rows = list(csv.reader(io.StringIO(body.decode()[1:]), delimiter=";"))
    assert rows[1][:5] == ["Мария", "1", "0", "0", "15,0"]  # decimal comma for Excel in Russian


def test_report_xlsx_needs_the_permission(operator: Any) -> None:
    assert logged_in(operator).get(reverse("calls:report_xlsx", args=["lines"])).status_code == 403
    supervisor = get_user_model().objects.create_superuser("root", "r@example.com", "x-pass-123")
    assert logged_in(supervisor).get("/reports/nothing.xlsx").status_code == 404


def test_the_contact_column_is_what_the_contact_page_calls_it(
    integration: Integration, operator: Any
) -> None:
    from contacts.services import contact_create

    named = hostile_call(integration, operator, 0, "Мария")
    nameless = hostile_call(integration, operator, 1, "Мария")
    nameless.contact = contact_create(name="", numbers=["89219462761"])
    nameless.save()
    bare = hostile_call(integration, operator, 2, "Мария")
    Contact.objects.filter(pk=bare.contact_id).update(name="")
    header, *rows = csv_rows(logged_in(operator).get(reverse("calls:export_csv"), ALL))
    contacts = {row[0]: row[header.index("contact")] for row in rows}
    assert contacts["Мария"] == str(named.contact) == "Мария"
    # A number with spaces would start a formula: neutralised like any text (a plain +7… would not be).
    assert (
        contacts["Мария#1"] == "'" + str(Contact.objects.get(pk=nameless.contact_id)) == "'+7 921 946-27-61"
    )
    assert contacts["Мария#2"] == str(Contact.objects.get(pk=bare.contact_id))  # "Contact #…", translated


@pytest.mark.parametrize(
    "params",
    [
        {"date_from": "2026-02-30"},
        {"date_from": "0001-01-01"},
        {"q": "a" * 101},
        {"q": "a\x00b"},
        {"operator": "abc"},
        {"status": "bogus"},
        {"line": "999999"},
        {"date_from": "2026-12-31", "date_to": "2026-01-01"},
    ],
)
@pytest.mark.parametrize("export", ["calls:export_csv", "calls:export_xlsx"])
def test_an_invalid_filter_is_a_400_in_words_and_no_file(
    integration: Integration, operator: Any, params: dict[str, str], export: str
) -> None:
    # The probe's: the export dropped every filter and gave the whole default 30 days.
    hostile_call(integration, operator, 0, "ok")
    client = logged_in(operator)
    query = {"direction": "incoming", "period": "all"}
    assert client.get(reverse(export), query).status_code == 200
    response = client.get(reverse(export), {**query, **params})
    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert "Content-Disposition" not in response
    text = response.content.decode()
    assert text and "ok" not in text.split()


def test_an_invalid_filters_message_names_the_field(operator: Any) -> None:
    response = logged_in(operator).get(
        reverse("calls:export_csv"), {"date_from": "2026-02-30", "q": "a" * 101}
    )
    assert response.status_code == 400
    text = response.content.decode()
    assert "С: Введите правильную дату." in text
    assert "Номер или имя: Убедитесь" in text

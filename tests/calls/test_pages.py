from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from calls.models import Call
from calls.views import CSV_COLUMNS
from integrations.applier import applier_drain
from integrations.models import NotificationEvent
from tests.calls import payloads as p

pytestmark = pytest.mark.django_db

Notify = Callable[[dict[str, Any]], Any]


@pytest.fixture
def calls(notify: Notify, directory: dict[str, Any]) -> dict[str, Call]:
    for body in p.incoming_answered(base="answered", client="+79219462761", talk=42):
        notify(body)
    for body in p.incoming_missed(base="missed", client="+79031234567"):
        notify(body)
    for body in p.outgoing(answered=False, call_id="out-1@127.0.0.1"):
        notify(body)
    Call.objects.update(started_at=Call.objects.get(call_key="answered").started_at)  # inside "all time"
    return {c.call_key: c for c in Call.objects.all()}


@pytest.fixture
def operator(client: Client, directory: dict[str, Any]) -> Any:
    client.force_login(directory["ivanova"])
    return directory["ivanova"]


def rows(response: Any) -> list[str]:
    return [c.call_key for c in response.context["calls"]]


def test_call_log_needs_login(client: Client) -> None:
    response = client.get(reverse("calls:log"))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert client.get(reverse("calls:export_csv")).status_code == 302


def test_call_log_lists_newest_first_and_marks_missed(
    client: Client, operator: Any, calls: dict[str, Call]
) -> None:
    response = client.get(reverse("calls:log"), {"period": "all"})
    assert response.status_code == 200
    assert len(rows(response)) == 3
    html = response.content.decode()
    assert html.count('class="status-missed missed"') == 1
    assert html.count('class="status-not_answered missed"') == 1
    assert "Иванова" in html  # the operator of the answered call
    assert reverse("contacts:detail", args=[calls["answered"].contact_id]) in html


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"direction": "outgoing"}, {"out-1@127.0.0.1"}),
        ({"status": "missed"}, {"missed"}),
        ({"q": "89219462761"}, {"answered", "out-1@127.0.0.1"}),
        ({"q": "+7 903 123-45-67"}, {"missed"}),
        ({"q": "4567"}, {"missed"}),
        ({"q": "+7 903 123-45-67 доб. 12"}, {"missed"}),
        ({"q": "+7 903 123-45-67 ext. 12"}, {"missed"}),
        ({"q": "+7 903 123-45-67 #12"}, {"missed"}),
        ({"q": "８ ９０３ １２３-４５-６７"}, {"missed"}),
    ],
)
def test_call_log_filters(
    client: Client, operator: Any, calls: dict[str, Call], params: dict[str, str], expected: set[str]
) -> None:
    response = client.get(reverse("calls:log"), {"period": "all", **params})
    assert set(rows(response)) == expected


def test_call_log_filters_by_operator_and_line(
    client: Client, operator: Any, calls: dict[str, Call], directory: dict[str, Any]
) -> None:
    by_operator = client.get(reverse("calls:log"), {"period": "all", "operator": directory["ivanova"].pk})
    assert set(rows(by_operator)) == {"answered"}
    by_line = client.get(reverse("calls:log"), {"period": "all", "line": directory["line_8800"].pk})
    assert set(rows(by_line)) == {"out-1@127.0.0.1"}


def test_call_log_search_by_contact_name(client: Client, operator: Any, calls: dict[str, Call]) -> None:
    contact = calls["missed"].contact
    contact.name = "Ромашка ООО"
    contact.save()
    response = client.get(reverse("calls:log"), {"period": "all", "q": "ромашка"})
    assert set(rows(response)) == {"missed"}


def test_period_filter_excludes_old_calls(client: Client, operator: Any, calls: dict[str, Call]) -> None:
    # The fixtures' calls happened in 2020.
    assert rows(client.get(reverse("calls:log"), {"period": "7d"})) == []
    custom = client.get(
        reverse("calls:log"), {"period": "custom", "date_from": "2020-06-01", "date_to": "2020-06-30"}
    )
    assert len(rows(custom)) == 3


def test_bad_filter_is_shown_not_500(client: Client, operator: Any, calls: dict[str, Call]) -> None:
    response = client.get(
        reverse("calls:log"), {"period": "custom", "date_from": "2020-07-01", "date_to": "2020-06-01"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors


# Each makes the filter invalid (the probe's, and one per field): the log then lists nothing and says why,
# instead of dropping every filter and listing the default 30 days.
BAD_FILTERS = [
    ({"date_from": "2026-02-30"}, "date_from", "Введите правильную дату."),
    ({"date_from": "0001-01-01"}, "date_from", "Укажите дату с 1970-01-01 по 2100-12-31."),
    ({"date_to": "9999-12-31"}, "date_to", "Укажите дату с 1970-01-01 по 2100-12-31."),
    ({"q": "a" * 101}, "q", "Убедитесь, что это значение содержит не более 100 символов (сейчас 101)."),
    ({"q": "a\x00b"}, "q", "Данные содержат запрещённый символ: ноль-байт"),
    (
        {"operator": "abc"},
        "operator",
        "Выберите корректный вариант. Вашего варианта нет среди допустимых значений.",
    ),
    (
        {"line": "999999"},
        "line",
        "Выберите корректный вариант. Вашего варианта нет среди допустимых значений.",
    ),
    ({"status": "bogus"}, "status", "Выберите корректный вариант. bogus нет среди допустимых значений."),
    (
        {"direction": "sideways"},
        "direction",
        "Выберите корректный вариант. sideways нет среди допустимых значений.",
    ),
    ({"period": "forever"}, "period", "Выберите корректный вариант. forever нет среди допустимых значений."),
    ({"date_from": "2026-12-31", "date_to": "2026-01-01"}, "__all__", "Дата начала позже даты окончания."),
]


@pytest.mark.parametrize(("params", "field", "message"), BAD_FILTERS)
def test_an_invalid_filter_lists_nothing_and_says_why(
    client: Client, operator: Any, calls: dict[str, Call], params: dict[str, str], field: str, message: str
) -> None:
    query = {"direction": "outgoing", "period": "all"}
    assert rows(client.get(reverse("calls:log"), query)) == ["out-1@127.0.0.1"]
    response = client.get(reverse("calls:log"), {**query, **params})
    assert response.status_code == 200
    assert rows(response) == []
    assert response.context["form"].errors[field] == [message]
    html = response.content.decode()
    assert escape(message) in html
    assert "Звонков нет." in html
    if field != "__all__":  # next to its field, in the field's label
        assert escape(message) in html.split(f'name="{field}"', 1)[1].split("</label>", 1)[0]


def test_pagination(client: Client, operator: Any, notify: Notify, directory: dict[str, Any]) -> None:
    for i in range(55):
        notify(p.incoming_answered(base=f"bulk{i}")[0])
    first = client.get(reverse("calls:log"), {"period": "all"})
    second = client.get(reverse("calls:log"), {"period": "all", "page": 2})
    assert len(rows(first)) == 50
    assert len(rows(second)) == 5
    assert not set(rows(first)) & set(rows(second))


def test_csv_export_columns_and_values(client: Client, operator: Any, calls: dict[str, Call]) -> None:
    response = client.get(reverse("calls:export_csv"), {"period": "all", "direction": "incoming"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    assert body.startswith("\ufeff")  # a UTF-8 BOM: Excel reads the Cyrillic right
    header, *data = list(csv.reader(io.StringIO(body[1:])))
    assert header == CSV_COLUMNS
    assert header == (
        "call_id,started_at,direction,status,client_number,contact,operator,workplace,line,"
        "wait_seconds,talk_seconds,end_reason,recording_url,result,comment"
    ).split(",")
    by_id = {row[0]: dict(zip(header, row, strict=True)) for row in data}
    assert set(by_id) == {"answered", "missed"}
    answered = by_id["answered"]
    assert answered["started_at"] == "2020-06-02T11:18:16+03:00"
    assert answered["direction"] == "incoming"
    assert answered["status"] == "answered"
    assert answered["client_number"] == "+79219462761"
    assert answered["operator"] == "Мария Иванова"
    assert answered["workplace"] == p.WP_INCOMING
    assert answered["line"] == p.LINE
    assert answered["wait_seconds"] == "9"
    assert answered["talk_seconds"] == "42"
    assert answered["end_reason"] == "Answer leg disconnected"
    assert answered["recording_url"] == ""
    assert by_id["missed"]["status"] == "missed"
    assert by_id["missed"]["operator"] == ""


def test_csv_neutralises_formulas(client: Client, operator: Any, calls: dict[str, Call]) -> None:
    contact = calls["missed"].contact
    contact.name = '=HYPERLINK("http://evil")'
    contact.save()
    body = b"".join(client.get(reverse("calls:export_csv"), {"period": "all"}).streaming_content).decode()
    assert "'=HYPERLINK" in body


def test_call_detail_shows_history(client: Client, operator: Any, calls: dict[str, Call]) -> None:
    response = client.get(reverse("calls:detail", args=[calls["answered"].pk]))
    assert response.status_code == 200
    html = response.content.decode()
    # Who and what in words (issue 16): no Call-IDs, no MTT state names; the raw values are in the admin.
    assert "answered~2o" not in html
    assert html.count('<tr><td class="nowrap">') == 6  # six events
    assert "разговор" in html or "conversation" in html


def test_admin_reapply_action(
    client: Client, admin_user: Any, notify: Notify, directory: dict[str, Any]
) -> None:
    notify(p.incoming_answered()[0])
    event = NotificationEvent.objects.get()
    Call.objects.all().delete()  # the effect is lost; the stored notification is not
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:integrations_notificationevent_changelist"),
        {"action": "reapply", "_selected_action": [event.pk]},
        follow=True,
    )
    assert response.status_code == 200
    event.refresh_from_db()
    assert event.status == NotificationEvent.Status.PENDING  # back in the applier's queue
    applier_drain()
    assert Call.objects.count() == 1


@pytest.mark.parametrize("name", ["call", "callleg", "callevent"])
def test_admin_pages_load(client: Client, admin_user: Any, calls: dict[str, Call], name: str) -> None:
    client.force_login(admin_user)
    changelist = client.get(reverse(f"admin:calls_{name}_changelist"), {"q": "answered"})
    assert changelist.status_code == 200
    if name == "call":
        assert client.get(reverse("admin:calls_call_change", args=[calls["answered"].pk])).status_code == 200


def test_contact_page_lists_the_contacts_calls(client: Client, operator: Any, calls: dict[str, Call]) -> None:
    contact = calls["answered"].contact
    assert contact is not None
    response = client.get(reverse("contacts:detail", args=[contact.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert reverse("calls:detail", args=[calls["answered"].pk]) in html
    assert reverse("calls:detail", args=[calls["out-1@127.0.0.1"].pk]) in html  # same number
    assert reverse("calls:detail", args=[calls["missed"].pk]) not in html


def test_merging_contacts_moves_their_calls(calls: dict[str, Call]) -> None:
    from contacts.services import contact_merge

    target, source = calls["answered"].contact, calls["missed"].contact
    assert target is not None and source is not None and target != source
    contact_merge(target=target, source=source)
    assert set(Call.objects.filter(contact=target).values_list("call_key", flat=True)) == set(calls)
    assert not Call.objects.filter(contact=source).exists()


@pytest.mark.parametrize(
    "dates",
    [
        {"date_from": "0001-01-01", "date_to": "0001-01-01"},
        {"date_from": "9999-12-31", "date_to": "9999-12-31"},
        {"date_to": "9999-12-31"},
    ],
)
def test_dates_at_the_ends_of_the_calendar_are_form_errors(
    client: Client, admin_user: Any, dates: dict[str, str]
) -> None:
    # Found by fuzzing: the day's bounds in UTC overflowed (OverflowError, a 500) in the call log, its CSV
    # and the reports.
    client.force_login(admin_user)
    query = {"period": "custom", **dates}
    response = client.get(reverse("calls:log"), query)
    assert response.status_code == 200
    assert response.context["form"].errors
    assert client.get(reverse("calls:export_csv"), query).status_code == 400  # no file of other calls
    assert client.get("/reports/", query).status_code == 200
    assert client.get("/reports/series.csv", query).status_code == 400


def test_the_line_filters_list_numbers_as_the_tables_write_them(
    admin_client: Client, integration: Any
) -> None:
    from integrations.models import ExternalNumber

    ExternalNumber.objects.create(integration=integration, number="74996497803")
    for url in (reverse("calls:log"), reverse("calls:reports")):
        html = admin_client.get(url).content.decode()
        assert ">+7 499 649-78-03</option>" in html, url
        assert ">74996497803<" not in html, url


def test_a_call_with_no_client_number_says_so_with_a_dash(
    client: Client, operator: Any, integration: Any
) -> None:
    """A call known from a lone notification that names no client (a "recorded" one first, say): its client
    is "—" on its page and in the log, as every other unknown fact, not a blank."""
    from django.utils import timezone

    from calls.models import Direction

    call = Call.objects.create(
        integration=integration, call_key="lonely", direction=Direction.UNKNOWN, started_at=timezone.now()
    )
    detail = client.get(reverse("calls:detail", args=[call.pk])).content.decode()
    assert '<dd><span class="phone" data-e164="">—</span></dd>' in detail
    log = client.get(reverse("calls:log") + "?period=all").content.decode()
    assert '<span class="phone" data-e164="">—</span>' in log

"""The days and moments people may give (calls/dates.py), and the wrap-up's follow-up time at the ends of
the calendar: a form error in words on the call's page and the card, never an OverflowError (a 500)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from calls.dates import validate_day, validate_moment
from calls.models import Call, FollowUpTask
from calls.wrapup import call_wrap_up
from tests.personas import World

MINUS_5 = timezone(timedelta(hours=-5))
PLUS_5 = timezone(timedelta(hours=5))
# What the probe sent (year 1 and year 9999, which overflow on the way to or from UTC) and the class:
# just outside the range, in any zone.
BAD_MOMENTS = [
    "0001-01-01T00:00:00",
    "0001-01-01T00:00",
    "0001-01-01",
    "9999-12-31T23:59",
    "9999-12-31T23:59:59",
    "1969-12-31T23:59",
    "2101-01-01T00:00",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "2100-12-31T22:00:00-05:00",  # 2101-01-01 06:00 in Moscow
]
# A follow-up's time must also not have passed (tests/calls/test_follow_up_rules.py): the range's end only.
GOOD_MOMENTS = ["2100-12-31T23:59", "2100-12-31T15:59:00-05:00", "2099-03-02T10:00:00+05:00"]


@pytest.mark.parametrize(
    "value",
    [
        date(1, 1, 1),
        date(9999, 12, 31),
        date(1969, 12, 31),
        date(2101, 1, 1),
        datetime(1, 1, 1),
        datetime(9999, 12, 31, 23, 59),
        datetime(1, 1, 1, tzinfo=PLUS_5),
        datetime(9999, 12, 31, 23, 59, tzinfo=MINUS_5),
        datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
        datetime(1969, 12, 31, 20, 59, tzinfo=UTC),  # 1969-12-31 23:59 in Moscow
    ],
)
def test_out_of_range_is_a_validation_error_not_an_overflow(value: date) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_day(value)
    assert caught.value.code == "date_out_of_range"


@pytest.mark.parametrize(
    "value",
    [
        date(1970, 1, 1),
        date(2100, 12, 31),
        datetime(1969, 12, 31, 21, 30, tzinfo=UTC),  # 1970-01-01 00:30 in Moscow
        datetime(2100, 12, 31, 23, 59),
        datetime(2026, 3, 2, 10, tzinfo=MINUS_5),
    ],
)
def test_the_range_itself_is_accepted(value: date) -> None:
    validate_day(value)
    if isinstance(value, datetime):
        validate_moment(value)


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("moment", BAD_MOMENTS)
def test_a_follow_up_at_the_ends_of_the_calendar_is_a_field_error(world: World, moment: str) -> None:
    client = _client(world.users["operator"])
    url = f"/calls/{world.own_call.pk}/wrap-up/"
    data = {"comment": "x", "follow_up_at": moment, "follow_up_note": "n"}
    card = client.post(url, data, HTTP_ACCEPT="application/json")
    assert card.status_code == 400
    assert card.json()["errors"] == {"follow_up_at": ["Укажите дату с 1970-01-01 по 2100-12-31."]}
    page = client.post(url, data)
    assert page.status_code == 400
    assert "Укажите дату с 1970-01-01 по 2100-12-31." in page.content.decode()
    assert Call.objects.get(pk=world.own_call.pk).wrapped_up_at is None
    assert not FollowUpTask.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("moment", GOOD_MOMENTS)
def test_a_follow_up_inside_the_range_is_saved(world: World, moment: str) -> None:
    client = _client(world.users["operator"])
    data = {"comment": "x", "follow_up_at": moment, "follow_up_note": "n"}
    answer = client.post(f"/calls/{world.own_call.pk}/wrap-up/", data, HTTP_ACCEPT="application/json")
    assert answer.status_code == 200, answer.content
    assert FollowUpTask.objects.get().note == "n"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "due", [datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59), datetime(1, 1, 1, tzinfo=PLUS_5)]
)
def test_the_service_refuses_a_follow_up_out_of_range(world: World, due: datetime) -> None:
    # Whoever calls the service (a page, the card, the API, a future caller) gets the field's error.
    with pytest.raises(ValidationError) as caught:
        call_wrap_up(
            call=world.own_call,
            user=world.users["operator"],
            result=None,
            comment="x",
            follow_up_at=due,
            follow_up_note="n",
        )
    assert set(caught.value.message_dict) == {"follow_up_at"}
    assert not FollowUpTask.objects.exists()

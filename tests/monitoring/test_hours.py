from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.checks import run_checks

from monitoring.hours import BusinessHours, business_time_between, parse_business_hours

MSK = ZoneInfo("Europe/Moscow")


def at(text: str) -> datetime:
    """A moment in TIME_ZONE (Moscow), e.g. "2025-03-07 17:00" (a Friday)."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=MSK)


@pytest.fixture(autouse=True)
def _moscow(settings: Any) -> None:
    settings.TIME_ZONE = "Europe/Moscow"


def test_parse_forms() -> None:
    assert parse_business_hours("") is None
    assert parse_business_hours("  ") is None
    every_day = parse_business_hours("09:00-18:00")
    assert every_day == BusinessHours(days=frozenset(range(7)), start=time(9), end=time(18))
    weekdays = parse_business_hours("mon-fri 09:00-18:00")
    assert weekdays is not None and weekdays.days == frozenset({0, 1, 2, 3, 4})
    whole_days = parse_business_hours("Mon-Fri")
    assert whole_days == BusinessHours(days=frozenset({0, 1, 2, 3, 4}), start=None, end=None)
    listed = parse_business_hours("sat,sun 10:00-16:00")
    assert listed is not None and listed.days == frozenset({5, 6})
    wrapping = parse_business_hours("fri-mon 22:00-06:00")
    assert wrapping is not None and wrapping.days == frozenset({4, 5, 6, 0})


@pytest.mark.parametrize(
    "value", ["nonsense", "xyz 09:00-18:00", "09:00", "9-18", "09:00-09:00", "mon-funday"]
)
def test_parse_refuses_what_it_does_not_understand(value: str) -> None:
    with pytest.raises(ValueError):
        parse_business_hours(value)


def test_always_counts_every_hour() -> None:
    assert business_time_between(at("2025-03-07 17:00"), at("2025-03-10 10:00"), None) == timedelta(hours=65)
    assert business_time_between(at("2025-03-07 17:00"), at("2025-03-07 16:00"), None) == timedelta(0)


def test_weekend_and_nights_do_not_count() -> None:
    hours = parse_business_hours("mon-fri 09:00-18:00")
    # Friday 17:00 → Monday 10:00: one hour on Friday, one on Monday.
    assert business_time_between(at("2025-03-07 17:00"), at("2025-03-10 10:00"), hours) == timedelta(hours=2)
    # Saturday entirely: nothing.
    assert business_time_between(at("2025-03-08 08:00"), at("2025-03-08 20:00"), hours) == timedelta(0)
    # Inside one day.
    assert business_time_between(at("2025-03-11 08:00"), at("2025-03-11 11:30"), hours) == timedelta(
        hours=2, minutes=30
    )


def test_window_across_midnight_belongs_to_the_day_it_starts() -> None:
    hours = parse_business_hours("fri 22:00-06:00")
    # Friday 23:00 → Saturday 07:00: 23:00-06:00 of Friday's window = 7 h.
    assert business_time_between(at("2025-03-07 23:00"), at("2025-03-08 07:00"), hours) == timedelta(hours=7)
    # Saturday night is not Friday's: nothing.
    assert business_time_between(at("2025-03-08 23:00"), at("2025-03-09 05:00"), hours) == timedelta(0)


def test_very_long_silence_is_bounded() -> None:
    hours = parse_business_hours("09:00-10:00")
    spent = business_time_between(at("2020-01-01 00:00"), at("2025-03-07 12:00"), hours)
    assert spent == timedelta(hours=400)  # LOOKBACK_DAYS windows of one hour


def test_system_check_refuses_a_bad_value(settings: Any) -> None:
    settings.HEALTH_BUSINESS_HOURS = "weekdays 9 to 6"
    errors = [e for e in run_checks() if e.id == "monitoring.E001"]
    assert len(errors) == 1 and "HEALTH_BUSINESS_HOURS" in errors[0].msg
    settings.HEALTH_BUSINESS_HOURS = "mon-fri 09:00-18:00"
    assert not [e for e in run_checks() if e.id == "monitoring.E001"]

"""Business hours for the "no notification for N hours" warning (HEALTH_BUSINESS_HOURS).

The value is ``HH:MM-HH:MM`` (every day), ``mon-fri HH:MM-HH:MM`` (those days), ``mon-fri`` (those whole
days) or ``sat,sun 10:00-16:00``; days are English three-letter names, ranges with ``-``, lists with
``,``. Times are in ``TIME_ZONE``; ``22:00-06:00`` spans midnight and belongs to the day it starts on.
Empty: always (every hour counts).

Silence is measured in business time: the hours of a night or a weekend outside the window do not
count, so opening on Monday morning after a quiet weekend raises nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALL_DAYS = frozenset(range(7))
# Silence longer than this is "very long" anyway: the day-by-day walk stops here.
LOOKBACK_DAYS = 400


@dataclass(frozen=True)
class BusinessHours:
    days: frozenset[int]  # 0 = Monday
    start: time | None  # None with end None: the whole day
    end: time | None

    def windows(self, day: date, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
        """The window starting on ``day`` (UTC), or None if ``day`` is not a business day."""
        if day.weekday() not in self.days:
            return None
        if self.start is None or self.end is None:
            begin, finish = datetime.combine(day, time(0)), datetime.combine(day + timedelta(days=1), time(0))
        else:
            end_day = day if self.end > self.start else day + timedelta(days=1)
            begin, finish = datetime.combine(day, self.start), datetime.combine(end_day, self.end)
        # Aware datetimes sharing one tzinfo subtract as wall clocks: compare in UTC instead.
        return begin.replace(tzinfo=tz).astimezone(UTC), finish.replace(tzinfo=tz).astimezone(UTC)


def _parse_days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in text.split(","):
        part = part.strip().lower()
        if "-" in part:
            first, last = (DAY_NAMES.index(p.strip()) for p in part.split("-", 1))
            span = range(first, last + 1) if first <= last else [*range(first, 7), *range(0, last + 1)]
            days.update(span)
        else:
            days.add(DAY_NAMES.index(part))
    return frozenset(days)


def parse_business_hours(value: str) -> BusinessHours | None:
    """None for an empty value (always). Raises ValueError for anything it does not understand."""
    value = value.strip()
    if not value:
        return None
    days_text, times_text = "", value
    if value[0].isalpha():
        days_text, _, times_text = value.partition(" ")
    try:
        days = _parse_days(days_text) if days_text else ALL_DAYS
    except ValueError:
        raise ValueError(f"unknown day in {value!r} (use mon, tue, wed, thu, fri, sat, sun)") from None
    times_text = times_text.strip()
    if not times_text:
        return BusinessHours(days=days, start=None, end=None)
    try:
        start, end = (time.fromisoformat(part.strip()) for part in times_text.split("-", 1))
    except ValueError:
        raise ValueError(f"{value!r} is not [days] HH:MM-HH:MM") from None
    if start == end:
        raise ValueError(f"{value!r}: the window is empty (start = end); leave the times out for whole days")
    return BusinessHours(days=days, start=start, end=end)


def configured_business_hours() -> BusinessHours | None:
    """HEALTH_BUSINESS_HOURS parsed; the system check refuses a bad value at start-up."""
    return parse_business_hours(settings.HEALTH_BUSINESS_HOURS)


def business_time_between(start: datetime, end: datetime, hours: BusinessHours | None) -> timedelta:
    """How much of [start, end) lies inside business hours (all of it when ``hours`` is None)."""
    if end <= start:
        return timedelta(0)
    if hours is None:
        return end - start
    start = max(start, end - timedelta(days=LOOKBACK_DAYS))
    tz = ZoneInfo(settings.TIME_ZONE)
    total = timedelta(0)
    # From the day before (a window across midnight that began then) to the last day.
    day = timezone.localtime(start, tz).date() - timedelta(days=1)
    last = timezone.localtime(end, tz).date()
    while day <= last:
        window = hours.windows(day, tz)
        if window is not None:
            begin, finish = max(window[0], start), min(window[1], end)
            if finish > begin:
                total += finish - begin
        day += timedelta(days=1)
    return total

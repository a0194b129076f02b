"""The days and moments people may give the CRM: filters (the call log, reports, the API's lists) and
follow-up times (the wrap-up of the pages, the card and the API).

Moments are stored in UTC and shown in TIME_ZONE (Moscow, UTC+3; LMT +2:30 in year 1): a local time near
year 1 or year 9999 overflows Python's calendar on its way to or from UTC (OverflowError, a 500), and a
day's bounds (the next midnight) overflow at 9999-12-31. One range, well inside both ends and wide enough
for any call or task, is checked where the input is parsed, so nothing past it reaches a query or a row.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(2100, 12, 31)

_MESSAGE = _("Enter a date from %(first)s to %(last)s.")


def _out_of_range() -> ValidationError:
    return ValidationError(
        _MESSAGE,
        code="date_out_of_range",
        params={"first": FIRST_DAY.isoformat(), "last": LAST_DAY.isoformat()},
    )


def validate_day(value: date) -> None:
    """A day (or a moment, see validate_moment) from FIRST_DAY to LAST_DAY, else a ValidationError."""
    if isinstance(value, datetime):
        validate_moment(value)
    elif not FIRST_DAY <= value <= LAST_DAY:
        raise _out_of_range()


def validate_moment(value: datetime) -> None:
    """A moment within FIRST_DAY to LAST_DAY in TIME_ZONE, whatever zone it was given in.

    Compared, not converted: comparing aware datetimes of different zones never overflows, while
    astimezone() would for the very values this refuses.
    """
    first = datetime.combine(FIRST_DAY, time.min)
    end = datetime.combine(LAST_DAY + timedelta(days=1), time.min)
    if timezone.is_aware(value):
        first, end = timezone.make_aware(first), timezone.make_aware(end)
    if not first <= value < end:
        raise _out_of_range()


def local_minute(moment: datetime | None = None) -> str:
    """A moment (now when None) as the CRM's messages write it to people: `04.12.2026 19:54`, in TIME_ZONE."""
    return timezone.localtime(moment).strftime("%d.%m.%Y %H:%M")

"""Reading the values of a call notification's fields (guide §10.1): its tables give no type or format,
and the examples write strings (``duration`` a number). What else a field may hold — a number for a
string, another form of a time — is read here, once, for ``callinfo.parse_call_info``; what names
nothing is "" or None."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any


def text_of(value: Any) -> str:
    """A field kept as text: a JSON number as Python writes it (``7.9e10`` reads ``79000000000.0``: kept as
    received, never made a phone number); null, true, false, an object or a list as "" (a JSON boolean names
    nothing: Python's "True" was shown as the caller's number and name); cut to 255 characters."""
    if value is None or isinstance(value, (bool, dict, list)):
        return ""
    return str(value)[:255]


# A startTime outside these years is a broken clock, treated as missing (the arrival time counts):
# near year 1 or 9999 the conversion to UTC and the duration arithmetic overflow, and a clock reset to
# 1970 (the Unix epoch's zero) or 2000 dated the call decades back, where it headed no list and no report
# found it. 2001 is also where a Unix time is first read as one (``_EPOCH_SECONDS``). A startTime within
# these years but after the notification's arrival is checked against it where both are known
# (calls.legs.occurred_at).
START_TIME_YEARS = range(2001, 2101)


# What a startTime can be besides the guide's "YYYY-MM-DD HH:MM:SS" (§10.1 says only "Время операции"):
# ISO 8601 with a "T", fractions of a second or a zone ("+03:00", "+0300", "Z"), the Russian
# "DD.MM.YYYY HH:MM:SS", or a Unix time in seconds or milliseconds, as a JSON number or as digits.
_EPOCH = re.compile(r"\d{9,14}(?:\.\d+)?")
_RUSSIAN_DATE_TIME = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M")
# Unix seconds from 2001-09 on; 10^12 and more is milliseconds (seconds that large are past the year
# 33000). A number between the two is neither: treated as missing.
_EPOCH_SECONDS = (10**9, 10**11)
_EPOCH_MILLISECONDS = (10**12, 10**14)


def _epoch(number: float) -> datetime | None:
    if _EPOCH_MILLISECONDS[0] <= number < _EPOCH_MILLISECONDS[1]:
        number /= 1000
    elif not _EPOCH_SECONDS[0] <= number < _EPOCH_SECONDS[1]:
        return None
    return datetime.fromtimestamp(number, tz=UTC)


def start_time(value: Any) -> datetime | None:
    """The moment a startTime names: naive for the PBX's local time (no zone written), aware when the value
    names its zone or is a Unix time; None for what is no time, or a broken clock (START_TIME_YEARS)."""
    moment: datetime | None = None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        # An int is compared as it is: a huge one would overflow a float.
        moment = _epoch(value) if isinstance(value, int) or math.isfinite(value) else None
    elif isinstance(value, str):
        text = value.strip()
        if _EPOCH.fullmatch(text):
            moment = _epoch(float(text))
        elif ":" in text:  # a date alone is no time of a call
            moment = _date_time(text)
    return moment if moment is not None and moment.year in START_TIME_YEARS else None


def _date_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    for pattern in _RUSSIAN_DATE_TIME:
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    return None


# A duration (§10.1 "Длительность вызова": seconds, a JSON number in the examples) written as text: "4",
# "4.0", or a clock "0:04" / "00:00:04".
_DECIMAL = re.compile(r"\+?\d{1,12}(?:\.\d{0,12})?")
_CLOCK = re.compile(r"(?:(\d{1,4}):(?=[0-5]\d:))?(\d{1,4}):([0-5]\d)")


def seconds(value: Any) -> int | None:
    """Whole seconds of a duration, a JSON number or text; None for what is none, or out of range."""
    if isinstance(value, bool):
        return None
    number: float | None = None
    if isinstance(value, int | float):
        number = value if isinstance(value, int) or math.isfinite(value) else None
    elif isinstance(value, str):
        text = value.strip()
        clock = _CLOCK.fullmatch(text)
        if _DECIMAL.fullmatch(text):
            number = float(text) if "." in text else int(text)
        elif clock is not None:
            hours, minutes, seconds = (int(part or 0) for part in clock.groups())
            number = hours * 3600 + minutes * 60 + seconds
    if number is None:
        return None
    return int(number) if 0 <= number < 10**7 else None


def identifier(value: Any) -> str:
    """A ``call.id`` or ``call.tag`` as text: a string as sent, byte for byte; a JSON integer (the guide's own
    tag ``"133609"`` is all digits, §10.3.2) as its digits; anything else "" (none)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def reason_code(value: Any) -> str:
    """reasonCode (a Q.850 cause, §10.1) as text; a whole JSON float (16.0) as its digits."""
    if isinstance(value, float) and value.is_integer():
        return text_of(int(value))
    return text_of(value)

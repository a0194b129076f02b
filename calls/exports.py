"""The call log as a table (``/calls/export.csv`` and ``/calls/export.xlsx``): its columns and rows.

The CSV's columns are a contract with whoever reads the file: keep their names and order, add new
columns at the END.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from .models import Call
from .recordings.selectors import recording_url_for
from .spreadsheets import Column

COLUMNS = [
    Column("call_id", width=28),
    Column("started_at", "datetime", width=20),
    Column("direction", width=10),
    Column("status", width=13),
    Column("client_number", width=16),
    Column("contact", width=28),
    Column("operator", width=24),
    Column("workplace", width=18),
    Column("line", width=14),
    Column("wait_seconds", "seconds", width=10),
    Column("talk_seconds", "seconds", width=10),
    Column("end_reason", width=28),
    Column("recording_url", width=40),
]
CSV_COLUMNS = [column.name for column in COLUMNS]


def _recording_url(call: Call) -> str:
    # The in-app player URL of the call's first stored recording (login and permission required).
    url = recording_url_for(call)
    return f"{settings.SITE_URL}{url}" if url else ""


def call_rows(calls: QuerySet[Call]) -> Iterator[list[Any]]:
    """One row per call, values typed for ``calls.spreadsheets`` (text cells are neutralised there)."""
    for call in calls.iterator(chunk_size=1000):
        operator = call.operator.get_full_name() or call.operator.get_username() if call.operator else ""
        yield [
            call.call_key,
            call.started_at,
            call.direction,
            call.status,
            call.client_number or call.client_number_raw,
            str(call.contact) if call.contact else "",
            operator,
            call.workplace.sip_id if call.workplace else "",
            call.line_number,
            call.wait_seconds,
            call.talk_seconds,
            call.end_reason,
            _recording_url(call),
        ]

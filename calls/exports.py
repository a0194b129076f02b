"""The call log as a table (``/calls/export.csv`` and ``/calls/export.xlsx``): its columns and rows.

The CSV's columns are a contract with whoever reads the file: keep their names and order, add new
columns at the END.

The rows are read as plain values (``values_list``, a server-side cursor), the contact's first number
and the call's first stored recording as subqueries of the same query: no model instances, no prefetch,
no query per row — 150,000 calls take seconds, not minutes (bench/exports.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db.models import OuterRef, QuerySet, Subquery
from django.urls import reverse
from django.utils.translation import gettext as _

from contacts.models import PhoneNumber
from contacts.phones import format_for_people

from .models import Call, Recording
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
    # Issue 16's wrap-up (added at the end: the contract above).
    Column("result", width=18),
    Column("comment", width=40),
]
CSV_COLUMNS = [column.name for column in COLUMNS]

_FIELDS = (
    "call_key", "started_at", "direction", "status", "client_number", "client_number_raw",
    "contact_id", "contact__name", "x_number_e164", "x_number_raw",
    "operator_id", "operator__first_name", "operator__last_name", "operator__username",
    "workplace__sip_id", "line_number", "wait_seconds", "talk_seconds", "end_reason", "x_recording",
    "result__name", "comment",
)  # fmt: skip


def _contact_label(contact_id: int | None, name: str, e164: str | None, raw: str | None) -> str:
    """What ``str(contact)`` shows: the name, else its first number, else "Contact #id"."""
    if contact_id is None:
        return ""
    if name:
        return name
    if e164 or raw:
        return format_for_people(e164) if e164 else raw or ""
    return _("Contact #%(id)s") % {"id": contact_id}


def call_rows(calls: QuerySet[Call]) -> Iterator[list[Any]]:
    """One row per call of ``calls`` (in its order), values typed for ``calls.spreadsheets`` (text
    cells are neutralised there)."""
    first_number = PhoneNumber.objects.filter(contact_id=OuterRef("contact_id")).order_by("id")
    # The in-app player of the call's first stored recording (login and permission required).
    first_recording = Recording.objects.filter(
        call_id=OuterRef("pk"), status=Recording.Status.STORED
    ).order_by("created_at", "pk")
    rows = (
        calls.select_related(None)
        .prefetch_related(None)
        .annotate(
            x_number_e164=Subquery(first_number.values("e164")[:1]),
            x_number_raw=Subquery(first_number.values("raw")[:1]),
            x_recording=Subquery(first_recording.values("pk")[:1]),
        )
        .values_list(*_FIELDS)
    )
    player = reverse("calls:recording", args=[0]).removesuffix("0/")
    for row in rows.iterator(chunk_size=2000):
        values = dict(zip(_FIELDS, row, strict=True))
        operator = ""
        if values["operator_id"] is not None:
            full = f"{values['operator__first_name']} {values['operator__last_name']}".strip()
            operator = full or values["operator__username"]
        recording = values["x_recording"]
        yield [
            values["call_key"],
            values["started_at"],
            values["direction"],
            values["status"],
            values["client_number"] or values["client_number_raw"],
            _contact_label(
                values["contact_id"], values["contact__name"], values["x_number_e164"], values["x_number_raw"]
            ),
            operator,
            values["workplace__sip_id"] or "",
            values["line_number"],
            values["wait_seconds"],
            values["talk_seconds"],
            values["end_reason"],
            f"{settings.SITE_URL}{player}{recording}/" if recording else "",
            values["result__name"] or "",
            values["comment"],
        ]

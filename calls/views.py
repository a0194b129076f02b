from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from .forms import CallFilterForm
from .models import Call
from .recordings.selectors import recording_url_for
from .selectors import call_list
from .visibility import call_visible_to, calls_visible_to

CSV_COLUMNS = [
    "call_id",
    "started_at",
    "direction",
    "status",
    "client_number",
    "contact",
    "operator",
    "workplace",
    "line",
    "wait_seconds",
    "talk_seconds",
    "end_reason",
    "recording_url",
]


def _form(request: HttpRequest) -> CallFilterForm:
    return CallFilterForm(request.GET or None)


@login_required
def call_log(request: HttpRequest) -> HttpResponse:
    form = _form(request)
    calls = calls_visible_to(request.user, call_list(filters=form.filters()))
    page = Paginator(calls, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "calls/call_log.html",
        {"form": form, "page": page, "calls": page.object_list, "query": query.urlencode()},
    )


@login_required
def call_detail(request: HttpRequest, pk: int) -> HttpResponse:
    call = get_object_or_404(
        Call.objects.select_related("contact", "operator", "workplace", "line", "initiated_by"), pk=pk
    )
    if not call_visible_to(request.user, call):
        raise Http404("No such call")  # not 403: whether the call exists is not theirs to know either
    legs = call.legs.select_related("workplace").order_by("started_at", "leg_id")
    events = call.events.select_related("leg").order_by("occurred_at", "pk")
    return render(request, "calls/call_detail.html", {"call": call, "legs": legs, "events": events})


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # Spreadsheet formula injection: free text starting with = @ etc. is neutralised (numbers are
    # written by us and stay E.164).
    if text[:1] in ("=", "@", "\t", "\r") or (text[:1] in ("+", "-") and not text[1:].isdigit()):
        return "'" + text
    return text


def _rows(calls: Any) -> Iterator[list[str]]:
    yield CSV_COLUMNS
    for call in calls.iterator(chunk_size=1000):
        started = timezone.localtime(call.started_at).isoformat() if call.started_at else ""
        operator = call.operator.get_full_name() or call.operator.get_username() if call.operator else ""
        yield [
            call.call_key,
            started,
            call.direction,
            call.status,
            call.client_number or call.client_number_raw,
            _cell(str(call.contact) if call.contact else ""),
            _cell(operator),
            call.workplace.sip_id if call.workplace else "",
            call.line_number,
            "" if call.wait_seconds is None else str(call.wait_seconds),
            "" if call.talk_seconds is None else str(call.talk_seconds),
            _cell(call.end_reason),
            _recording_url(call),
        ]


def _recording_url(call: Call) -> str:
    # The in-app player URL of the call's first stored recording (login and permission required).
    url = recording_url_for(call)
    return f"{settings.SITE_URL}{url}" if url else ""


@login_required
def call_export_csv(request: HttpRequest) -> StreamingHttpResponse:
    calls = calls_visible_to(request.user, call_list(filters=_form(request).filters()))
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in _rows(calls)), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="calls-{stamp}.csv"'
    return response

"""The reports dashboard and its CSV downloads: logged-in users with ``calls.view_reports`` only
(anonymous → the login page, without the permission → 403)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import formats, timezone
from django.utils.dates import WEEKDAYS_ABBR
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_safe

from ..spreadsheets import csv_lines, dialect_of, percent_of, xlsx_response
from ..visibility import calls_restricted_for
from .exports import TABLES, report_filename, report_table
from .forms import ReportFilterForm
from .selectors import Dashboard, ReportScope, report_dashboard

PERMISSION = "calls.view_reports"
HEAT_LEVELS = 5


def _form(request: HttpRequest) -> ReportFilterForm:
    return ReportFilterForm(request.GET or None)


def _bucket_label(bucket: Any, scope: ReportScope) -> str:
    if isinstance(bucket, datetime):
        return timezone.localtime(bucket, scope.tz).strftime("%H:00")
    return formats.date_format(bucket, "SHORT_DATE_FORMAT")


def _chart_data(dashboard: Dashboard) -> dict[str, Any]:
    """What static/js/reports.js draws (numbers from the selectors, texts in the request's language)."""
    scope = dashboard.scope
    return {
        "series": {
            "labels": [_bucket_label(p.bucket, scope) for p in dashboard.series],
            "answered": [p.answered for p in dashboard.series],
            "missed": [p.missed for p in dashboard.series],
            "outgoing": [p.outgoing for p in dashboard.series],
        },
        "hours": {
            "labels": [f"{h.hour:02d}" for h in dashboard.hours],
            "missed_share": [
                None if h.missed_share is None else float(percent_of(h.missed_share)) for h in dashboard.hours
            ],
        },
        "strings": {
            "answered": _("Incoming answered"),
            "missed": _("Incoming missed"),
            "outgoing": pgettext("count of calls", "Outgoing"),
            "calls": _("Calls"),
            "missed_share": _("Missed share, %"),
            "hour": _("Hour of the day"),
            "bucket": _("Hour") if scope.hourly else _("Day"),
        },
    }


def _heat_rows(grid: list[list[int]]) -> list[dict[str, Any]]:
    """The heatmap table: each cell's count and a CSS level 0–5 relative to the busiest cell."""
    peak = max((value for row in grid for value in row), default=0)
    rows = []
    for weekday, values in enumerate(grid):
        cells = [
            {"value": value, "level": math.ceil(HEAT_LEVELS * value / peak) if peak and value else 0}
            for value in values
        ]
        rows.append({"label": WEEKDAYS_ABBR[weekday], "cells": cells})
    return rows


@require_safe
@login_required
@permission_required(PERMISSION, raise_exception=True)
def dashboard(request: HttpRequest) -> HttpResponse:
    form = _form(request)
    context: dict[str, Any] = {"form": form, "query": request.GET.urlencode(), "tables": list(TABLES)}
    if not form.is_bound or form.is_valid():
        data = report_dashboard(form.scope(calls_restricted_for(request.user)))
        context.update(
            data=data,
            line=form.cleaned_data.get("line") if form.is_bound else None,
            chart=_chart_data(data),
            heat_rows=_heat_rows(data.heatmap),
            hours=range(24),
        )
    return render(request, "calls/reports/dashboard.html", context)


def _table_scope(request: HttpRequest, table: str) -> ReportScope | HttpResponse:
    if table not in TABLES:
        raise Http404("no such report table")
    form = _form(request)
    if form.is_bound and not form.is_valid():
        errors = [str(e) for errors in form.errors.values() for e in errors]
        return HttpResponseBadRequest(" ".join(errors), content_type="text/plain; charset=utf-8")
    return form.scope(calls_restricted_for(request.user))


@require_safe
@login_required
@permission_required(PERMISSION, raise_exception=True)
def table_csv(request: HttpRequest, table: str) -> HttpResponse:
    """One table as CSV: comma-separated, or ``?sep=semicolon`` (decimal commas) for Excel."""
    scope = _table_scope(request, table)
    if isinstance(scope, HttpResponse):
        return scope
    columns, rows = report_table(table, scope)
    response = HttpResponse(
        "".join(csv_lines(columns, rows, dialect_of(request))), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{report_filename(table, scope, "csv")}"'
    return response


@require_safe
@login_required
@permission_required(PERMISSION, raise_exception=True)
def table_xlsx(request: HttpRequest, table: str) -> HttpResponseBase:
    """One table as a formatted XLSX workbook."""
    scope = _table_scope(request, table)
    if isinstance(scope, HttpResponse):
        return scope
    columns, rows = report_table(table, scope)
    return xlsx_response(columns, rows, filename=report_filename(table, scope, "xlsx"), sheet=table)

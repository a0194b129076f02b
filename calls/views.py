from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from .exports import COLUMNS, CSV_COLUMNS, call_rows
from .forms import CallFilterForm
from .models import Call
from .selectors import call_list
from .spreadsheets import csv_response, dialect_of, xlsx_response
from .views_wrapup import call_detail_page
from .visibility import call_visible_to, calls_visible_to

__all__ = ["CSV_COLUMNS", "call_detail", "call_export_csv", "call_export_xlsx", "call_log"]


def _form(request: HttpRequest) -> CallFilterForm:
    return CallFilterForm(request.GET or None, user=request.user)


@login_required
def call_log(request: HttpRequest) -> HttpResponse:
    form = _form(request)
    # While the filter is wrong the log lists nothing (the form says why), rather than unfiltered rows.
    calls = (
        Call.objects.none()
        if form.errors
        else calls_visible_to(request.user, call_list(filters=form.filters()))
    )
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
        Call.objects.select_related(
            "contact", "operator", "workplace", "line", "initiated_by", "result", "wrapped_up_by"
        ),
        pk=pk,
    )
    if not call_visible_to(request.user, call):
        raise Http404("No such call")  # not 403: whether the call exists is not theirs to know either
    return call_detail_page(request, call)


def _export_calls(request: HttpRequest) -> QuerySet[Call] | HttpResponseBadRequest:
    """The calls to export, or a 400 with the filter's errors in words (no file: a file of other calls than
    the ones asked for would pass for the right one)."""
    form = _form(request)
    if form.errors:
        return HttpResponseBadRequest(form.error_text(), content_type="text/plain; charset=utf-8")
    return calls_visible_to(request.user, call_list(filters=form.filters()))


def _export_name(extension: str) -> str:
    return f"calls-{timezone.localtime():%Y%m%d-%H%M}.{extension}"


@login_required
def call_export_csv(request: HttpRequest) -> HttpResponseBase:
    """The filtered call log as CSV (``?sep=semicolon`` for Excel with Russian settings)."""
    calls = _export_calls(request)
    if isinstance(calls, HttpResponseBase):
        return calls
    return csv_response(COLUMNS, call_rows(calls), filename=_export_name("csv"), dialect=dialect_of(request))


@login_required
def call_export_xlsx(request: HttpRequest) -> HttpResponseBase:
    """The filtered call log as a formatted XLSX workbook."""
    calls = _export_calls(request)
    if isinstance(calls, HttpResponseBase):
        return calls
    return xlsx_response(COLUMNS, call_rows(calls), filename=_export_name("xlsx"), sheet="calls")

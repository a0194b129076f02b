"""The project's middleware: the access log, the translated 503 while the database is away, the language, the
405 page."""

from __future__ import annotations

import logging
import sqlite3
import sys
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from .clientip import client_ip
from .logs import access_logger, mask_secrets

logger = logging.getLogger(__name__)

GetResponse = Callable[[HttpRequest], HttpResponse]

RETRY_AFTER_SECONDS = 15
# PostgreSQL SQLSTATEs that mean "the server cannot serve us now" rather than "this query failed":
# class 08 (connection exception), shutting down (57P01 admin, 57P02 crash), starting up (57P03), too many
# connections (53300).
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
_MARK = "_mttcrm_database_unavailable"


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be reached now (not: a query that failed on its own)."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__ or exc
    if isinstance(cause, sqlite3.OperationalError):
        # "database is locked" is a busy file, not a missing one.
        return "locked" not in str(cause)
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate:
        return str(sqlstate).startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES
    # psycopg errors without a SQLSTATE come from the client side: connection refused or lost, or no
    # pooled connection within DB_POOL_TIMEOUT.
    return True


def describe(exc: BaseException) -> str:
    """A short, secret-free description for a log line (connection errors can name host and user)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200] if text else ''}"


class AccessLogMiddleware:
    """One ``mttcrm.access`` line per request: the client (behind TRUSTED_PROXIES, the real one), method,
    path with the notify URL's token masked, status, size and time. Through ``logging``, so LOG_FORMAT and
    the masking apply; the server's own access log stays off."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.monotonic()
        response = self.get_response(request)
        duration_ms = round((time.monotonic() - started) * 1000, 1)
        client = client_ip(request) or "-"
        path = mask_secrets(request.path)
        size = len(response.content) if not response.streaming else None
        access_logger.info(
            '%s "%s %s" %s %s %.1fms',
            client,
            request.method,
            path,
            response.status_code,
            "-" if size is None else size,
            duration_ms,
            extra={
                "client": client,
                "method": request.method,
                "path": path,
                "status": response.status_code,
                "bytes": size,
                "duration_ms": duration_ms,
            },
        )
        return response


def _language(request: HttpRequest) -> str:
    chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, "")
    return chosen if chosen in {code for code, _name in settings.LANGUAGES} else settings.LANGUAGE_CODE


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return request.path.endswith(".json") or ("application/json" in accept and "text/html" not in accept)


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """The translated 503 (an HTML page, or JSON for scripts), made without touching the database."""
    with translation.override(_language(request)):
        message = _("The CRM cannot reach its database right now. Please try again in a minute.")
        response: HttpResponse
        if _wants_json(request):
            response = JsonResponse({"ok": False, "error": message}, status=503)
        else:
            # No RequestContext: context processors (the user, the callbacks badge) would query.
            page = render_to_string(
                "503.html",
                {"message": message, "retry_after": RETRY_AFTER_SECONDS, "lang": translation.get_language()},
            )
            response = HttpResponse(page, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def _mark_request(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """got_request_exception: an outage raised in a middleware further in (the session save) becomes a 500
    before it reaches us; remember it on the request, so the 500 can be answered as the 503 it is."""
    # Sent while the exception is being handled (django.core.handlers.exception): it is the current one.
    exc = sys.exc_info()[1]
    if request is not None and exc is not None and database_unavailable(exc):
        setattr(request, _MARK, True)


got_request_exception.connect(_mark_request, dispatch_uid="mttcrm.middleware.mark_request")


class DatabaseUnavailableMiddleware:
    """Pages while the database cannot be reached: the translated 503 with Retry-After, never a traceback.

    Sits before SessionMiddleware so that a failing session save (further in) is covered too. The notify
    URL answers an outage itself (it spools notifications, integrations/spool.py).
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if getattr(request, _MARK, False) and response.status_code >= 500:
            return unavailable_response(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not database_unavailable(exception):
            return None
        logger.warning(
            "%s %s: database unavailable (%s), answered 503",
            request.method,
            mask_secrets(request.path),
            describe(exception),
        )
        return unavailable_response(request)


class DefaultLanguageMiddleware:
    """Russian unless the user chose otherwise.

    Django's LocaleMiddleware follows the browser's Accept-Language, so a Russian team on browsers set to
    English would get English. Here the language is the one chosen with the switch in the header (Django's
    language cookie), else LANGUAGE_CODE.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.supported = {code for code, _name in settings.LANGUAGES}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        language = _language(request)
        translation.activate(language)
        request.LANGUAGE_CODE = language  # type: ignore[attr-defined]
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", language)
        return response


class MethodNotAllowedPageMiddleware:
    """A form's target (click-to-call, merge, take a callback, a wrap-up) opened as a page, from a bookmark or
    the address bar: Django's ``require_POST`` answers 405 with no body, and the browser shows its own error
    page, in English. Here the site's page says so in words, in the layout; the status and ``Allow`` stay. The
    API and the notify URL keep their answers (JSON; a machine's)."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code == 405
            and not response.content
            and request.method in ("GET", "HEAD")
            and not request.path.startswith(("/api/", "/mtt/"))
            and not _wants_json(request)
        ):
            page = render(request, "405.html", status=405)
            if "Allow" in response:
                page["Allow"] = response["Allow"]
            return page
        return response

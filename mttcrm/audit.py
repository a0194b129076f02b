"""The audit trail's wiring (django-auditlog): who acted, from where, and what is never written.

auditlog records the models listed in settings.AUDITLOG_INCLUDE_TRACKING_MODELS; this module adds the
actor and the client's address to every entry made during a request, masks secrets, and writes entries
for changes auditlog cannot see (bulk updates, such as parking set through MTT).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from auditlog.context import set_actor
from auditlog.mixins import AuditlogHistoryAdminMixin
from auditlog.models import LogEntry
from django.conf import settings
from django.contrib.admin.utils import unquote
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse

from .clientip import client_ip

SECRET_MASK = "••••••••"


def hide_secret(value: str) -> str:
    """auditlog's mask callable: nothing of a secret, only whether it is set ("changed" shows as a pair)."""
    return SECRET_MASK if value not in ("", "None") else ""


class AuditActorMiddleware:
    """Entries made while a logged-in user's request runs name that user and the client's address.

    auditlog's own middleware takes the left-most X-Forwarded-For, which any client can write; this one
    uses mttcrm.clientip (TRUSTED_PROXIES). The user stays lazy: it is loaded only when an entry is
    written (a page answered while the database is away, mttcrm/middleware.py, makes no query here). Requests
    without a session cookie (the notify URL, /healthz, /metrics) cannot have a logged-in user and skip
    the context altogether.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or settings.SESSION_COOKIE_NAME not in request.COOKIES:
            return self.get_response(request)
        # auditlog names the actor only when it is a user (an anonymous visitor's entries have none).
        with set_actor(user, remote_addr=client_ip(request)):
            return self.get_response(request)


def audit_change(instance: Model, changes: Mapping[str, tuple[Any, Any]]) -> LogEntry | None:
    """An "update" entry for a change auditlog's signals do not see (a queryset ``update()``).

    ``changes`` maps field names to (old, new); values are written as text, like auditlog's own.
    """
    as_text = {field: [str(old), str(new)] for field, (old, new) in changes.items() if old != new}
    if not as_text:
        return None
    return LogEntry.objects.log_create(instance, action=LogEntry.Action.UPDATE, changes=as_text)


class AuditTrailAdminMixin(AuditlogHistoryAdminMixin):  # type: ignore[misc]
    """auditlog's per-row "View" link (``<id>/auditlog/``), answering 404 for a row the admin user may not
    see (another team's, in the team mode: the admin's querysets are narrowed) or that does not exist.
    auditlog's own view went on with no row and failed rendering it: a 500 instead of "no such row"."""

    def auditlog_history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404("No such row")
        return super().auditlog_history_view(request, object_id, extra_context)  # type: ignore[no-any-return]

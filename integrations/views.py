"""The notify URL: one unguessable URL per integration that MTT knows as the "Redirect URI" (API.md).

GET with code+state completes OAuth in the admin's browser; POST receives notifications.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from mttcrm import metrics
from mttcrm.clientip import client_ip

from .access import notify_source_allowed
from .inbox import notification_apply_here, notification_for_applier, notification_receive
from .models import Integration
from .mtt.errors import MttError
from .mtt.notifications import NotificationError, parse_body
from .selectors import integration_for_notification, integration_for_notify_token, notify_tokens_forget
from .services import integration_oauth_complete
from .spool import spool_when_database_down

logger = logging.getLogger(__name__)

OAUTH_SESSION_KEY = "mtt_oauth"


@csrf_exempt  # MTT cannot send a CSRF token; the unguessable URL is the credential.
@require_http_methods(["GET", "POST"])
@spool_when_database_down  # the database down: notifications go to the local spool (integrations/spool.py)
def notify(request: HttpRequest, token: str) -> HttpResponse:
    # Notifications come from MTT's servers (NOTIFY_ALLOWED_NETWORKS); the OAuth callback (GET) comes
    # from the admin's browser, wherever it is. Checked first: a refused sender learns nothing of tokens.
    if request.method == "POST" and not notify_source_allowed(request):
        logger.warning(
            "Notify URL: POST from %s refused (not in NOTIFY_ALLOWED_NETWORKS)", client_ip(request) or "?"
        )
        metrics.notification_rejected("forbidden")
        return JsonResponse({"ok": False, "error": "forbidden"}, status=403)
    if request.method == "POST":
        integration = integration_for_notification(token=token, now=timezone.now())
    else:
        integration = integration_for_notify_token(token=token, now=timezone.now())
    if integration is None:
        metrics.notification_rejected("unknown_token")
        raise Http404
    if request.method == "POST":
        return _receive_notification(request, integration)
    return _oauth_callback(request, integration)


def _bad(integration: Integration, status: int, reason: str) -> JsonResponse:
    metrics.notification_rejected(metrics.rejection_reason(status))
    logger.warning(
        "Integration %s: notification refused (%s): %s",
        integration.pk,
        status,
        reason,
        extra={"integration_id": integration.pk, "status": status},
    )
    return JsonResponse({"ok": False, "error": reason}, status=status)


def _receive_notification(request: HttpRequest, integration: Integration) -> HttpResponse:
    limit = settings.MTT_NOTIFY_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        # Django's request.body would raise on it too (a 500): no body can be read.
        return _bad(integration, 400, "Content-Length is not a number")
    if declared > limit:
        return _bad(integration, 413, f"body larger than {limit} bytes")
    try:
        raw = request.body
    except RequestDataTooBig:
        return _bad(integration, 413, f"body larger than {limit} bytes")
    if len(raw) > limit:
        return _bad(integration, 413, f"body larger than {limit} bytes")
    try:
        envelope = parse_body(raw)
    except NotificationError as exc:
        return _bad(integration, 400, str(exc))
    to_applier = notification_for_applier(integration=integration, envelope=envelope)
    try:
        event, created = notification_receive(
            integration=integration, envelope=envelope, wake_applier=to_applier
        )
    except IntegrityError:
        # The integration was deleted (by another process) while its token was cached here.
        notify_tokens_forget(integration.pk)
        metrics.notification_rejected("unknown_token")
        raise Http404 from None
    metrics.notification_received(duplicate=not created)
    if created and to_applier:
        metrics.notification_dispatched("applier")
    elif created:
        # Applied here once the row is committed (NOTIFY_APPLY_IN=request, or a parked call's trying).
        transaction.on_commit(lambda: notification_apply_here(event))
    return JsonResponse({"ok": True, "id": event.pk, "duplicate": not created})


def _oauth_callback(request: HttpRequest, integration: Integration) -> HttpResponse:
    code = request.GET.get("code", "")
    state = request.GET.get("state", "")
    # The portal may send the admin back with an OAuth error (refused, cancelled) instead of a code.
    provider_error = request.GET.get("error", "")
    pending = request.session.get(OAUTH_SESSION_KEY) or {}
    expected_state = pending.get("state")
    # The state is bound to the admin who pressed Connect, in their session, for this integration.
    if (
        not (code or provider_error)
        or not state
        or not expected_state
        or state != expected_state
        or pending.get("integration_id") != integration.pk
        or not request.user.is_authenticated
        or pending.get("user_id") != request.user.pk
    ):
        logger.warning(
            "Integration %s: OAuth callback refused (state mismatch or no pending login)", integration.pk
        )
        return HttpResponse(
            _("This sign-in link is not valid (state mismatch). Start again from the integration page."),
            status=403,
            content_type="text/plain; charset=utf-8",
        )
    del request.session[OAUTH_SESSION_KEY]
    change_url = reverse("admin:integrations_integration_change", args=[integration.pk])
    if provider_error:
        detail = request.GET.get("error_description") or provider_error
        messages.error(request, _("MTT did not grant access: %(error)s") % {"error": detail[:200]})
        return HttpResponseRedirect(change_url)
    try:
        integration_oauth_complete(integration=integration, code=code)
    except MttError as exc:
        messages.error(request, _("Connecting to MTT failed: %(error)s") % {"error": exc.user_message})
        return HttpResponseRedirect(change_url)
    messages.success(request, _("Connected to MTT. The directory sync has started."))
    return HttpResponseRedirect(change_url)

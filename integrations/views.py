"""The notify URL: one unguessable URL per integration that MTT knows as the "Redirect URI" (API.md).

GET with code+state completes OAuth in the admin's browser; POST receives notifications.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, IntegrityError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from monitoring import metrics
from mttcrm.clientip import client_ip
from mttcrm.middleware import database_unavailable, describe

from .access import notify_source_allowed
from .inbox import Stored, notification_store
from .models import Integration, NotificationEvent
from .mtt.errors import MttError
from .mtt.notifications import Envelope, parse_notifications
from .selectors import integration_for_notify_token, notify_target_for_token
from .services import integration_oauth_complete
from .spool import TOKEN_SHAPE, SpoolFull, notification_spool
from .tasks import sync_integration

logger = logging.getLogger(__name__)

OAUTH_SESSION_KEY = "mtt_oauth"
# The spool full or not writable: MTT may try again after this many seconds.
SPOOL_FULL_RETRY_AFTER = 30


@csrf_exempt  # MTT cannot send a CSRF token; the unguessable URL is the credential.
@require_http_methods(["GET", "POST"])
def notify(request: HttpRequest, token: str) -> HttpResponse:
    if request.method == "GET":
        integration = integration_for_notify_token(token=token, now=timezone.now())
        if integration is None:
            raise Http404
        return _oauth_callback(request, integration)
    return _receive(request, token)


def _refuse(status: int, reason: str, *, integration_id: int | None = None) -> JsonResponse:
    metrics.notification_rejected(metrics.rejection_reason(status))
    logger.warning(
        "Integration %s: notification refused (%s): %s",
        integration_id or "?",
        status,
        reason,
        extra={"integration_id": integration_id, "status": status},
    )
    response = JsonResponse({"ok": False, "error": reason}, status=status)
    if status == 503:
        response["Retry-After"] = str(SPOOL_FULL_RETRY_AFTER)
    return response


# How much of a chunked body is read at a time.
_READ_CHUNK = 64 * 1024


def _read_body(request: HttpRequest, integration_id: int | None = None) -> bytes | JsonResponse:
    """The body, or the refusal of a body we cannot take (400, 413); ``integration_id`` for the log line."""
    limit = settings.MTT_NOTIFY_MAX_BYTES
    length = request.META.get("CONTENT_LENGTH")
    if not length and request.META.get("wsgi.input_terminated"):
        return _read_terminated(request, limit, integration_id)
    try:
        declared = int(length or 0)
    except ValueError:
        # Django's request.body would raise on it too (a 500): no body can be read.
        return _refuse(400, "Content-Length is not a number", integration_id=integration_id)
    if declared > limit:
        return _refuse(413, f"body larger than {limit} bytes", integration_id=integration_id)
    try:
        raw = request.body
    except RequestDataTooBig:
        return _refuse(413, f"body larger than {limit} bytes", integration_id=integration_id)
    if len(raw) > limit:
        return _refuse(413, f"body larger than {limit} bytes", integration_id=integration_id)
    return raw


def _read_terminated(request: HttpRequest, limit: int, integration_id: int | None) -> bytes | JsonResponse:
    """A body sent without Content-Length (``Transfer-Encoding: chunked``): Django's WSGI request reads such
    a body as empty (PEP 3333 allows no read past CONTENT_LENGTH), but a server that sets
    ``wsgi.input_terminated`` (gunicorn, which we run; mod_wsgi) promises that ``wsgi.input`` ends where the
    body ends, so it is read to its end here, up to ``limit`` bytes."""
    stream = request.META["wsgi.input"]
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = stream.read(_READ_CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            return _refuse(413, f"body larger than {limit} bytes", integration_id=integration_id)
        parts.append(chunk)
    return b"".join(parts)


def _receive(request: HttpRequest, token: str) -> HttpResponse:
    """A notification: checked, stored (integrations/inbox.py, the one way in), answered. The applier
    process applies it a moment later (integrations/applier.py)."""
    # Notifications come from MTT's servers (NOTIFY_ALLOWED_NETWORKS). Checked first: a refused sender
    # learns nothing of tokens.
    if not notify_source_allowed(request):
        logger.warning(
            "Notify URL: POST from %s refused (not in NOTIFY_ALLOWED_NETWORKS)", client_ip(request) or "?"
        )
        metrics.notification_rejected("forbidden")
        return JsonResponse({"ok": False, "error": "forbidden"}, status=403)
    received_at = timezone.now()
    try:
        target = notify_target_for_token(token=token, now=received_at)
    except DatabaseError as exc:
        if not database_unavailable(exc):
            raise
        return _spool(request, token, received_at, why=describe(exc))
    if target is None:
        metrics.notification_rejected("unknown_token")
        raise Http404
    raw = _read_body(request, target.integration_id)
    if isinstance(raw, JsonResponse):
        return raw
    # Whatever the body is, it is kept: what we cannot use is stored as ignored, with the reason.
    envelopes = parse_notifications(raw)
    stored: list[Stored] = []
    try:
        for envelope in envelopes:
            stored.append(
                notification_store(
                    integration_id=target.integration_id, envelope=envelope, received_at=received_at
                )
            )
    except IntegrityError:
        # The integration was deleted (by another process) after we read it.
        metrics.notification_rejected("unknown_token")
        raise Http404 from None
    except DatabaseError as exc:
        if not database_unavailable(exc):
            raise
        # Stored or not, the spool keeps it: the replay stores a copy once (its fingerprint). The body is
        # passed on: a chunked one cannot be read twice.
        return _spool(request, token, received_at, why=describe(exc), raw=raw)
    answers = [_answer(one, envelope) for one, envelope in zip(stored, envelopes, strict=True)]
    if len(answers) == 1:
        return JsonResponse({"ok": True, **answers[0]})
    return JsonResponse({"ok": True, "notifications": answers})


def _answer(stored: Stored, envelope: Envelope) -> dict[str, object]:
    """What MTT is told of one stored notification: its row, whether it was a copy, and, when we cannot use
    it, that it is kept as ignored and why."""
    metrics.notification_received(duplicate=not stored.created)
    answer: dict[str, object] = {"id": stored.id, "duplicate": not stored.created}
    if stored.status == NotificationEvent.Status.IGNORED:
        answer["ignored"] = True
        answer["reason"] = envelope.ignored_because
        if stored.created:
            metrics.notification_applied(NotificationEvent.Status.IGNORED)
    return answer


def _spool(
    request: HttpRequest, token: str, received_at: datetime, *, why: str, raw: bytes | None = None
) -> HttpResponse:
    """The database is away: keep the notification on disk (integrations/spool.py) after the checks that
    need no database, and answer as if stored. ``raw``: the body, when it was read already."""
    if not TOKEN_SHAPE.fullmatch(token):
        metrics.notification_rejected("unknown_token")
        raise Http404
    if raw is None:
        read = _read_body(request)
        if isinstance(read, JsonResponse):
            return read
        raw = read
    try:
        path = notification_spool(token=token, body=raw, received_at=received_at)
    except (SpoolFull, OSError) as exc:
        logger.error("Notification not spooled (%s): refused with 503", exc)
        return _refuse(503, "temporarily unavailable")
    # Never the token in a log line: the file name says which notification it is.
    logger.warning("Notification spooled (%s): %s, %d bytes", why, path.name, len(raw))
    metrics.notification_received(duplicate=False)
    return JsonResponse({"ok": True, "spooled": True})


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
    sync_integration.delay(integration.pk, reapply_parking=True)
    messages.success(request, _("Connected to MTT. The directory sync has started."))
    return HttpResponseRedirect(change_url)

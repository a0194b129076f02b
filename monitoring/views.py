"""GET /healthz (are the database, the channel layer and the broker there?), /ping (is this process
serving?), /metrics (Prometheus)."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.db.models import Min
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from calls.realtime.push import run_on_push_loop
from integrations.inbox import pending_due
from integrations.spool import spool_usage
from mttcrm.celery import app as celery_app

from . import metrics as app_metrics
from .gauges import DatabaseCollector

logger = logging.getLogger(__name__)

CHECK_TIMEOUT = 3.0


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_broker() -> None:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=int(CHECK_TIMEOUT))


async def _layer_round_trip() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    # A round trip through the layer proves it both accepts and delivers messages.
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "healthz.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "healthz.ping":
        raise RuntimeError("channel layer returned another message")


def _check_channel_layer() -> None:
    run_on_push_loop(_layer_round_trip(), timeout=CHECK_TIMEOUT)


def _timed(name: str, check: Callable[[], Any]) -> dict[str, Any]:
    started = time.monotonic()
    try:
        check()
    except Exception as exc:
        logger.warning("healthz: %s check failed: %s", name, exc)
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


def _inbox() -> dict[str, Any]:
    """The applier's queue (information: a backlog under load is no failure)."""
    waiting = pending_due().aggregate(oldest=Min("received_at"))["oldest"]
    return {
        "oldest_waiting_seconds": round((timezone.now() - waiting).total_seconds(), 1) if waiting else 0,
        "spooled_notifications": spool_usage().files,
    }


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    results = {
        "database": _timed("database", _check_database),
        "channel_layer": _timed("channel_layer", _check_channel_layer),
        "broker": _timed("broker", _check_broker),
    }
    ok = all(r["ok"] for r in results.values())
    body: dict[str, Any] = {"ok": ok, "checks": results}
    if results["database"]["ok"]:
        body["inbox"] = _inbox()
    return JsonResponse(body, status=200 if ok else 503)


@require_safe
def ping(request: HttpRequest) -> HttpResponse:
    """GET /ping: "ok", touching neither the database, nor Redis, nor the session (the container's
    liveness check; bench/notify_cost.py compares the notify URL's cost with it)."""
    return HttpResponse("ok", content_type="text/plain")


def _bearer(request: HttpRequest) -> str:
    scheme, _sep, credentials = (request.headers.get("Authorization") or "").strip().partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


def _token_ok(request: HttpRequest, expected: str) -> bool:
    given = _bearer(request)
    # Constant time: the comparison must not tell how much of a guess was right.
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """GET /metrics (Prometheus), behind METRICS_TOKEN or a staff login; 404 while METRICS_TOKEN is empty."""
    expected = settings.METRICS_TOKEN
    if not expected:
        # Off unless configured: an unset token must not leave the numbers open.
        raise Http404
    user = request.user
    staff = bool(user.is_authenticated and user.is_active and user.is_staff)
    if not (staff or _token_ok(request, expected)):
        if user.is_authenticated and not _bearer(request):
            return HttpResponse(
                _("Metrics are for staff users."), status=403, content_type="text/plain; charset=utf-8"
            )
        response = HttpResponse(
            _("A valid Bearer token is required."), status=401, content_type="text/plain; charset=utf-8"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = app_metrics.render(
        request.headers.get("Accept", ""), collectors=[DatabaseCollector()]
    )
    return HttpResponse(body, content_type=content_type)

"""GET /metrics: the Prometheus exposition (mttcrm/metrics.py), behind METRICS_TOKEN or a staff login."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from . import metrics as app_metrics


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
    body, content_type = app_metrics.render(request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)

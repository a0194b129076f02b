"""POST /calls/dial/ — the click-to-call button (static/js/click_to_call.js) calls this.

Answers JSON: ``{"ok": true, "message": …, "call_id": …}`` or ``{"ok": false, "code": …, "error": …}``
with a 4xx/503 status (``calls.dial.DialResult``); never a redirect to the login page, never a 500.
"""

from __future__ import annotations

import json

from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from .dial import call_dial


def _number_from(request: HttpRequest) -> str:
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: [[[[… nested too deep
            return ""
        value = data.get("number") if isinstance(data, dict) else None
        return value if isinstance(value, str) else ""
    return request.POST.get("number", "")


@require_POST
def dial(request: HttpRequest) -> JsonResponse:
    if not request.user.is_authenticated:
        return JsonResponse({"ok": False, "code": "login", "error": _("Please log in again.")}, status=401)
    result = call_dial(user=request.user, number=_number_from(request))
    response = JsonResponse(result.as_json(), status=result.status)
    if result.retry_after is not None:
        response["Retry-After"] = str(max(1, round(result.retry_after)))
    return response

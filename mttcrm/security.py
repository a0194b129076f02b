"""Login throttling's answer (django-axes' AXES_LOCKOUT_CALLABLE): the login page with the reason."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import ngettext


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    # Every attempt during the lockout starts the cool-off again (axes' default), so the whole
    # period is what is left.
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    message = ngettext(
        "Too many failed login attempts. This account is locked on this computer for %(minutes)d minute; "
        "try again later or ask an administrator.",
        "Too many failed login attempts. This account is locked on this computer for %(minutes)d minutes; "
        "try again later or ask an administrator.",
        minutes,
    ) % {"minutes": minutes}
    context = {
        "form": AuthenticationForm(request),
        "lockout_message": message,
        "next": request.POST.get("next") or request.GET.get("next", ""),
    }
    return render(request, "registration/login.html", context, status=429)

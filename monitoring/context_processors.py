"""The staff badge in the menu (templates/base.html): a dot and a few words about the MTT integration."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .selectors import BadgeState, badge_state

CACHE_KEY = "monitoring:badge:v1"
CACHE_SECONDS = 30


def _badge() -> dict[str, Any]:
    state = cache.get(CACHE_KEY)
    if not isinstance(state, BadgeState):
        state = badge_state()
        cache.set(CACHE_KEY, state, CACHE_SECONDS)
    if state.needs_reconnect:
        text = _("MTT: reconnect needed")
    elif state.warnings:
        text = ngettext("MTT: %(count)d warning", "MTT: %(count)d warnings", state.warnings) % {
            "count": state.warnings
        }
    elif not state.connected:
        text = _("MTT: not connected")
    else:
        text = _("MTT: OK")
    return {
        "level": state.level,
        "text": text,
        "url": reverse("admin:monitoring_integrationhealth_changelist"),
    }


def health_badge(request: HttpRequest) -> dict[str, Any]:
    """``health_badge`` for staff only; lazy (no query unless the page renders it), cached 30 s."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_staff:
        return {}
    return {"health_badge": SimpleLazyObject(_badge)}

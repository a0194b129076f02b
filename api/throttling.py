"""Throttling per API token (DRF's documented extension point: a SimpleRateThrottle subclass)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from .models import ApiToken


class ApiTokenRateThrottle(SimpleRateThrottle):
    """``API_THROTTLE_RATE`` requests per token (a session: per user; anonymous: per address), counted in
    Django's default cache. A client over the rate gets 429 with ``Retry-After``."""

    scope = "api_token"

    def get_rate(self) -> str | None:
        # Read at each request, not at import: the setting can be changed (tests, a deploy).
        return str(settings.API_THROTTLE_RATE) or None

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if isinstance(request.auth, ApiToken):
            ident = f"token-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"address-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

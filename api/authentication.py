"""DRF authentication by a personal API token (DRF's documented extension point, BaseAuthentication)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from .models import ApiToken
from .services import api_token_authenticate

KEYWORDS = (b"bearer", b"token")


class ApiTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer mttcrm_…`` (or ``Token mttcrm_…``). A request without the header is left to
    the next class (the login session); a wrong, revoked or expired token is a 401."""

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in KEYWORDS:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed(_("The Authorization header must be “Bearer <token>”."))
        try:
            raw = parts[1].decode("ascii")
        except UnicodeError:
            raise AuthenticationFailed(_("The token is not valid, revoked or expired.")) from None
        token = api_token_authenticate(raw=raw)
        if token is None:
            raise AuthenticationFailed(_("The token is not valid, revoked or expired."))
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) to a request without credentials.
        return 'Bearer realm="api"'

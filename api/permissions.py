"""Who may call the API: a logged-in user (token or session); a read-only token may only read."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from .models import ApiToken


class TokenScope(BasePermission):
    """Authenticated, and a write (POST, PATCH, …) only with a read-write token or a login session."""

    message = _("This token may only read: create a read-write token to change data.")

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        if request.method in SAFE_METHODS:
            return True
        token = request.auth
        return not isinstance(token, ApiToken) or token.can_write


class ListensToRecordings(BasePermission):
    """The recordings' audio: ``calls.listen_recording``, as on the pages."""

    message = _("You do not have the permission to listen to recordings.")

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user.has_perm("calls.listen_recording"))

"""Writes and reads of API tokens: create (the plain token returned once), authenticate, revoke."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from .models import ApiToken

TOKEN_PREFIX = "mttcrm_"
# The visible part: "mttcrm_" and the first 6 random characters (36 bits: enough to tell tokens apart,
# far too little to guess the other 250).
VISIBLE_CHARS = len(TOKEN_PREFIX) + 6
# last_used_at is written at most this often per token: not one UPDATE per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
_MAX_TOKEN_LENGTH = 200


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_token_create(
    *, user: Any, name: str, scope: str = ApiToken.Scope.READ, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token for ``user``: (the row, the plain token — shown once, stored nowhere)."""
    token = ApiToken(user=user, name=name, scope=scope, expires_at=expires_at)
    raw = api_token_fill(token=token)
    token.save()
    return token, raw


def api_token_fill(*, token: ApiToken) -> str:
    """Give an unsaved row (the admin's add form) a fresh secret; returns the plain token."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token.prefix = raw[:VISIBLE_CHARS]
    token.digest = token_digest(raw)
    return raw


def api_token_authenticate(*, raw: str, now: datetime | None = None) -> ApiToken | None:
    """The active token whose plain text is ``raw`` (with its user), or None. One indexed query, and an
    UPDATE of ``last_used_at`` at most once a minute per token."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > _MAX_TOKEN_LENGTH:
        return None
    now = now or timezone.now()
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=token_digest(raw), revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def api_token_revoke(*, tokens: Any) -> int:
    """Revoke the tokens of a queryset (the admin's action); already revoked ones stay as they were."""
    return int(tokens.filter(revoked_at__isnull=True).update(revoked_at=timezone.now()))

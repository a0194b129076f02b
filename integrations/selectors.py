"""Reads of the MTT side that are more than a one-line query."""

from __future__ import annotations

import copy
import logging
import time
from datetime import datetime

from django.db.models import Q

from contacts.phones import line_key

from .models import ExternalNumber, Integration

logger = logging.getLogger(__name__)


# Encrypted at rest (integrations/fields.py): decrypting them costs CPU that a notification never needs.
SECRET_FIELDS = ("client_secret", "access_token", "refresh_token")


def integration_for_notify_token(
    *, token: str, now: datetime, with_secrets: bool = True
) -> Integration | None:
    """The integration whose notify URL carries ``token``: its current token, or the previous one while
    that is in its grace period after a rotation. None for an unknown or expired token (a 404).

    ``with_secrets=False`` (a notification): the secrets are deferred, decrypted only if read.
    """
    if not token or "\x00" in token:  # a NUL from the URL (%00) cannot even be sent to PostgreSQL
        return None
    found = Integration.objects.filter(
        Q(notify_token=token) | Q(previous_notify_token=token, previous_notify_token_expires_at__gt=now)
    )
    if not with_secrets:
        found = found.defer(*SECRET_FIELDS)
    integration = found.order_by("pk").first()
    if integration is not None and integration.notify_token != token:
        # Never the token itself in a log line: the integration and until when the old URL works.
        logger.info(
            "Integration %s: request on the previous notify URL (accepted until %s); "
            "paste the new notify URL into the MTT portal",
            integration.pk,
            integration.previous_notify_token_expires_at,
        )
    return integration


# token -> (integration, valid until: time.monotonic()). Notifications only: a busy line sends dozens a
# second, and the lookup (an OR over two tokens, compiled by the ORM) was a third of the notify URL's
# own CPU. An entry lives NOTIFY_TOKEN_CACHE_SECONDS at most, never past an old token's grace period;
# this process forgets an integration as soon as it is saved or deleted (signals in apps.py), other
# processes within that time. The admin's GET (OAuth) always reads the database.
NOTIFY_TOKEN_CACHE_SECONDS = 5.0
_NOTIFY_TOKENS: dict[str, tuple[Integration, float]] = {}


def integration_for_notification_cached(token: str) -> Integration | None:
    """The integration of ``token`` if this process has it cached, else None: no database (the notify
    URL's fast lane runs on the event loop)."""
    cached = _NOTIFY_TOKENS.get(token)
    if cached is not None and cached[1] > time.monotonic():
        return copy.copy(cached[0])  # callers may set attributes; the cached instance stays as read
    return None


def integration_for_notification(*, token: str, now: datetime) -> Integration | None:
    """``integration_for_notify_token`` for a notification POST, through a short per-process cache."""
    cached = integration_for_notification_cached(token)
    if cached is not None:
        return cached
    clock = time.monotonic()
    integration = integration_for_notify_token(token=token, now=now, with_secrets=False)
    if integration is None:
        _NOTIFY_TOKENS.pop(token, None)
        return None
    until = clock + NOTIFY_TOKEN_CACHE_SECONDS
    if integration.notify_token != token and integration.previous_notify_token_expires_at is not None:
        until = min(until, clock + (integration.previous_notify_token_expires_at - now).total_seconds())
    if len(_NOTIFY_TOKENS) > 1000:  # tokens are few; junk tokens are never stored (None above)
        _NOTIFY_TOKENS.clear()
    _NOTIFY_TOKENS[token] = (integration, until)
    return copy.copy(integration)


def notify_tokens_forget(integration_id: int | None = None) -> None:
    """Drop cached notify tokens: of one integration, or all (tests, a deleted integration)."""
    if integration_id is None:
        _NOTIFY_TOKENS.clear()
        return
    for token, (integration, _until) in list(_NOTIFY_TOKENS.items()):
        if integration.pk == integration_id:
            _NOTIFY_TOKENS.pop(token, None)


# --- Our lines in whatever form MTT names them -------------------------------------------------------


def external_number_for(*, integration_id: int, raw: str) -> ExternalNumber | None:
    """The line (external number) ``raw`` names, in any form MTT sends it (guide §6.4:
    ``84996497803``, ``0074996497803``, ``+74996497803``, ``74996497803@pstn``, ``sip:…@…``), or None.

    One indexed lookup on ``normalized``; an active row wins over one the PBX no longer lists.
    """
    key = line_key(raw or "")
    if not key:
        return None
    return (
        ExternalNumber.objects.filter(integration_id=integration_id, normalized=key)
        .order_by("-is_active", "pk")
        .first()
    )


def external_number_ids_by_key(*, integration_id: int, parking_only: bool = False) -> dict[str, int]:
    """``line_key`` → ExternalNumber id for every line of the integration (``parking_only``: those
    with parking on), for callers that keep the directory in memory and look up with
    ``line_key(raw)``. An active row wins over an inactive one with the same key."""
    rows = ExternalNumber.objects.filter(integration_id=integration_id).exclude(normalized="")
    if parking_only:
        rows = rows.filter(is_parking=True)
    found: dict[str, int] = {}
    # Inactive first, so that an active row with the same key overwrites it.
    for key, pk in rows.order_by("is_active", "-pk").values_list("normalized", "pk"):
        found[key] = pk
    return found

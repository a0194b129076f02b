"""Reads of the MTT side that are more than a one-line query."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db.models import Q

from .models import Integration

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

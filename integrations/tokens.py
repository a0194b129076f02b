"""The MTT access and refresh tokens (guide §8): stored on connect, kept alive, refreshed single-flight.

The one module the API client (mtt/client.py) asks for a token; it talks to MTT's OAuth server only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import Integration
from .mtt import oauth
from .mtt.errors import MttError, MttReconnectRequired

logger = logging.getLogger(__name__)


def integration_endpoints(*, integration: Integration) -> oauth.OAuthEndpoints:
    return oauth.OAuthEndpoints(
        client_id=integration.client_id,
        client_secret=integration.client_secret,
        oauth_url=integration.oauth_url,
        redirect_uri=integration.notify_url,
    )


def tokens_store(integration: Integration, tokens: oauth.TokenSet) -> None:
    integration.access_token = tokens.access_token
    integration.access_token_expires_at = tokens.access_expires_at
    integration.refresh_token = tokens.refresh_token
    if tokens.refresh_expires_at is not None:
        integration.refresh_token_expires_at = tokens.refresh_expires_at
    integration.tokens_refreshed_at = timezone.now()
    integration.status = Integration.Status.CONNECTED
    integration.last_error = ""


def integration_record_error(*, integration_id: int, message: str) -> None:
    Integration.objects.filter(pk=integration_id).update(
        last_error=message[:2000], last_error_at=timezone.now()
    )


def integration_access_token(*, integration: Integration) -> str:
    """A valid access token, refreshed first when it is about to expire."""
    margin = settings.MTT_TOKEN_REFRESH_MARGIN
    if integration.status == Integration.Status.NEEDS_RECONNECT:
        raise MttReconnectRequired("The integration needs to be reconnected")
    if integration.access_token_valid(margin_seconds=margin):
        return integration.access_token
    return integration_refresh_tokens(
        integration_id=integration.pk, stale_access_token=integration.access_token
    )


@dataclass
class _RefreshOutcome:
    token: str = ""
    error: MttError | None = None
    needs_reconnect: bool = False


def integration_refresh_tokens(
    *,
    integration_id: int,
    stale_access_token: str | None = None,
    force: bool = False,
) -> str:
    """Refresh the tokens, single-flight across every process of the deployment.

    The integration row is locked (SELECT … FOR UPDATE) for the duration of the refresh, so concurrent
    callers queue on the lock; the ones that come after see the new token and return it without asking
    MTT again. ``stale_access_token`` is the token a caller found unusable (expired, or answered 401):
    if the row now holds a different valid token, someone else refreshed already.
    """
    margin = settings.MTT_TOKEN_REFRESH_MARGIN
    outcome = _RefreshOutcome()
    with transaction.atomic():
        row = Integration.objects.select_for_update().get(pk=integration_id)
        if row.status == Integration.Status.NEEDS_RECONNECT:
            raise MttReconnectRequired("The integration needs to be reconnected")
        if row.status == Integration.Status.NOT_CONNECTED or not row.refresh_token:
            raise MttReconnectRequired("The integration is not connected")
        fresh_elsewhere = (
            stale_access_token is not None
            and row.access_token
            and row.access_token != stale_access_token
            and row.access_token_valid(margin_seconds=0)
        )
        if fresh_elsewhere or (
            not force and stale_access_token is None and row.access_token_valid(margin_seconds=margin)
        ):
            return row.access_token
        try:
            tokens = oauth.refresh(integration_endpoints(integration=row), refresh_token=row.refresh_token)
        except MttReconnectRequired as exc:
            outcome.error, outcome.needs_reconnect = exc, True
        except MttError as exc:
            outcome.error = exc
        else:
            tokens_store(row, tokens)
            row.save()
            outcome.token = row.access_token
    if outcome.needs_reconnect:
        # Stop here for good: every later call fails fast until an admin reconnects.
        Integration.objects.filter(pk=integration_id).update(
            status=Integration.Status.NEEDS_RECONNECT,
            last_error=str(outcome.error)[:2000],
            last_error_at=timezone.now(),
        )
        logger.warning("Integration %s: token refresh refused, needs reconnect", integration_id)
    elif outcome.error is not None:
        integration_record_error(integration_id=integration_id, message=str(outcome.error))
        logger.warning("Integration %s: token refresh failed: %s", integration_id, outcome.error)
    if outcome.error is not None:
        raise outcome.error
    return outcome.token


def integration_keep_alive(*, integration_id: int, within: timedelta) -> bool:
    """Refresh when the access token expires within ``within`` (the beat task's horizon).

    Refreshing the access token also renews the 3-day refresh token, so the integration never dies
    for want of traffic. Returns whether a refresh happened.
    """
    integration = Integration.objects.get(pk=integration_id)
    if integration.status != Integration.Status.CONNECTED:
        return False
    if integration.access_token_valid(margin_seconds=int(within.total_seconds())):
        return False
    integration_refresh_tokens(integration_id=integration_id, force=True)
    return True

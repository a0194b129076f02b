"""Writes on integrations: OAuth connect, tokens (single-flight refresh), directory sync."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import ExternalNumber, Integration, Terminal, Workplace, new_notify_token
from .mtt import oauth
from .mtt.errors import MttError, MttReconnectRequired

logger = logging.getLogger(__name__)

# Run after commit whenever an integration is (re)connected (calls: re-apply the parking flags).
# Register once, from an AppConfig.ready(); a hook must not raise.
ON_CONNECT_HOOKS: list[Callable[[Integration], None]] = []


def integration_endpoints(*, integration: Integration) -> oauth.OAuthEndpoints:
    return oauth.OAuthEndpoints(
        client_id=integration.client_id,
        client_secret=integration.client_secret,
        oauth_url=integration.oauth_url,
        redirect_uri=integration.notify_url,
    )


def integration_create(
    *,
    name: str,
    client_id: str,
    client_secret: str,
    oauth_url: str | None = None,
    api_url: str | None = None,
) -> Integration:
    integration = Integration(name=name, client_id=client_id, client_secret=client_secret)
    if oauth_url:
        integration.oauth_url = oauth_url
    if api_url:
        integration.api_url = api_url
    integration.full_clean()
    integration.save()
    return integration


def integration_oauth_start(*, integration: Integration) -> tuple[str, str]:
    """Return (authorize URL, state). The caller binds ``state`` to the admin's session."""
    state = secrets.token_urlsafe(32)
    return oauth.authorization_url(integration_endpoints(integration=integration), state=state), state


def _store_tokens(integration: Integration, tokens: oauth.TokenSet) -> None:
    integration.access_token = tokens.access_token
    integration.access_token_expires_at = tokens.access_expires_at
    integration.refresh_token = tokens.refresh_token
    if tokens.refresh_expires_at is not None:
        integration.refresh_token_expires_at = tokens.refresh_expires_at
    integration.tokens_refreshed_at = timezone.now()
    integration.status = Integration.Status.CONNECTED
    integration.last_error = ""


def integration_oauth_complete(*, integration: Integration, code: str) -> Integration:
    """Exchange the authorization code and mark the integration connected (guide §8.2)."""
    try:
        tokens = oauth.exchange_code(integration_endpoints(integration=integration), code=code)
    except MttError as exc:
        integration_record_error(integration_id=integration.pk, message=str(exc))
        raise
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        _store_tokens(locked, tokens)
        locked.save()
    logger.info("Integration %s connected", integration.pk)
    from .tasks import sync_integration

    sync_integration.delay_on_commit(locked.pk)  # type: ignore[attr-defined]  # Celery 5.4+, not in the stubs
    for hook in ON_CONNECT_HOOKS:
        transaction.on_commit(lambda hook=hook: hook(locked))  # type: ignore[misc]
    return locked


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
            _store_tokens(row, tokens)
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


# --- Directory sync ------------------------------------------------------------------------------


@dataclass
class SyncResult:
    workplaces: int = 0
    terminals: int = 0
    numbers: int = 0
    deactivated: int = 0

    def __str__(self) -> str:
        return (
            f"{self.workplaces} workplaces, {self.terminals} terminals, {self.numbers} numbers, "
            f"{self.deactivated} deactivated"
        )


def integration_sync_directory(*, integration_id: int) -> SyncResult:
    """Upsert workplaces, terminals and external numbers from MTT; mark vanished ones inactive.

    Nothing is deleted: calls keep pointing at workplaces and numbers that left the PBX.
    """
    from .mtt.client import MttClient

    integration = Integration.objects.get(pk=integration_id)
    client = MttClient(integration)
    try:
        numbers = client.external_numbers_info()
        workplaces = client.workplaces_info()
        terminals = client.terminals_info()
    except MttError as exc:
        integration_record_error(integration_id=integration_id, message=str(exc))
        raise
    now = timezone.now()
    result = SyncResult()
    with transaction.atomic():
        wp_by_sip: dict[str, Workplace] = {}
        for wp in workplaces:
            obj, _ = Workplace.objects.update_or_create(
                integration=integration,
                sip_id=wp.sip_id,
                defaults={"name": wp.name, "is_active": True, "synced_at": now},
            )
            wp_by_sip[wp.sip_id] = obj
            result.workplaces += 1
        for term in terminals:
            Terminal.objects.update_or_create(
                integration=integration,
                sip_id=term.sip_id,
                defaults={
                    "workplace": wp_by_sip.get(term.workplace_sip_id)
                    or Workplace.objects.filter(
                        integration=integration, sip_id=term.workplace_sip_id
                    ).first(),
                    "is_active": True,
                    "synced_at": now,
                },
            )
            result.terminals += 1
        for num in numbers:
            ExternalNumber.objects.update_or_create(
                integration=integration,
                number=num.number,
                defaults={"type": num.type or "", "is_active": True, "synced_at": now},
            )
            result.numbers += 1
        for model, seen in (
            (Workplace, [w.sip_id for w in workplaces]),
            (Terminal, [t.sip_id for t in terminals]),
        ):
            result.deactivated += (
                model.objects.filter(integration=integration, is_active=True)
                .exclude(sip_id__in=seen)
                .update(is_active=False)
            )
        result.deactivated += (
            ExternalNumber.objects.filter(integration=integration, is_active=True)
            .exclude(number__in=[n.number for n in numbers])
            .update(is_active=False)
        )
        Integration.objects.filter(pk=integration_id).update(last_sync_at=now, last_error="")
    logger.info("Integration %s synced: %s", integration_id, result)
    return result


def integration_request_sync(*, integration_id: int) -> bool:
    """Ask for a directory sync, debounced: a burst of change notifications gives one sync.

    The first request of a burst claims ``sync_requested_at`` and schedules the sync a little later;
    the others see the claim and do nothing. The sync task releases the claim when it starts, so a
    change that arrives during a sync schedules another one. Returns whether a sync was scheduled.
    """
    from .tasks import sync_integration

    now = timezone.now()
    # A claim older than this is from a sync that never ran (lost task): take it over.
    stale = now - timedelta(seconds=max(60.0, settings.MTT_SYNC_DEBOUNCE_SECONDS * 10))
    claimed = (
        Integration.objects.filter(pk=integration_id)
        .filter(Q(sync_requested_at__isnull=True) | Q(sync_requested_at__lt=stale))
        .update(sync_requested_at=now)
    )
    if claimed == 1:
        transaction.on_commit(
            lambda: sync_integration.apply_async(
                args=(integration_id,), countdown=settings.MTT_SYNC_DEBOUNCE_SECONDS
            )
        )
        return True
    return False


@dataclass(frozen=True)
class NotifyTokenRotation:
    integration: Integration
    new_url: str
    previous_url: str
    previous_valid_until: datetime | None


def integration_rotate_notify_token(
    *, integration_id: int, grace: timedelta, now: datetime | None = None
) -> NotifyTokenRotation:
    """Give the integration a new notify URL (MTT's Redirect URI); the current one stays valid for
    ``grace`` (zero: refused at once), time to paste the new one into the MTT portal.

    The row is locked: two rotations at once run one after the other, the second one keeping the URL
    the first one made as its previous, so every URL printed to an admin works at least until its grace
    ends. Tokens and the OAuth connection are untouched: the refresh grant carries no redirect URI.
    """
    now = now or timezone.now()
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(pk=integration_id)
        previous_url = integration.notify_url
        if grace > timedelta(0):
            integration.previous_notify_token = integration.notify_token
            integration.previous_notify_token_expires_at = now + grace
        else:
            integration.previous_notify_token = ""
            integration.previous_notify_token_expires_at = None
        integration.notify_token = new_notify_token()
        integration.save(
            update_fields=[
                "notify_token",
                "previous_notify_token",
                "previous_notify_token_expires_at",
                "updated_at",
            ]
        )
    # Neither token in the log: the URLs are the credential.
    logger.info(
        "Integration %s: notify URL rotated; the previous one is accepted until %s",
        integration.pk,
        integration.previous_notify_token_expires_at or "now (no grace)",
    )
    return NotifyTokenRotation(
        integration=integration,
        new_url=integration.notify_url,
        previous_url=previous_url,
        previous_valid_until=integration.previous_notify_token_expires_at,
    )


def integration_expire_notify_tokens(*, now: datetime | None = None) -> int:
    """Forget previous notify tokens whose grace period is over (they are refused already)."""
    now = now or timezone.now()
    return (
        Integration.objects.exclude(previous_notify_token="")
        .filter(
            Q(previous_notify_token_expires_at__isnull=True) | Q(previous_notify_token_expires_at__lte=now)
        )
        .update(previous_notify_token="", previous_notify_token_expires_at=None)
    )

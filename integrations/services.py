"""Writes on integrations: OAuth connect, the directory sync, notify-token rotation (tokens: tokens.py)."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import ngettext

from .models import ExternalNumber, Integration, Terminal, Workplace, new_notify_token
from .mtt import oauth
from .mtt.client import MttClient
from .mtt.errors import MttError
from .tokens import integration_endpoints, integration_record_error, tokens_store

logger = logging.getLogger(__name__)


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


def integration_oauth_complete(*, integration: Integration, code: str) -> Integration:
    """Exchange the authorization code and mark the integration connected (guide §8.2). The caller starts
    the directory sync (integrations.tasks.sync_integration), which re-applies the parking flags."""
    try:
        tokens = oauth.exchange_code(integration_endpoints(integration=integration), code=code)
    except MttError as exc:
        integration_record_error(integration_id=integration.pk, message=str(exc))
        raise
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        tokens_store(locked, tokens)
        locked.save()
    logger.info("Integration %s connected", integration.pk)
    return locked


# --- Directory sync ------------------------------------------------------------------------------


@dataclass
class SyncResult:
    workplaces: int = 0
    terminals: int = 0
    numbers: int = 0
    deactivated: int = 0

    def __str__(self) -> str:
        # For logs and the command line; people read ``for_people``.
        return (
            f"{self.workplaces} workplaces, {self.terminals} terminals, {self.numbers} numbers, "
            f"{self.deactivated} deactivated"
        )

    def for_people(self) -> str:
        """The summary in the user's language, with its plural forms ("3 рабочих места, 4 терминала…")."""
        parts = [
            ngettext("%(n)d workplace", "%(n)d workplaces", self.workplaces) % {"n": self.workplaces},
            ngettext("%(n)d terminal", "%(n)d terminals", self.terminals) % {"n": self.terminals},
            ngettext("%(n)d number", "%(n)d numbers", self.numbers) % {"n": self.numbers},
            ngettext("%(n)d deactivated", "%(n)d deactivated", self.deactivated) % {"n": self.deactivated},
        ]
        return ", ".join(parts)


def integration_sync_directory(*, integration_id: int) -> SyncResult:
    """Upsert workplaces, terminals and external numbers from MTT; mark vanished ones inactive.

    Nothing is deleted: calls keep pointing at workplaces and numbers that left the PBX.
    """
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

"""Writes of the health check: open, keep and close warning episodes, and mail admins once each.

An episode opens when a warning first appears and is mailed once; while the warning persists the
episode stays open (``last_seen_at``) and nothing more is sent; when it clears the episode closes and,
if its warning was mailed, a short "resolved" mail follows. A later recurrence is a new episode.

Race safety (two beat runs at once, or beat and `mtt health` on another machine): one open episode per
(integration, kind) is a partial unique constraint, so the second INSERT fails and finds the first's
row; the mail is claimed with a conditional UPDATE (``mailed_at`` null → now) outside any transaction,
so exactly one run sends it; closing is conditional too (``cleared_at`` null → now), so exactly one run
sends the "resolved" mail.

Recipients: the ``ADMINS`` setting; when it is empty, the active superusers that have an e-mail
address. With no recipient at all, nothing is claimed: the mail goes out at the first run after one is
configured.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from integrations.models import Integration

from .models import HealthWarning
from .selectors import HealthIssue, integration_health, warnings_for

logger = logging.getLogger(__name__)


@dataclass
class HealthRun:
    """What one evaluation did (the task's return value, and for tests)."""

    integrations: int = 0
    open: list[tuple[int, str]] = field(default_factory=list)  # (integration id, kind) holding now
    opened: list[tuple[int, str]] = field(default_factory=list)
    cleared: list[tuple[int, str]] = field(default_factory=list)
    mailed: int = 0
    failed: list[int] = field(default_factory=list)  # integrations that could not be evaluated


def health_recipients() -> list[str]:
    admins = [email for _name, email in settings.ADMINS if email]
    if admins:
        return admins
    users = get_user_model().objects.filter(is_active=True, is_superuser=True).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


def panel_url() -> str:
    return settings.SITE_URL + reverse("admin:monitoring_integrationhealth_changelist")


def _send(subject: str, body: str, recipients: list[str]) -> None:
    send_mail(
        f"{settings.EMAIL_SUBJECT_PREFIX}{subject}",
        body,
        settings.DEFAULT_FROM_EMAIL,
        recipients,
        fail_silently=False,
    )


def _mail_opened(episode: HealthWarning, recipients: list[str], now: datetime) -> bool:
    """Claim the episode's mail and send it; on a failure give the claim back (the next run retries)."""
    claimed = HealthWarning.objects.filter(
        pk=episode.pk, mailed_at__isnull=True, cleared_at__isnull=True
    ).update(mailed_at=now)
    if claimed != 1:
        return False  # another run mailed it, or it cleared meanwhile
    name = episode.integration.name
    subject = _("MTT integration %(name)s: %(warning)s") % {
        "name": name,
        "warning": episode.get_kind_display(),
    }
    body = "\n\n".join(
        [
            episode.message,
            _("Since %(time)s. You get one mail per episode; the health panel: %(url)s")
            % {"time": timezone.localtime(episode.opened_at).strftime("%Y-%m-%d %H:%M"), "url": panel_url()},
        ]
    )
    try:
        _send(subject, body, recipients)
    except Exception:
        logger.exception("Health warning %s: the mail could not be sent; the next check retries", episode.pk)
        HealthWarning.objects.filter(pk=episode.pk, mailed_at=now).update(mailed_at=None)
        return False
    logger.warning("Integration %s: %s (mailed to %s recipient(s))", name, episode.kind, len(recipients))
    return True


def _mail_resolved(episode: HealthWarning, now: datetime) -> None:
    recipients = health_recipients()
    if not recipients:
        return
    subject = _("MTT integration %(name)s: resolved: %(warning)s") % {
        "name": episode.integration.name,
        "warning": episode.get_kind_display(),
    }
    body = _("The warning opened at %(opened)s cleared at %(cleared)s.\n\nIt said: %(message)s") % {
        "opened": timezone.localtime(episode.opened_at).strftime("%Y-%m-%d %H:%M"),
        "cleared": timezone.localtime(now).strftime("%Y-%m-%d %H:%M"),
        "message": episode.message,
    }
    try:
        _send(subject, body, recipients)
    except Exception:
        # Not retried: the episode is over either way, and the panel shows it cleared.
        logger.exception("Health warning %s: the resolved mail could not be sent", episode.pk)


def _open_episodes(integration: Integration) -> dict[str, HealthWarning]:
    return {
        ep.kind: ep for ep in HealthWarning.objects.filter(integration=integration, cleared_at__isnull=True)
    }


def health_record(
    *, integration: Integration, issues: list[HealthIssue], now: datetime, run: HealthRun
) -> list[HealthWarning]:
    """Open, refresh and close the integration's episodes to match ``issues``. Returns the closed
    episodes this call closed (each closed by exactly one caller)."""
    current = {issue.kind: issue for issue in issues}
    closed: list[HealthWarning] = []
    with transaction.atomic():
        open_now = _open_episodes(integration)
        for kind, issue in current.items():
            run.open.append((integration.pk, kind))
            if kind not in open_now:
                try:
                    with transaction.atomic():  # a savepoint: a lost race must not spoil the rest
                        HealthWarning.objects.create(
                            integration=integration,
                            kind=kind,
                            message=issue.message,
                            opened_at=now,
                            last_seen_at=now,
                        )
                    run.opened.append((integration.pk, kind))
                    continue
                except IntegrityError:
                    pass  # another run opened it a moment ago: this run only refreshes it
            HealthWarning.objects.filter(integration=integration, kind=kind, cleared_at__isnull=True).update(
                last_seen_at=now, message=issue.message
            )
        for kind, episode in open_now.items():
            if kind in current:
                continue
            if HealthWarning.objects.filter(pk=episode.pk, cleared_at__isnull=True).update(cleared_at=now):
                episode.cleared_at = now
                closed.append(episode)
                run.cleared.append((integration.pk, kind))
    return closed


def health_evaluate_integration(*, integration: Integration, now: datetime, run: HealthRun) -> None:
    issues = warnings_for(integration_health(integration, now=now))
    closed = health_record(integration=integration, issues=issues, now=now, run=run)
    unmailed = list(
        HealthWarning.objects.filter(
            integration=integration, cleared_at__isnull=True, mailed_at__isnull=True
        ).select_related("integration")
    )
    if unmailed:
        recipients = health_recipients()
        if not recipients:
            logger.warning(
                "Integration %s has %s health warning(s) and nobody to mail them to: set ADMINS",
                integration.pk,
                len(unmailed),
            )
        else:
            run.mailed += sum(_mail_opened(ep, recipients, now) for ep in unmailed)
    for episode in closed:
        if episode.mailed_at is not None:
            _mail_resolved(episode, now)


def evaluate_health(now: datetime | None = None) -> HealthRun:
    """Beat (HEALTH_CHECK_EVERY_SECONDS): evaluate every integration, record episodes, mail admins.

    Mails and stored messages are in LANGUAGE_CODE, whoever runs this.
    """
    now = now or timezone.now()
    run = HealthRun()
    with translation.override(settings.LANGUAGE_CODE):
        for integration in Integration.objects.order_by("pk"):
            run.integrations += 1
            try:
                health_evaluate_integration(integration=integration, now=now, run=run)
            except Exception:
                # One integration's failure must not hide the others' warnings.
                logger.exception("Integration %s: health check failed", integration.pk)
                run.failed.append(integration.pk)
    return run

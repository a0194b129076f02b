from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from integrations.models import Integration


class HealthWarning(models.Model):
    """One episode of a warning about an integration: opened when it first appears, mailed once,
    kept open (``last_seen_at``) while it persists, closed (``cleared_at``) when it clears.

    At most one open episode per (integration, kind): a partial unique constraint, so two health
    checks running at once cannot open (and mail) the same episode twice.
    """

    class Kind(models.TextChoices):
        REFRESH_TOKEN_EXPIRING = "refresh_token_expiring", _("Refresh token expires soon")
        NEEDS_RECONNECT = "needs_reconnect", _("Needs reconnect")
        SILENCE = "silence", _("No notifications")
        INBOX_BACKLOG = "inbox_backlog", _("Inbox backlog")
        RECORDINGS_FAILING = "recordings_failing", _("Recordings failing")
        WEBHOOKS_DISABLED = "webhooks_disabled", _("Webhooks disabled")

    # Red on the badge; the other kinds are amber.
    SEVERE_KINDS = frozenset({Kind.NEEDS_RECONNECT, Kind.REFRESH_TOKEN_EXPIRING})

    integration = models.ForeignKey(
        Integration, verbose_name=_("integration"), on_delete=models.CASCADE, related_name="health_warnings"
    )
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    message = models.TextField(_("message"), blank=True, default="")
    opened_at = models.DateTimeField(_("opened"))
    last_seen_at = models.DateTimeField(_("last seen"))
    cleared_at = models.DateTimeField(_("cleared"), null=True, blank=True)
    # Set when the warning mail is claimed (before sending; put back to null if sending fails).
    mailed_at = models.DateTimeField(_("mailed"), null=True, blank=True)

    class Meta:
        verbose_name = _("health warning")
        verbose_name_plural = _("health warnings")
        ordering = ["-opened_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "kind"],
                condition=Q(cleared_at__isnull=True),
                name="uniq_open_health_warning",
            ),
        ]
        indexes = [models.Index(fields=["cleared_at", "kind"], name="health_warning_open_idx")]

    def __str__(self) -> str:
        return f"{self.integration_id}: {self.get_kind_display()}"

    @property
    def is_open(self) -> bool:
        return self.cleared_at is None


class IntegrationHealth(Integration):
    """No table: the admin's "Integration health" page (monitoring/admin.py) hangs off this proxy."""

    class Meta:
        proxy = True
        verbose_name = _("integration health")
        verbose_name_plural = _("integration health")

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from contacts.phones import line_key

from .fields import EncryptedTextField
from .words import event_words


def new_notify_token() -> str:
    # 32 random bytes = 256 bits: the notify URL is the only secret protecting notifications.
    return secrets.token_urlsafe(32)


# The name the initial migration refers to.
_new_notify_token = new_notify_token


def _default_oauth_url() -> str:
    return settings.MTT_OAUTH_URL


def _default_api_url() -> str:
    return settings.MTT_API_URL


class Integration(models.Model):
    """One MTT account connected through the Open API (guide §7)."""

    class Status(models.TextChoices):
        NOT_CONNECTED = "not_connected", _("Not connected")
        CONNECTED = "connected", _("Connected")
        NEEDS_RECONNECT = "needs_reconnect", _("Needs reconnect")

    name = models.CharField(_("name"), max_length=100, unique=True)
    client_id = models.CharField(_("client ID"), max_length=200)
    client_secret = EncryptedTextField(_("client secret"))
    oauth_url = models.URLField(_("OAuth server URL"), default=_default_oauth_url)
    api_url = models.URLField(_("API URL"), default=_default_api_url)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.NOT_CONNECTED
    )

    access_token = EncryptedTextField(_("access token"), blank=True, default="")
    access_token_expires_at = models.DateTimeField(_("access token expires"), null=True, blank=True)
    refresh_token = EncryptedTextField(_("refresh token"), blank=True, default="")
    refresh_token_expires_at = models.DateTimeField(_("refresh token expires"), null=True, blank=True)
    tokens_refreshed_at = models.DateTimeField(_("tokens last refreshed"), null=True, blank=True)

    notify_token = models.CharField(
        _("notify token"), max_length=64, unique=True, default=_new_notify_token, editable=False
    )
    # After a rotation the old notify URL keeps working until the expiry (the grace period), time to
    # paste the new URL into the MTT portal; then it is refused like an unknown token and cleared.
    previous_notify_token = models.CharField(
        _("previous notify token"), max_length=64, blank=True, default="", db_index=True, editable=False
    )
    previous_notify_token_expires_at = models.DateTimeField(
        _("previous notify URL valid until"), null=True, blank=True, editable=False
    )

    last_sync_at = models.DateTimeField(_("last sync"), null=True, blank=True)
    sync_requested_at = models.DateTimeField(_("sync requested"), null=True, blank=True)
    last_notification_at = models.DateTimeField(_("last notification"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True, default="")
    last_error_at = models.DateTimeField(_("last error at"), null=True, blank=True)

    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("integration")
        verbose_name_plural = _("integrations")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def notify_path(self) -> str:
        return reverse("integrations:notify", kwargs={"token": self.notify_token})

    @property
    def notify_url(self) -> str:
        """The Redirect URI to paste into the MTT portal: OAuth callback and notifications."""
        return settings.SITE_URL + self.notify_path

    @property
    def previous_notify_url(self) -> str:
        if not self.previous_notify_token:
            return ""
        return settings.SITE_URL + reverse(
            "integrations:notify", kwargs={"token": self.previous_notify_token}
        )

    def access_token_valid(self, *, margin_seconds: int = 0, now: datetime | None = None) -> bool:
        if not self.access_token or self.access_token_expires_at is None:
            return False
        now = now or timezone.now()
        return (self.access_token_expires_at - now).total_seconds() > margin_seconds


class Workplace(models.Model):
    """An employee's seat in the PBX (РМ), identified by its SIP ID."""

    integration = models.ForeignKey(
        Integration, on_delete=models.CASCADE, related_name="workplaces", verbose_name=_("integration")
    )
    sip_id = models.CharField(_("SIP ID"), max_length=64)
    name = models.CharField(_("name"), max_length=200, blank=True, default="")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("operator"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="workplace",
    )
    is_active = models.BooleanField(_("active"), default=True)
    synced_at = models.DateTimeField(_("last seen in sync"), null=True, blank=True)

    class Meta:
        verbose_name = _("workplace")
        verbose_name_plural = _("workplaces")
        ordering = ["name", "sip_id"]
        constraints = [
            models.UniqueConstraint(fields=["integration", "sip_id"], name="uniq_workplace_sip_id"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.sip_id})" if self.name else self.sip_id


class Terminal(models.Model):
    """A device attached to a workplace (SIP phone, mobile app, FMC SIM), with its own SIP ID."""

    integration = models.ForeignKey(
        Integration, on_delete=models.CASCADE, related_name="terminals", verbose_name=_("integration")
    )
    sip_id = models.CharField(_("SIP ID"), max_length=64)
    workplace = models.ForeignKey(
        Workplace,
        verbose_name=_("workplace"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="terminals",
    )
    is_active = models.BooleanField(_("active"), default=True)
    synced_at = models.DateTimeField(_("last seen in sync"), null=True, blank=True)

    class Meta:
        verbose_name = _("terminal")
        verbose_name_plural = _("terminals")
        ordering = ["sip_id"]
        constraints = [
            models.UniqueConstraint(fields=["integration", "sip_id"], name="uniq_terminal_sip_id"),
        ]

    def __str__(self) -> str:
        return self.sip_id


class ExternalNumber(models.Model):
    """A public number of the company (a line).

    ``number`` is exactly what externalNumbersInfo lists (and what setParkingNumbers is sent);
    ``normalized`` is its lookup key (``contacts.phones.line_key``): notifications name the line in any
    form the network gave (guide §6.4), ``84996497803`` or ``0074996497803`` for ``74996497803``.
    """

    integration = models.ForeignKey(
        Integration, on_delete=models.CASCADE, related_name="external_numbers", verbose_name=_("integration")
    )
    number = models.CharField(_("number"), max_length=32)
    normalized = models.CharField(
        _("normalized number"), max_length=32, blank=True, default="", editable=False
    )
    type = models.CharField(_("type"), max_length=64, blank=True, default="")
    is_parking = models.BooleanField(_("route to personal manager (parking)"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    synced_at = models.DateTimeField(_("last seen in sync"), null=True, blank=True)

    class Meta:
        verbose_name = _("external number")
        verbose_name_plural = _("external numbers")
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["integration", "number"], name="uniq_external_number"),
        ]
        # Not unique: should MTT ever list one line in two forms, both rows stay (the selector
        # prefers the active one).
        indexes = [models.Index(fields=["integration", "normalized"], name="external_number_norm_idx")]

    def __str__(self) -> str:
        return self.number

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The key follows the number on every write of a row (the sync, the demo, tests); a bulk
        # update() of ``number`` would bypass this, and nothing does one.
        self.normalized = line_key(self.number)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "number" in update_fields:
            kwargs["update_fields"] = {*update_fields, "normalized"}
        super().save(*args, **kwargs)


class NotificationEvent(models.Model):
    """The inbox: every notification POSTed to a notify URL, stored before it is acknowledged.

    The applier process (integrations/applier.py) applies the pending ones, what an operator sees first
    (``priority``), oldest first; a failed attempt is tried again at ``retry_at``.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        APPLIED = "applied", _("Applied")
        FAILED = "failed", _("Failed")
        IGNORED = "ignored", _("Ignored")

    class Priority(models.IntegerChoices):
        # What pops, updates or hides an operator's card (and a parked call's trying: its routing).
        CARD = 0, _("Screen pop")
        # The end of a call: its card closes, the call log gets the result.
        CALL_END = 1, _("End of a call")
        # Recordings, directory changes, anything else.
        BOOKKEEPING = 2, _("Bookkeeping")

    integration = models.ForeignKey(
        Integration, on_delete=models.CASCADE, related_name="notifications", verbose_name=_("integration")
    )
    received_at = models.DateTimeField(_("received"), default=timezone.now, db_index=True)
    event = models.CharField(_("event"), max_length=64, blank=True, default="")
    body = models.JSONField(_("body"))
    # sha256 of the canonical JSON: the same notification sent twice is stored once.
    fingerprint = models.CharField(_("fingerprint"), max_length=64)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    priority = models.PositiveSmallIntegerField(
        _("priority"), choices=Priority.choices, default=Priority.BOOKKEEPING
    )
    applied_at = models.DateTimeField(_("applied"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    # After a failed attempt: not tried again before this time (backoff).
    retry_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    # Why applying failed, or why the notification was ignored.
    error = models.TextField(_("error"), blank=True, default="")
    # The body exactly as received, when ``body`` is a cleaned copy of it (NUL characters and lone surrogates,
    # which the database's JSON cannot hold, replaced by U+FFFD, NaN and Infinity by null:
    # integrations.mtt.notifications); else "".
    received_text = models.TextField(_("body as received"), blank=True, default="")

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "fingerprint"], name="uniq_notification_fingerprint"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "received_at"], name="notification_status_idx"),
            # The applier's queue: the pending rows, best priority first, oldest first.
            models.Index(
                fields=["priority", "received_at"],
                condition=models.Q(status="pending"),
                name="notification_queue_idx",
            ),
        ]

    def __str__(self) -> str:
        # The admin's title and links name a notification so: its event in words, its time as every page
        # shows times (the raw event name is in the body).
        return f"{event_words(self.event)}, {timezone.localtime(self.received_at):%d.%m.%Y %H:%M:%S}"


class MttRequestLog(models.Model):
    """One row per HTTP request to MTT: for the health panel (requests and errors by method)."""

    integration = models.ForeignKey(
        Integration, on_delete=models.CASCADE, related_name="request_logs", verbose_name=_("integration")
    )
    method = models.CharField(_("method"), max_length=64)
    status_code = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    ok = models.BooleanField(_("ok"), default=False)
    error = models.CharField(_("error"), max_length=500, blank=True, default="")
    duration_ms = models.PositiveIntegerField(_("duration, ms"), default=0)
    limiter_wait_ms = models.PositiveIntegerField(_("limiter wait, ms"), default=0)
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("MTT request")
        verbose_name_plural = _("MTT requests")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.method} {self.status_code or '-'}"

"""Call recordings: MTT's link and our stored copy, and who listened to them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .calls import Call, CallLeg


class Recording(models.Model):
    """One call recording: MTT's mp3 link (kept there 90 days, guide §10.1.3) and our stored copy.

    A call may have several. Unique per (integration, source_url): a duplicate ``recorded`` finds
    the row it made the first time and downloads nothing new.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for download")
        DOWNLOADING = "downloading", _("Downloading")
        STORED = "stored", _("Stored")
        FAILED = "failed", _("Failed")
        REFUSED = "refused", _("Refused")
        EXPIRED = "expired", _("Gone at MTT")
        DELETED = "deleted", _("Deleted by retention")

    integration = models.ForeignKey(
        "integrations.Integration",
        on_delete=models.CASCADE,
        related_name="recordings",
        verbose_name=_("integration"),
    )
    # Null only until the call is known; SET_NULL keeps the file's row if a call is deleted.
    call = models.ForeignKey(
        Call,
        verbose_name=_("call"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="recordings",
    )
    leg = models.ForeignKey(
        CallLeg,
        verbose_name=_("call leg"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="recordings",
    )
    notification = models.ForeignKey(
        "integrations.NotificationEvent",
        verbose_name=_("notification"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="recordings",
    )
    # The Call-ID of the recorded leg, as in the notification: links the row to its call.
    leg_call_id = models.CharField(_("Call-ID"), max_length=255, db_index=True)
    # urlRecord exactly as MTT sent it.
    source_url = models.CharField(_("MTT link"), max_length=2000)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    failure_reason = models.CharField(_("reason"), max_length=500, blank=True, default="")
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    # When the current download claim was taken (status downloading); a stale claim is reclaimed.
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    # The task holding the claim: the same task delivered again (its worker died) may take it back.
    claimed_by = models.CharField(_("claimed by"), max_length=64, blank=True, default="")
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    # Where the copy lives in the recordings storage (planned at creation: deterministic).
    storage_key = models.CharField(_("storage key"), max_length=255)
    size = models.PositiveBigIntegerField(_("size, bytes"), null=True, blank=True)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True, default="")
    duration_seconds = models.FloatField(_("duration, s"), null=True, blank=True)
    content_type = models.CharField(_("content type"), max_length=100, blank=True, default="")
    mtt_expires_at = models.DateTimeField(_("deleted at MTT after"))
    # Set by the sweep: not stored yet and MTT deletes it soon.
    expiring_soon = models.BooleanField(_("expiring at MTT"), default=False)
    stored_at = models.DateTimeField(_("stored"), null=True, blank=True)
    deleted_at = models.DateTimeField(_("file deleted"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("recording")
        verbose_name_plural = _("recordings")
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["integration", "source_url"], name="uniq_recording_source"),
        ]
        indexes = [
            models.Index(fields=["call", "status"], name="recording_call_status_idx"),
            models.Index(fields=["status", "last_attempt_at"], name="recording_status_attempt_idx"),
        ]
        permissions = [("listen_recording", _("Can listen to and download call recordings"))]

    def __str__(self) -> str:
        return f"{self.leg_call_id} ({self.get_status_display()})"

    def get_absolute_url(self) -> str:
        return reverse("calls:recording", args=[self.pk])

    @property
    def is_stored(self) -> bool:
        return self.status == self.Status.STORED


class RecordingAccess(models.Model):
    """Who listened to or downloaded a recording, and when (shown in the admin)."""

    class Action(models.TextChoices):
        LISTEN = "listen", _("Listened")
        DOWNLOAD = "download", _("Downloaded")

    recording = models.ForeignKey(
        Recording, verbose_name=_("recording"), on_delete=models.CASCADE, related_name="accesses"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="recording_accesses",
    )
    action = models.CharField(_("action"), max_length=10, choices=Action.choices)
    at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)

    class Meta:
        verbose_name = _("recording access")
        verbose_name_plural = _("recording accesses")
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        # The admin's title: local time, as every page shows times.
        at = timezone.localtime(self.at)
        return f"{self.get_action_display()} {self.recording_id}, {at:%d.%m.%Y %H:%M}"

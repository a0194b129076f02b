"""Outgoing webhooks: subscriptions (where to, which events, the signing secret), deliveries (the outbox:
one row per event and subscription, written in the transaction of the change) and their attempts."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from integrations.fields import EncryptedTextField


class Event(models.TextChoices):
    CALL_STARTED = "call.started", _("A call started (its first notification)")
    CALL_ANSWERED = "call.answered", _("A call was answered")
    CALL_MISSED = "call.missed", _("An incoming call was missed")
    CALL_FINISHED = "call.finished", _("A call ended")
    RECORDING_STORED = "recording.stored", _("A recording was stored")
    CALLBACK_CREATED = "callback.created", _("A callback task was opened")


class WebhookSubscription(models.Model):
    """A receiver of events (README "Webhooks"). Disabled by itself after a day of failed deliveries."""

    name = models.CharField(_("name"), max_length=100)
    url = models.URLField(_("URL"), max_length=2000)
    events = models.JSONField(_("events"), default=list)
    # Standard Webhooks' "whsec_<base64>", encrypted at rest like the integration's client secret.
    secret = EncryptedTextField(_("signing secret"))
    allow_private_network = models.BooleanField(
        _("allow private addresses"),
        default=False,
        help_text=_(
            "Let this URL point at a private, loopback or link-local address (a receiver inside the "
            "company's network). Off: such a URL is refused, like recording links."
        ),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    # Since when deliveries to it fail (None: the last one succeeded).
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True, editable=False)
    disabled_at = models.DateTimeField(_("disabled"), null=True, blank=True, editable=False)
    disabled_reason = models.TextField(_("why it was disabled"), blank=True, default="", editable=False)

    class Meta:
        verbose_name = _("webhook subscription")
        verbose_name_plural = _("webhook subscriptions")
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """One event for one subscription: written with the change that caused it, sent after the commit."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting to be sent")
        SENDING = "sending", _("Sending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed for good")

    # No database constraint: the applier writes rows for the subscriptions it has cached, and a
    # subscription deleted meanwhile must not fail its transaction (the sender drops such rows).
    subscription = models.ForeignKey(
        WebhookSubscription,
        verbose_name=_("subscription"),
        on_delete=models.CASCADE,
        db_constraint=False,
        related_name="deliveries",
    )
    event_type = models.CharField(_("event"), max_length=32, choices=Event.choices)
    # Standard Webhooks' webhook-id: the same for every attempt, and for every subscription of the event
    # (receivers deduplicate by it).
    message_id = models.CharField(_("message ID"), max_length=100)
    payload = models.JSONField(_("payload"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(_("last answer's HTTP status"), null=True, blank=True)
    response_body = models.TextField(_("last answer"), blank=True, default="")
    error = models.TextField(_("last error"), blank=True, default="")

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-pk"]
        constraints = [
            # An event is delivered once per subscription, however often its cause is applied again.
            models.UniqueConstraint(fields=["subscription", "message_id"], name="uniq_webhook_delivery"),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "sending"]),
                name="webhook_delivery_due_idx",
            ),
            models.Index(fields=["message_id"], name="webhook_delivery_message_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id} → {self.subscription_id}"


class WebhookAttempt(models.Model):
    """One POST of a delivery and what the receiver answered (the admin's delivery log)."""

    delivery = models.ForeignKey(
        WebhookDelivery, verbose_name=_("delivery"), on_delete=models.CASCADE, related_name="attempt_log"
    )
    at = models.DateTimeField(_("time"), default=timezone.now)
    response_status = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    response_body = models.TextField(_("answer"), blank=True, default="")
    error = models.TextField(_("error"), blank=True, default="")
    duration_ms = models.PositiveIntegerField(_("duration, ms"), default=0)

    class Meta:
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.at:%Y-%m-%d %H:%M:%S} {self.response_status or self.error[:40]}"

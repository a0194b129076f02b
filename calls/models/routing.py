"""Click-to-call requests, routing decisions for parked calls, and the missed-call callback queue."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class DialRequest(models.Model):
    """One click on a number (click-to-call, guide §5.2): what was asked of MTT and what it answered.

    A click within ``CLICK_TO_CALL_DEDUPE_SECONDS`` of an earlier one by the same user on the same number
    does not make a row: it gets the earlier row's answer (see ``calls.dial``).
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Placing")
        PLACED = "placed", _("Placed")
        # The call may or may not have been placed (MTT did not answer in time): never repeated.
        UNKNOWN = "unknown", _("Unknown")
        FAILED = "failed", _("Failed")
        # Placed, but no call of that workplace to that number showed up in the notifications in time.
        EXPIRED = "expired", _("No call came")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="dial_requests",
    )
    # E.164, the key of the double-click rule.
    number = models.CharField(_("number"), max_length=32)
    # What makeCall got as calleid (CLICK_TO_CALL_NUMBER_FORMAT).
    dialled = models.CharField(_("dialled as"), max_length=32, blank=True, default="")
    workplace = models.ForeignKey(
        "integrations.Workplace",
        verbose_name=_("workplace"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    call = models.ForeignKey(
        "calls.Call",
        verbose_name=_("call"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="dial_requests",
    )
    mtt_call_id = models.CharField(_("MTT call ID"), max_length=255, blank=True, default="")
    # The answer given to the person (shown again to a second click): translated when it was made.
    message = models.TextField(_("answer"), blank=True, default="")
    code = models.CharField(_("code"), max_length=32, blank=True, default="")
    http_status = models.PositiveSmallIntegerField(_("HTTP status"), default=200)
    created_at = models.DateTimeField(_("clicked"), default=timezone.now)
    finished_at = models.DateTimeField(_("answered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("click-to-call request")
        verbose_name_plural = _("click-to-call requests")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["user", "number", "created_at"], name="dialrequest_user_number_idx"),
            # Matching a call's notifications to the click that placed it (calls.dial.dial_match_call).
            models.Index(fields=["workplace", "created_at"], name="dialrequest_workplace_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.number} ({self.get_status_display()})"


class RoutingDecision(models.Model):
    """What the CRM did with one parked leg (guide §5.4, §10.2): one row per leg, so a duplicate
    ``trying`` decides nothing twice. ``decision`` ends as what happened, ``reason`` says why."""

    class Decision(models.TextChoices):
        TRANSFER = "transfer", _("Transferred")
        RELEASE = "release", _("Released")
        TOO_LATE = "too_late", _("Too late")
        FAILED = "failed", _("Failed")

    class Reason(models.TextChoices):
        MANAGER_FREE = "manager_free", _("Personal manager free")
        MANAGER_BUSY = "manager_busy", _("Personal manager busy")
        MANAGER_NO_WORKPLACE = "manager_no_workplace", _("Personal manager without a workplace")
        NO_MANAGER = "no_manager", _("No personal manager")
        UNKNOWN_CLIENT = "unknown_client", _("Unknown client")
        BLOCKLIST = "blocklist", _("Number on the blocklist")
        OUTSIDE_HOURS = "outside_hours", _("Outside business hours")
        TRANSFER_REFUSED = "transfer_refused", _("MTT refused the transfer")

    call = models.ForeignKey(
        "calls.Call", verbose_name=_("call"), on_delete=models.CASCADE, related_name="routing_decisions"
    )
    leg = models.OneToOneField(
        "calls.CallLeg",
        verbose_name=_("parked leg"),
        on_delete=models.CASCADE,
        related_name="routing_decision",
    )
    decision = models.CharField(_("decision"), max_length=16, choices=Decision.choices)
    reason = models.CharField(_("reason"), max_length=32, choices=Reason.choices)
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("personal manager"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Kept as it was when deciding: the sentence must not change when the user is renamed or deleted.
    manager_name = models.CharField(_("personal manager's name"), max_length=300, blank=True, default="")
    target_workplace = models.ForeignKey(
        "integrations.Workplace",
        verbose_name=_("target workplace"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    target_sip_id = models.CharField(_("target SIP ID"), max_length=64, blank=True, default="")
    received_at = models.DateTimeField(_("notification received"))
    decided_at = models.DateTimeField(_("decided"))
    # Set by the sender that took the command (a conditional update: one sender per decision).
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    sent_at = models.DateTimeField(_("command sent"), null=True, blank=True)
    decision_ms = models.PositiveIntegerField(_("decision latency, ms"), default=0)
    # From the notification's arrival to the (last) command leaving for MTT.
    latency_ms = models.PositiveIntegerField(_("latency, ms"), null=True, blank=True)
    command = models.CharField(_("command"), max_length=64, blank=True, default="")
    mtt_answer = models.TextField(_("MTT's answer"), blank=True, default="")

    class Meta:
        verbose_name = _("routing decision")
        verbose_name_plural = _("routing decisions")
        ordering = ["-decided_at", "-pk"]
        indexes = [models.Index(fields=["decided_at"], name="routingdecision_decided_idx")]

    def __str__(self) -> str:
        return f"{self.get_decision_display()}: {self.get_reason_display()}"

    @property
    def cause_text(self) -> str:
        name = self.manager_name or "—"
        causes: dict[str, str] = {
            self.Reason.MANAGER_FREE: gettext("personal manager %(name)s free"),
            self.Reason.MANAGER_BUSY: gettext("personal manager %(name)s busy"),
            self.Reason.MANAGER_NO_WORKPLACE: gettext("personal manager %(name)s has no workplace"),
            self.Reason.NO_MANAGER: gettext("client without a personal manager"),
            self.Reason.UNKNOWN_CLIENT: gettext("unknown client"),
            self.Reason.BLOCKLIST: gettext("number on the blocklist"),
            self.Reason.OUTSIDE_HOURS: gettext("outside business hours"),
            self.Reason.TRANSFER_REFUSED: gettext("MTT refused the transfer to %(name)s"),
        }
        return causes.get(self.reason, self.reason) % {"name": name}

    @property
    def outcome_text(self) -> str:
        if self.decision == self.Decision.TRANSFER:
            target = (
                self.target_workplace.name if self.target_workplace and self.target_workplace.name else ""
            )
            return gettext("transferred to the workplace %(sip)s") % {
                "sip": f"{target} ({self.target_sip_id})" if target else self.target_sip_id
            }
        if self.decision == self.Decision.RELEASE:
            return gettext("released to the PBX's routing")
        if self.decision == self.Decision.TOO_LATE:
            return gettext("too late, nothing sent: the PBX routed the call itself")
        return gettext("failed (%(error)s): the PBX routed the call itself") % {
            "error": self.mtt_answer or "—"
        }

    @property
    def summary(self) -> str:
        """The reason in words: "personal manager Ivanova busy → released to the PBX's routing"."""
        return gettext("%(cause)s → %(outcome)s") % {"cause": self.cause_text, "outcome": self.outcome_text}

    @property
    def is_pending(self) -> bool:
        return self.sent_at is None and self.decision in (self.Decision.TRANSFER, self.Decision.RELEASE)


class CallbackTask(models.Model):
    """ "To call back": ONE open task per client number, made by missed incoming calls and closed by the
    first later call with that number that connects (either direction)."""

    # E.164 when the number is a phone number, else its digits as received.
    client_number = models.CharField(_("client number"), max_length=64)
    contact = models.ForeignKey(
        "contacts.Contact",
        verbose_name=_("contact"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="callback_tasks",
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assigned to"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="callback_tasks",
    )
    missed_count = models.PositiveIntegerField(_("number of missed calls"), default=0)
    first_missed_at = models.DateTimeField(_("first missed"))
    last_missed_at = models.DateTimeField(_("last missed"))
    missed_calls = models.ManyToManyField(
        "calls.Call", verbose_name=_("missed calls"), related_name="callback_tasks", blank=True
    )
    closed_at = models.DateTimeField(_("closed (client reached)"), null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("reached by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    closed_call = models.ForeignKey(
        "calls.Call",
        verbose_name=_("call that reached the client"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("callback task")
        verbose_name_plural = _("callback tasks")
        ordering = ["-last_missed_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["client_number"],
                condition=Q(closed_at__isnull=True),
                name="uniq_open_callback_per_number",
            ),
        ]
        indexes = [
            models.Index(
                fields=["assignee", "last_missed_at"],
                condition=Q(closed_at__isnull=True),
                name="callback_open_assignee_idx",
            ),
            # The reports' callbacks closed in a period, per operator.
            models.Index(
                fields=["closed_at"],
                include=["closed_by", "first_missed_at"],
                condition=Q(closed_at__isnull=False),
                name="callback_closed_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.client_number} ×{self.missed_count}"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

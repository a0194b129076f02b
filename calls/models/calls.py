"""The CRM's record of every call: Call (one conversation), CallLeg (one Call-ID), CallEvent (history)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ..words import leg_state_words


class Direction(models.TextChoices):
    INCOMING = "incoming", _("Incoming")
    OUTGOING = "outgoing", _("Outgoing")
    UNKNOWN = "unknown", _("Unknown")


# What the reports aggregate (covered by the report indexes below).
REPORT_COLUMNS = [
    "direction",
    "status",
    "answered_at",
    "line",
    "operator",
    "wait_seconds",
    "talk_seconds",
]


class Call(models.Model):
    """One conversation: the legs whose Call-IDs share the part before '~' (API.md)."""

    class Status(models.TextChoices):
        RINGING = "ringing", _("Ringing")
        IN_PROGRESS = "in_progress", _("In conversation")
        ANSWERED = "answered", _("Answered")
        MISSED = "missed", _("Missed")
        NOT_ANSWERED = "not_answered", _("Not answered")
        FINISHED = "finished", _("Finished")
        # Closed by the reconciliation (calls/reconcile.py): its last notifications never came.
        UNFINISHED = "unfinished", _("Ended, no notification")

    LIVE_STATUSES = (Status.RINGING, Status.IN_PROGRESS)
    MISSED_STATUSES = (Status.MISSED, Status.NOT_ANSWERED)

    integration = models.ForeignKey(
        "integrations.Integration",
        on_delete=models.CASCADE,
        related_name="calls",
        verbose_name=_("integration"),
    )
    call_key = models.CharField(_("call key"), max_length=255)
    direction = models.CharField(
        _("direction"), max_length=10, choices=Direction.choices, default=Direction.UNKNOWN
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RINGING)

    client_number = models.CharField(_("client number"), max_length=64, blank=True, default="", db_index=True)
    client_number_raw = models.CharField(
        _("client number as received"), max_length=255, blank=True, default=""
    )
    contact = models.ForeignKey(
        "contacts.Contact",
        verbose_name=_("contact"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="calls",
    )
    line = models.ForeignKey(
        "integrations.ExternalNumber",
        verbose_name=_("line"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="calls",
    )
    line_number = models.CharField(_("line number"), max_length=64, blank=True, default="")
    workplace = models.ForeignKey(
        "integrations.Workplace",
        verbose_name=_("workplace"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="calls",
    )
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("operator"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="calls",
    )
    # Who clicked "call" in the CRM (click-to-call), if anyone.
    initiated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("initiated by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="initiated_calls",
    )

    started_at = models.DateTimeField(_("started"), null=True, blank=True, db_index=True)
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    wait_seconds = models.PositiveIntegerField(_("wait, s"), null=True, blank=True)
    talk_seconds = models.PositiveIntegerField(_("talk, s"), null=True, blank=True)
    end_reason = models.CharField(_("end reason"), max_length=255, blank=True, default="")
    end_reason_code = models.CharField(_("end reason code"), max_length=32, blank=True, default="")

    # The wrap-up (calls/wrapup.py): what the call came to, in the operator's words.
    result = models.ForeignKey(
        "calls.CallResult",
        verbose_name=_("result"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="calls",
    )
    comment = models.TextField(_("comment"), blank=True, default="")
    wrapped_up_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("wrapped up by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    wrapped_up_at = models.DateTimeField(_("wrapped up"), null=True, blank=True)

    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("call")
        verbose_name_plural = _("calls")
        ordering = ["-started_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["integration", "call_key"], name="uniq_call_key"),
        ]
        indexes = [
            models.Index(fields=["status", "started_at"], name="call_status_started_idx"),
            # The call log's operator filter, and the reports' operator table (index-only).
            models.Index(
                fields=["operator", "started_at"],
                include=[c for c in REPORT_COLUMNS if c != "operator"],
                name="call_report_operator_idx",
            ),
            models.Index(fields=["contact", "started_at"], name="call_contact_started_idx"),
            # The desk's missed notices (calls.live.missed_cards_for_user): the recently ended missed calls.
            models.Index(
                fields=["ended_at"],
                condition=models.Q(status__in=["missed", "not_answered"]),  # MISSED_STATUSES
                name="call_missed_ended_idx",
            ),
            # The reports (calls.reports.selectors) read only these columns of a period's calls, all
            # lines or one: index-only scans on PostgreSQL (INCLUDE is ignored elsewhere).
            models.Index(fields=["started_at"], include=REPORT_COLUMNS, name="call_report_started_idx"),
            models.Index(
                fields=["line", "started_at"],
                # id too: the legs, callbacks and routing decisions of one line join to its calls.
                include=["id", *(c for c in REPORT_COLUMNS if c != "line")],
                name="call_report_line_idx",
            ),
        ]
        permissions = [
            ("view_reports", _("Can view call reports")),
            # calls.wrapup.user_may_change_wrap_up: a wrap-up once saved is its author's and the call's
            # operators'; this lets others (supervisors) change it too.
            ("change_others_wrap_up", _("Can change the wrap-up of a call one did not take")),
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.client_number or self.call_key}"

    @property
    def is_live(self) -> bool:
        return self.status in self.LIVE_STATUSES

    @property
    def is_missed(self) -> bool:
        return self.status in self.MISSED_STATUSES


class CallLeg(models.Model):
    """One leg (one Call-ID) and the facts its notifications established so far.

    Facts only ever accumulate (earliest time wins, flags only turn on), so applying the same
    notifications in any order, any number of times, leaves the same row.
    """

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="legs", verbose_name=_("call"))
    integration = models.ForeignKey(
        "integrations.Integration",
        on_delete=models.CASCADE,
        related_name="call_legs",
        verbose_name=_("integration"),
    )
    leg_id = models.CharField(_("Call-ID"), max_length=255)
    # Kept byte for byte: terminateCall/transferCall must echo them (the guide's tag has a Cyrillic letter).
    tag = models.TextField(_("tag"), blank=True, default="")
    transport_id = models.TextField(_("transport ID"), blank=True, default="")
    direction = models.CharField(
        _("direction"), max_length=10, choices=Direction.choices, default=Direction.UNKNOWN
    )
    # The leg that rings the company's external number (parked while parking is on), not an employee.
    is_line_leg = models.BooleanField(_("line leg"), default=False)

    caller_id = models.CharField(_("caller"), max_length=255, blank=True, default="")
    caller_account = models.CharField(_("caller account"), max_length=255, blank=True, default="")
    callee_id = models.CharField(_("callee"), max_length=255, blank=True, default="")
    callee_account = models.CharField(_("callee account"), max_length=255, blank=True, default="")
    callee_display_name = models.CharField(_("callee display name"), max_length=255, blank=True, default="")
    forwarders = models.JSONField(_("forwarded through"), default=list, blank=True)
    # field -> rank of the state its value came from: the earliest state's value wins whatever the
    # arrival order (the PBX writes the same number as +7… on trying and 7… on connected).
    field_ranks = models.JSONField(_("field ranks"), default=dict, blank=True, editable=False)
    workplace = models.ForeignKey(
        "integrations.Workplace",
        verbose_name=_("workplace"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="call_legs",
    )

    states = models.JSONField(_("states seen"), default=list, blank=True)
    last_state = models.CharField(_("last state"), max_length=16, blank=True, default="")
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    offered_at = models.DateTimeField(_("offered"), null=True, blank=True)
    connected_at = models.DateTimeField(_("connected"), null=True, blank=True)
    hidden_at = models.DateTimeField(_("withdrawn"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    duration = models.PositiveIntegerField(_("duration, s"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=255, blank=True, default="")
    reason_code = models.CharField(_("reason code"), max_length=32, blank=True, default="")
    first_seen_at = models.DateTimeField(_("first notification"), auto_now_add=True)

    class Meta:
        verbose_name = _("call leg")
        verbose_name_plural = _("call legs")
        ordering = ["call", "leg_id"]
        constraints = [
            models.UniqueConstraint(fields=["integration", "leg_id"], name="uniq_call_leg_id"),
        ]
        indexes = [
            # The reports' "offered to an operator, not taken" (calls.reports.selectors.missed_offers).
            models.Index(
                fields=["offered_at"],
                include=["workplace", "duration", "call"],
                condition=models.Q(offered_at__isnull=False, connected_at__isnull=True),
                name="callleg_missed_offer_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.leg_id

    @property
    def is_finished(self) -> bool:
        # A recording is made once the conversation is over: "recorded" before "finished" still ends it.
        return "finished" in self.states or "recorded" in self.states


class CallEvent(models.Model):
    """One applied notification on one leg: the call's history."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="events", verbose_name=_("call"))
    leg = models.ForeignKey(
        CallLeg, on_delete=models.CASCADE, related_name="events", verbose_name=_("call leg")
    )
    notification = models.OneToOneField(
        "integrations.NotificationEvent",
        verbose_name=_("notification"),
        on_delete=models.CASCADE,
        related_name="call_event",
    )
    state = models.CharField(_("state"), max_length=16)
    # startTime converted to UTC when the PBX sent one, else the time we received the notification.
    occurred_at = models.DateTimeField(_("time"))
    received_at = models.DateTimeField(_("received"))

    class Meta:
        verbose_name = _("call event")
        verbose_name_plural = _("call events")
        ordering = ["occurred_at", "pk"]

    def __str__(self) -> str:
        # The admin's title of an event and of its row in the call's page: MTT's state in words.
        return f"{self.leg_id}: {leg_state_words(self.state)}"

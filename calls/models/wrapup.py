"""What an operator records after a call (the wrap-up): the call's result, chosen from a list admins
edit, and follow-up tasks ("call this client back on Friday") with who does them and when."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class CallResult(models.Model):
    """One entry of the results list ("Продажа", "Консультация", …). Retired entries are deactivated,
    never deleted: calls keep pointing at them (PROTECT)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    position = models.IntegerField(_("position"), default=0, help_text=_("Smaller numbers come first."))
    is_active = models.BooleanField(
        _("offered to operators"), default=True, help_text=_("Inactive results stay on old calls.")
    )

    class Meta:
        verbose_name = _("call result")
        verbose_name_plural = _("call results")
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class FollowUpTask(models.Model):
    """A reminder to do something for a client at a given time, usually made in a call's wrap-up."""

    call = models.ForeignKey(
        "calls.Call",
        verbose_name=_("call"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="follow_ups",
    )
    contact = models.ForeignKey(
        "contacts.Contact",
        verbose_name=_("contact"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="follow_ups",
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assigned to"),
        on_delete=models.CASCADE,
        related_name="follow_ups",
    )
    due_at = models.DateTimeField(_("due"))
    note = models.TextField(_("what to do"), blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    done_at = models.DateTimeField(_("done"), null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("done by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = _("follow-up task")
        verbose_name_plural = _("follow-up tasks")
        ordering = ["due_at", "pk"]
        indexes = [
            # The tasks list and the desk's reminder: one person's open tasks by due time.
            models.Index(
                fields=["assignee", "due_at"], condition=Q(done_at__isnull=True), name="followup_open_idx"
            ),
        ]

    def __str__(self) -> str:
        # The admin's title: local time, as every page shows times.
        return f"{timezone.localtime(self.due_at):%d.%m.%Y %H:%M} {self.note[:40]}"

    @property
    def is_open(self) -> bool:
        return self.done_at is None

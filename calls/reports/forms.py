from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from integrations.models import ExternalNumber

from ..forms import LineChoiceField, day_field
from ..models import Call
from .selectors import MAX_DAYS, ReportScope

DEFAULT_PERIOD = "30d"
PERIODS = [
    ("today", _("Today")),
    ("7d", _("7 days")),
    ("30d", _("30 days")),
    ("custom", _("Custom")),
]
# Days before today that each preset starts (the period ends today, included).
PRESET_DAYS_BACK = {"today": 0, "7d": 6, "30d": 29}


class ReportFilterForm(forms.Form):
    """The dashboard's period (local days of TIME_ZONE) and line. An empty form is the default period."""

    period = forms.ChoiceField(label=_("Period"), choices=PERIODS, required=False, initial=DEFAULT_PERIOD)
    date_from = day_field(_("From"))
    date_to = day_field(_("To"))
    line = LineChoiceField(
        label=_("Line"),
        queryset=ExternalNumber.objects.order_by("number", "pk"),
        required=False,
        empty_label=_("All lines"),
    )

    def __init__(self, data: Any = None, *, today: date | None = None, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        self.today = today or timezone.localdate()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        period = data.get("period") or ""
        first, last = data.get("date_from"), data.get("date_to")
        if not period:
            period = "custom" if first or last else DEFAULT_PERIOD
            data["period"] = period
        if period != "custom":
            return data
        if self.errors:  # a date that did not parse already has its message
            return data
        if first is None or last is None:
            raise forms.ValidationError(_("Choose both dates of a custom period."), code="dates_missing")
        if last < first:
            raise forms.ValidationError(_("The end date is before the start date."), code="dates_reversed")
        if (last - first).days + 1 > MAX_DAYS:
            raise forms.ValidationError(
                _("A report covers at most %(days)d days: choose a shorter period."),
                code="period_too_long",
                params={"days": MAX_DAYS},
            )
        return data

    def scope(self, calls: QuerySet[Call] | None = None) -> ReportScope:
        """The period and line of a valid form (the default period for an unbound form), over ``calls``
        (the calls the user may see; None: every call)."""
        if not self.is_bound:
            return ReportScope(
                first_day=self.today - timedelta(days=PRESET_DAYS_BACK[DEFAULT_PERIOD]),
                last_day=self.today,
                calls=calls,
            )
        if not self.is_valid():
            raise ValueError("an invalid report form has no scope")
        data = self.cleaned_data
        line = data.get("line")
        line_id = line.pk if line is not None else None
        if data["period"] == "custom":
            return ReportScope(
                first_day=data["date_from"], last_day=data["date_to"], line_id=line_id, calls=calls
            )
        back = PRESET_DAYS_BACK[data["period"]]
        return ReportScope(
            first_day=self.today - timedelta(days=back), last_day=self.today, line_id=line_id, calls=calls
        )

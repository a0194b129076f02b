from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.db import models
from django.utils.translation import gettext_lazy as _

from contacts.access import users_visible_to
from contacts.people import PersonChoiceField
from contacts.phones import for_people
from integrations.models import ExternalNumber

from .dates import validate_day, validate_moment
from .models import Call, CallResult, Direction
from .selectors import CallFilters
from .wrapup import assignees_for, wrap_up_seen

PERIODS = [
    ("today", _("Today")),
    ("7d", _("7 days")),
    ("30d", _("30 days")),
    ("all", _("All time")),
    ("custom", _("Custom")),
]


def day_field(label: Any) -> forms.DateField:
    """An optional day of a period filter (a date picker), within calls.dates' range."""
    return forms.DateField(
        label=label, required=False, widget=forms.DateInput(attrs={"type": "date"}), validators=[validate_day]
    )


class LineChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    """A line (external number) chosen by its number written as the tables write it: +7 499 649-78-03."""

    def label_from_instance(self, obj: Any) -> str:
        return for_people(str(obj.number))


class CallFilterForm(forms.Form):
    period = forms.ChoiceField(label=_("Period"), choices=PERIODS, required=False)
    date_from = day_field(_("From"))
    date_to = day_field(_("To"))
    direction = forms.ChoiceField(
        label=_("Direction"),
        choices=[("", _("Any direction"))] + [c for c in Direction.choices if c[0] != Direction.UNKNOWN],
        required=False,
    )
    status = forms.ChoiceField(
        label=_("Status"), choices=[("", _("Any status")), *Call.Status.choices], required=False
    )
    operator = PersonChoiceField(
        label=_("Operator"),
        queryset=get_user_model()
        .objects.filter(is_active=True, workplace__isnull=False)
        .order_by("last_name"),
        required=False,
        empty_label=_("Any operator"),
    )
    line = LineChoiceField(
        label=_("Line"),
        queryset=ExternalNumber.objects.filter(is_active=True),
        required=False,
        empty_label=_("Any line"),
    )
    q = forms.CharField(label=_("Number or name"), required=False, max_length=100)

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        operator = self.fields["operator"]
        assert isinstance(operator, forms.ModelChoiceField)
        people = users_visible_to(user) if user is not None else None
        if people is not None:
            # Team mode: the operators whose calls the user may see (another team's are not offered, nor
            # named, and one sent anyway is a wrong choice).
            operator.queryset = operator.queryset.filter(pk__in=people)  # type: ignore[union-attr]

    def error_text(self) -> str:
        """The errors in words, each after its field's label (an export's 400 has no form to show)."""
        lines = []
        for name, messages in self.errors.items():
            label = f"{self.fields[name].label}: " if name in self.fields else ""
            lines += [f"{label}{message}" for message in messages]
        return "\n".join(lines)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError(_("The start date is after the end date."))
        return data

    def filters(self) -> CallFilters:
        """The filters of a valid form (an unbound one: the defaults). An invalid form has none: falling
        back to the defaults would list, or export, every call of the last 30 days as if filtered."""
        if not self.is_bound:
            return CallFilters()
        if not self.is_valid():
            raise ValueError("an invalid call filter has no filters")
        data = self.cleaned_data
        period = data.get("period") or ("custom" if data.get("date_from") or data.get("date_to") else "30d")
        return CallFilters(
            period=period,
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            direction=data.get("direction") or "",
            status=data.get("status") or "",
            operator_id=data["operator"].pk if data.get("operator") else None,
            line_id=data["line"].pk if data.get("line") else None,
            query=data.get("q") or "",
        )


class WrapUpForm(forms.Form):
    """The wrap-up of a call (the card after hang-up, the call's page): parsed here, validated and saved
    by ``calls.wrapup.call_wrap_up``."""

    result = forms.ModelChoiceField(
        label=_("Result"),
        queryset=CallResult.objects.none(),
        required=False,
        empty_label=_("— not chosen —"),
        # A result not in the list is one an admin retired (or deleted) after the form was opened: say so,
        # as the service and the API do, not Django's "Select a valid choice".
        error_messages={"invalid_choice": _("This result is no longer offered; choose another one.")},
    )
    comment = forms.CharField(label=_("Comment"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    follow_up_at = forms.DateTimeField(
        label=_("Follow up on"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        validators=[validate_moment],
    )
    follow_up_for = PersonChoiceField(
        label=_("Follow-up for"), queryset=get_user_model()._default_manager.none(), required=False
    )
    follow_up_note = forms.CharField(label=_("What to do"), required=False, max_length=2000)
    # The wrap-up this form was opened on (calls.wrapup.wrap_up_seen): a save over a newer one by someone
    # else is refused instead of overwriting it.
    seen = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, user: Any, call: Call, **kwargs: Any) -> None:
        # Labels without Django's ":" — as the same form reads on the desk's card.
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        results = CallResult.objects.filter(is_active=True)
        if call.result_id is not None:
            results = CallResult.objects.filter(models.Q(is_active=True) | models.Q(pk=call.result_id))
        result_field = self.fields["result"]
        assert isinstance(result_field, forms.ModelChoiceField)
        result_field.queryset = results.order_by("position", "name")
        people = self.fields["follow_up_for"]
        assert isinstance(people, forms.ModelChoiceField)
        # The empty choice is the user ("me"): listed once, not again by name (as the desk's card does).
        people.queryset = assignees_for(user).exclude(pk=user.pk)
        people.empty_label = _("me")
        if not self.is_bound:
            self.initial.setdefault("seen", wrap_up_seen(call))

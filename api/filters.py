"""The lists' filters (django-filter). A number is accepted in any format and normalised as the pages do."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from calls.dates import validate_moment
from calls.models import Call, CallbackTask, Direction, FollowUpTask, Recording
from calls.selectors import client_number_q
from contacts.models import Contact
from contacts.selectors import contacts_search, number_query, phone_number_lookup

# The largest id a bigint column holds: a bigger one is a 400, never a database error.
MAX_ID = 2**63 - 1


class IdFilter(django_filters.NumberFilter):
    """A row id: a whole number from 1 to MAX_ID (a 400 otherwise)."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class StrictBooleanField(forms.Field):
    """true/false (or 1/0); anything else is an error. Django's NullBooleanField reads every other value
    ("maybe", "yes", "on") as "not given", so the filter was silently dropped and the whole list answered."""

    widget = forms.TextInput

    def to_python(self, value: Any) -> bool | None:
        if value is None or value == "":
            return None
        text = str(value).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise ValidationError(_("Enter true or false."), code="invalid")


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class MomentFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 time (a day alone is its midnight), within calls.dates' range: a time near year 1 or
    9999 would overflow on its way to UTC in the query (a 500); it is a 400 with the field's error."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("validators", [validate_moment])
        super().__init__(*args, **kwargs)


class CallFilterForm(forms.Form):
    """A period that ends where or before it starts is a 400 in words, as on the call log's page (an empty
    list would read as "no calls then")."""

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        after, before = data.get("started_after"), data.get("started_before")
        if after is not None and before is not None and before <= after:
            self.add_error("started_before", _("started_before must be later than started_after."))
        return data


class CallFilter(django_filters.FilterSet):
    started_after = MomentFilter(
        field_name="started_at", lookup_expr="gte", help_text="Calls started at or after (ISO 8601)."
    )
    started_before = MomentFilter(
        field_name="started_at", lookup_expr="lt", help_text="Calls started before (ISO 8601)."
    )
    direction = django_filters.ChoiceFilter(choices=Direction.choices)
    status = django_filters.MultipleChoiceFilter(
        choices=Call.Status.choices, help_text="One or several statuses (repeat the parameter)."
    )
    operator = IdFilter(field_name="operator_id", help_text="User id of the operator.")
    line = IdFilter(field_name="line_id", help_text="Id of the company's line.")
    contact = IdFilter(field_name="contact_id")
    result = IdFilter(field_name="result_id", help_text="Id of the call's result.")
    number = django_filters.CharFilter(
        method="filter_number",
        help_text=(
            "The client's number in any format, whole or a part (as the call log's search): +79219462761, "
            "8 921 946-27-61, 8 921 946, 946-27."
        ),
    )

    class Meta:
        model = Call
        fields: list[str] = []
        form = CallFilterForm

    def filter_number(self, queryset: QuerySet[Call], name: str, value: str) -> QuerySet[Call]:
        # The contacts' reading of a number, whole or a part (`8 921 946`, `+7 (921)`, `… доб. 12`).
        number = number_query(value)
        if number is None:
            return queryset.none()
        return queryset.filter(client_number_q(number))


class ContactFilter(django_filters.FilterSet):
    number = django_filters.CharFilter(
        method="filter_number", help_text="A number in any format: the contact that has it."
    )
    q = django_filters.CharFilter(
        method="filter_search", help_text="Search by name, company, e-mail or part of a number."
    )
    personal_manager = IdFilter(field_name="personal_manager_id")

    class Meta:
        model = Contact
        fields: list[str] = []

    def filter_number(self, queryset: QuerySet[Contact], name: str, value: str) -> QuerySet[Contact]:
        # The same index probe as a call's lookup (contacts.selectors.phone_number_lookup).
        numbers = phone_number_lookup(number=value)
        if numbers is None:
            return queryset.none()
        return queryset.filter(pk__in=numbers.values("contact_id"))

    def filter_search(self, queryset: QuerySet[Contact], name: str, value: str) -> QuerySet[Contact]:
        return contacts_search(queryset=queryset, query=value.replace("\x00", "").strip()[:100])


class RecordingFilter(django_filters.FilterSet):
    call = IdFilter(field_name="call_id")
    status = django_filters.ChoiceFilter(choices=Recording.Status.choices)

    class Meta:
        model = Recording
        fields: list[str] = []


class CallbackTaskFilter(django_filters.FilterSet):
    open = StrictBooleanFilter(
        field_name="closed_at", lookup_expr="isnull", help_text="true: not reached yet; false: closed."
    )
    assignee = IdFilter(field_name="assignee_id")
    contact = IdFilter(field_name="contact_id")

    class Meta:
        model = CallbackTask
        fields: list[str] = []


class FollowUpTaskFilter(django_filters.FilterSet):
    open = StrictBooleanFilter(
        field_name="done_at", lookup_expr="isnull", help_text="true: not done yet; false: done."
    )
    assignee = IdFilter(field_name="assignee_id")
    call = IdFilter(field_name="call_id")
    contact = IdFilter(field_name="contact_id")
    due_before = MomentFilter(field_name="due_at", lookup_expr="lt", help_text="Tasks due before (ISO 8601).")

    class Meta:
        model = FollowUpTask
        fields: list[str] = []

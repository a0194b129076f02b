"""The admin's change lists and dates at the ends of the calendar.

Any column can be filtered from the query string (``?started_at__gte=…``, the date hierarchy's
``?started_at__year=…``). Django checks that a value parses when it builds the query, but turns it into
UTC only when the query runs, while the page renders: a time near year 1 or 9999 then overflows
(OverflowError, a 500) where the admin no longer catches anything. So the change list looks at the date
lookups first, and one past calls.dates' range gets the admin's own answer to a lookup it cannot use: a
redirect to ``?e=1`` ("incorrect lookup parameters"). ``changelist_view`` is the ModelAdmin view Django
documents for overriding.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.views.main import ERROR_FLAG
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict

from .admin_people import PeopleByNameMixin
from .admin_visibility import VisibleChoicesMixin
from .dates import FIRST_DAY, LAST_DAY, validate_day

# The lookups whose value is a date (or several, comma-separated: the admin's way for in and range).
_COMPARISONS = {"exact", "gt", "gte", "lt", "lte"}
_LISTS = {"in", "range"}


def _date_column(model: type[models.Model], path: list[str]) -> tuple[models.DateField, list[str]] | None:
    """The date or datetime column ``path`` names (across relations), with the lookups after it."""
    meta = model._meta
    for index, name in enumerate(path):
        try:
            field = meta.get_field(name)
        except FieldDoesNotExist:
            return None
        if isinstance(field, models.DateField):
            return field, path[index + 1 :]
        if not field.is_relation or field.related_model is None:
            return None
        meta = field.related_model._meta
    return None


def _in_range(field: models.DateField, lookups: list[str], value: str) -> bool:
    """False for a value past the range; True otherwise, also for one that does not parse (Django
    answers that itself, with the same redirect)."""
    if lookups[:1] in (["year"], ["iso_year"]):
        if lookups[1:] and lookups[1:] not in [[c] for c in _COMPARISONS]:
            return True
        try:
            year = int(value)
        except ValueError:
            return True
        return FIRST_DAY.year <= year <= LAST_DAY.year
    column: models.DateField = field
    if lookups[:1] == ["date"]:
        column, lookups = models.DateField(), lookups[1:]
    if len(lookups) > 1 or (lookups and lookups[0] not in _COMPARISONS | _LISTS):
        return True  # a transform (month, hour, …) or a lookup that takes no date: nothing to overflow
    values = value.split(",") if lookups and lookups[0] in _LISTS else [value]
    for text in values:
        try:
            day = column.to_python(text)
        except ValidationError:
            continue
        if day is None:
            continue
        try:
            validate_day(day)
        except ValidationError:
            return False
    return True


def date_lookups_in_range(model: type[models.Model], params: QueryDict) -> bool:
    """Whether every date that ``params`` (a change list's query string) compares a column with is in
    the range."""
    for key, values in params.lists():
        found = _date_column(model, key.split(LOOKUP_SEP))
        if found is None:
            continue
        field, lookups = found
        if not all(_in_range(field, lookups, value) for value in values):
            return False
    return True


class DateRangeMixin:
    """Makes a ModelAdmin's change list answer a date past the range as an incorrect lookup (``?e=1``)."""

    model: type[models.Model]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not date_lookups_in_range(self.model, request.GET):
            return HttpResponseRedirect(f"{request.path}?{ERROR_FLAG}=1")
        return super().changelist_view(request, extra_context)  # type: ignore[misc]


class DateRangeAdmin(PeopleByNameMixin, VisibleChoicesMixin, DateRangeMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """The ModelAdmin our apps' admins derive from (people by name too: calls.admin_people; the choices of
    calls, contacts and people as the user may see them: calls.admin_visibility)."""


def guard_every_change_list(site: admin.AdminSite = admin.site) -> None:
    """Gives the admins other apps registered (Django's users and groups, django-axes' login attempts,
    django-auditlog's trail, ...) the same answer: each is registered again as a subclass of its own
    class with the mixin. Runs once every admin module is imported (CallsConfig.ready, after the admin's
    autodiscover); uses only the site's documented register/unregister/get_model_admin."""
    for model in apps.get_models():
        if not site.is_registered(model):
            continue
        model_admin = site.get_model_admin(model)
        if isinstance(model_admin, DateRangeMixin):
            continue
        base = type(model_admin)
        guarded = type(f"DateRange{base.__name__}", (DateRangeMixin, base), {"__module__": base.__module__})
        site.unregister(model)
        site.register(model, guarded)

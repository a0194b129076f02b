"""People in the admin by their names: "Мария Иванова", not the login "ivanova".

Django's admin shows a user as ``str(user)``, the login, in list columns, in the filter of a foreign key
and in a read-only field, while our pages show the name. ``PeopleByNameMixin`` (part of every one of our
ModelAdmins, through ``DateRangeAdmin``) swaps each foreign key to the user model, as those three places
name it, for what shows the person's name (``person_name``: the full name, else the login), with the
field's own label. Only the documented hooks are used: ``get_list_display``, ``get_list_filter``,
``get_readonly_fields`` and ``get_fieldsets``, callables where Django accepts a field's name, and a
``RelatedFieldListFilter`` naming its choices (``field_choices``). An editable field stays Django's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.db import models
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from contacts.access import users_visible_to
from contacts.people import PersonChoiceField, person_name

from .admin_visibility import VisibleRawIdWidget


def _is_person(field: Any) -> bool:
    return (
        isinstance(field, models.ForeignKey)
        and field.related_model is not None
        and field.related_model._meta.label == settings.AUTH_USER_MODEL
    )


class PersonListFilter(admin.RelatedFieldListFilter):
    """A filter on a foreign key to the user model, its choices by name (sorted so)."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> Any:
        pks = [pk for pk, _label in super().field_choices(field, request, model_admin)]
        people = field.related_model._default_manager.filter(pk__in=pks)
        visible = users_visible_to(request.user)
        if visible is not None:
            # Team mode: the people the user sees, as the call log's operator filter (never another team's).
            people = people.filter(pk__in=visible)
        return sorted(((str(p.pk), person_name(p)) for p in people), key=lambda choice: choice[1].casefold())


class PersonRawIdWidget(VisibleRawIdWidget):
    """A raw id field of a user: the name next to the box, not the login (only of a person the user may
    see: calls.admin_visibility)."""

    def label_and_url_for_value(self, value: Any) -> tuple[str, str]:
        label, url = super().label_and_url_for_value(value)
        if not label:
            return label, url
        key = self.rel.get_related_field().name
        user = self.rel.model._default_manager.using(self.db).filter(**{key: value}).first()
        return (Truncator(person_name(user)).words(14) if user is not None else label), url


def _column(field: Any) -> Callable[[Any], str]:
    def show(obj: Any) -> str:
        return person_name(getattr(obj, field.name))

    show.__name__ = f"{field.name}_name"
    return admin.display(description=field.verbose_name, ordering=field.name, empty_value="—")(show)


def _readonly(field: Any) -> Callable[[Any], str]:
    def show(obj: Any) -> str:
        user = getattr(obj, field.name)
        if user is None:
            return "—"
        try:
            url = reverse(f"admin:{user._meta.app_label}_{user._meta.model_name}_change", args=[user.pk])
        except NoReverseMatch:
            return person_name(user)
        return format_html('<a href="{}">{}</a>', url, person_name(user))

    show.__name__ = f"{field.name}_name"
    return admin.display(description=field.verbose_name)(show)


class PeopleByNameMixin:
    """For a ModelAdmin (or an inline): people by name in its columns, filters and read-only fields."""

    model: type[models.Model]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        people = [f for f in self.model._meta.get_fields() if _is_person(f)]
        # The same callable on every call: Django compares the read-only fields with the form's by identity.
        self._person_columns = {f.name: _column(f) for f in people}
        self._person_readonly = {f.name: _readonly(f) for f in people}

    def get_list_display(self, request: HttpRequest) -> Any:
        shown = super().get_list_display(request)  # type: ignore[misc]
        editable = set(getattr(self, "list_editable", ()))  # a select there (formfield_for_foreignkey)
        return [
            self._person_columns[n]
            if isinstance(n, str) and n in self._person_columns and n not in editable
            else n
            for n in shown
        ]

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = super().get_list_filter(request)  # type: ignore[misc]
        return [
            (f, PersonListFilter) if isinstance(f, str) and f in self._person_columns else f for f in filters
        ]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if _is_person(db_field):
            kwargs.setdefault("form_class", PersonChoiceField)
            if db_field.name in getattr(self, "raw_id_fields", ()):
                site = self.admin_site  # type: ignore[attr-defined]
                widget = PersonRawIdWidget(db_field.remote_field, site, using=kwargs.get("using"))
                kwargs.setdefault("widget", widget)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def _names_person(self, entry: Any) -> bool:
        return isinstance(entry, str) and entry in self._person_columns

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.people_read_only(super().get_readonly_fields(request, obj))  # type: ignore[misc]

    def people_read_only(self, fields: Any) -> list[Any]:
        """``fields`` (read-only fields) with what shows each person among them by name. The field's name
        stays (it keeps the field off the form). An admin overriding ``get_readonly_fields`` without
        ``super()`` returns its list through this."""
        fields = list(fields)
        added = [self._person_readonly[n] for n in fields if self._names_person(n)]
        return fields + [f for f in added if f not in fields]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)  # type: ignore[misc]
        if obj is not None and not self.has_change_permission(request, obj):  # type: ignore[attr-defined]
            readonly = set(flatten_fieldsets(fieldsets))  # a page to view: every field is read-only
        else:
            shown = list(self.get_readonly_fields(request, obj))
            # Only where the page will show the callable (the read-only fields Django is given).
            readonly = {n for n in shown if self._names_person(n) and self._person_readonly[n] in shown}
        swapped = {self._person_readonly[n] for n in readonly if n in self._person_readonly}
        result = []
        for name, options in fieldsets:
            fields = [self._swap(entry, readonly, swapped) for entry in options.get("fields", ())]
            result.append((name, {**options, "fields": [f for f in fields if f is not None]}))
        return result

    def _swap(self, entry: Any, readonly: set[str], swapped: set[Any]) -> Any:
        if isinstance(entry, (list, tuple)):  # fields shown on one line
            line = [self._swap(e, readonly, swapped) for e in entry]
            return tuple(e for e in line if e is not None) or None
        if isinstance(entry, str) and entry in readonly and entry in self._person_readonly:
            return self._person_readonly[entry]
        if callable(entry) and entry in swapped:
            return None  # already in its field's place (Django's default fields list both)
        return entry

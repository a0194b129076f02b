"""The admin's choices of calls, contacts and people follow "who sees what" (README "Security model").

The lists of our admins show a staff user who is not a superuser only their teams' rows (team mode), but a
row's form is Django's: a foreign key to a call, a contact or a user accepts any id, and a raw-id box
names what an id typed into it is. So a team's staff user allowed to change, say, follow-up tasks could
read another team's client's name by typing its id, and link their rows to another team's calls, clients
or people. ``VisibleChoicesMixin`` (part of every ModelAdmin of ours, through ``DateRangeAdmin``) narrows
each such field of a row's form to what the user may see, plus what the row already holds (saving a row
unchanged never fails), and a raw-id box names only those (``VisibleRawIdWidget``). Documented hooks only:
``get_form`` and ``formfield_for_foreignkey``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest

from contacts.access import users_visible_to
from contacts.models import Contact

from .models import Call
from .visibility import calls_visible_to, contacts_visible_to


class VisibleRawIdWidget(ForeignKeyRawIdWidget):
    """A raw-id box that names the row only when it is one of ``shown`` (None: any)."""

    shown: QuerySet[Any] | None = None

    def label_and_url_for_value(self, value: Any) -> tuple[str, str]:
        if self.shown is not None and value not in (None, ""):
            key = self.rel.get_related_field().name
            try:
                if not self.shown.filter(**{key: value}).exists():
                    return "", ""
            except (TypeError, ValueError, ValidationError):
                return "", ""
        return super().label_and_url_for_value(value)  # type: ignore[no-any-return]


def visible_choices(user: Any, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
    """``queryset`` narrowed to what ``user`` may see when it is of calls, contacts or users and the user
    does not see everything; None: no narrowing."""
    model = queryset.model
    narrowed: QuerySet[Any]
    if model is Call:
        narrowed = calls_visible_to(user, queryset)
    elif model is Contact:
        narrowed = contacts_visible_to(user, queryset)
    elif model is get_user_model():
        people = users_visible_to(user)
        narrowed = queryset if people is None else queryset.filter(pk__in=people)
    else:
        return None
    return None if narrowed is queryset else narrowed


def _held(instance: Model, name: str, field: forms.Field) -> list[Any]:
    """The ids the row holds in ``name`` now (a saved row's foreign key or many-to-many)."""
    if instance.pk is None:
        return []
    if isinstance(field, forms.ModelMultipleChoiceField):
        try:
            return list(getattr(instance, name).values_list("pk", flat=True))
        except (AttributeError, ValueError):
            return []
    held = getattr(instance, f"{name}_id", None)
    return [] if held is None else [held]


def narrow_form_choices(form: forms.BaseForm, user: Any) -> None:
    instance = getattr(form, "instance", None)
    for name, field in form.fields.items():
        if not isinstance(field, forms.ModelChoiceField):  # ModelMultipleChoiceField is one too
            continue
        queryset = field.queryset
        if queryset is None:
            continue
        visible = visible_choices(user, queryset)
        if visible is None:
            continue
        held = _held(instance, name, field) if instance is not None else []
        field.queryset = queryset.filter(Q(pk__in=visible.values("pk")) | Q(pk__in=held))
        widget = getattr(field.widget, "widget", field.widget)  # inside Django's related-field wrapper
        if isinstance(widget, VisibleRawIdWidget):
            widget.shown = field.queryset


class VisibleChoicesMixin:
    """For a ModelAdmin: the row's form offers, accepts and names only the calls, contacts and people the
    user may see (and those the row holds already)."""

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name in getattr(self, "raw_id_fields", ()):
            site = self.admin_site  # type: ignore[attr-defined]
            kwargs.setdefault(
                "widget", VisibleRawIdWidget(db_field.remote_field, site, using=kwargs.get("using"))
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)  # type: ignore[misc]
        user = request.user
        if users_visible_to(user) is None:
            return form

        class VisibleChoicesForm(form):  # type: ignore[misc,valid-type]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                narrow_form_choices(self, user)

        VisibleChoicesForm.__name__ = form.__name__
        return VisibleChoicesForm

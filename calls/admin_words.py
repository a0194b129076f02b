"""Raw values of a column in words in the admin: a leg's state "connected" as "разговор", a click-to-call's
code "placed" as "звонок начат", an MTT event "callNotifications" as "звонок".

``words_column`` makes a ModelAdmin's method, named in ``list_display``, ``readonly_fields`` (and an
inline's ``fields``) in place of the field: the words, the field's label, sorted by the field.
``words_filter`` makes a ``SimpleListFilter`` (the documented way to a filter of one's own) choosing among
the values the rows hold, each in words. The raw value stays where debugging needs it: the stored body,
the exports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest


def _label(model: type[Model], name: str) -> Any:
    field = model._meta.get_field(name)
    return getattr(field, "verbose_name", name)


def words_column(model: type[Model], name: str, words: Callable[[str], str]) -> Callable[[Any, Any], str]:
    """A method of a ModelAdmin (assign it in the class body, name it where the field was)."""

    def show(model_admin: Any, obj: Any) -> str:
        value = getattr(obj, name)
        return words(value) if value else "—"

    show.__name__ = f"{name}_words"
    label = _label(model, name)
    return admin.display(description=label, ordering=name)(show)


def words_filter(model: type[Model], name: str, words: Callable[[str], str]) -> type[admin.SimpleListFilter]:
    label = _label(model, name)

    class WordsFilter(admin.SimpleListFilter):
        title = label
        parameter_name = name

        def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
            values = model_admin.get_queryset(request).order_by().values_list(name, flat=True).distinct()
            return sorted(((v, words(v)) for v in values if v), key=lambda choice: choice[1].casefold())

        def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
            value = self.value()
            return queryset.filter(**{name: value}) if value else queryset

    WordsFilter.__name__ = f"{name.title().replace('_', '')}WordsFilter"
    return WordsFilter

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Field, Model, QuerySet
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request
from rest_framework.views import APIView


class ApiCursorPagination(CursorPagination):
    """Newest first by id (ids only grow, never change): stable pages while rows are added.

    A cursor is the client's to send back, so it may come back altered: DRF checks that it decodes, and
    here its position must also be a value of the ordering field (an id within a bigint), or the answer is
    DRF's own "invalid cursor" 404 — never a database error when the position reaches the query.
    """

    ordering = "-pk"
    page_size_query_param = "page_size"
    max_page_size = 500

    def paginate_queryset(
        self, queryset: QuerySet[Any], request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        # decode_cursor() is given only the request: remember whose field the position is a value of.
        self.model: type[Model] = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request: Request) -> Cursor | None:
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        name = self.ordering[0].lstrip("-")
        meta = self.model._meta
        field = meta.pk if name == "pk" else meta.get_field(name)
        assert isinstance(field, Field)  # a column of the model: the ordering is ours, not the client's
        try:
            position = field.to_python(cursor.position)
            field.run_validators(position)
        except ValidationError:
            raise NotFound(self.invalid_cursor_message) from None
        return Cursor(offset=cursor.offset, reverse=cursor.reverse, position=position)

from __future__ import annotations

from rest_framework.pagination import CursorPagination


class ApiCursorPagination(CursorPagination):
    """Newest first by id (ids only grow, never change): stable pages while rows are added."""

    ordering = "-pk"
    page_size_query_param = "page_size"
    max_page_size = 500

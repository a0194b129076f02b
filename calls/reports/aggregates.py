"""Percentiles computed by the database, on PostgreSQL and (for the tests and `make run`) on SQLite.

- PostgreSQL: the ordered-set aggregate ``percentile_cont(p) WITHIN GROUP (ORDER BY x)`` through
  ``PercentileCont``: one GROUP BY query, any number of groups, an optional ``filter=Q(...)``.
- SQLite has no such aggregate. ``percentile_by_group`` then asks the database for the (at most two)
  rows of each group that the continuous percentile sits between — ``ROW_NUMBER()`` and ``COUNT(*)``
  windows partitioned by the group, ordered by the value, filtered on the row number (Django wraps the
  windowed query in a subquery) — and interpolates between those two values exactly as
  ``percentile_cont`` does: rank ``(n - 1) * p``, linear between its floor and ceiling. Python touches
  two rows per group, never the group's rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from contextvars import ContextVar
from datetime import timedelta
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from django.db import NotSupportedError, connection, transaction
from django.db.models import Aggregate, Count, Expression, F, FloatField, QuerySet, Window
from django.db.models.functions import RowNumber


def uses_percentile_cont() -> bool:
    return connection.vendor == "postgresql"


# Report queries group a period's calls (up to ~2 M rows for a year): on PostgreSQL they run with room
# to hash and sort in memory (the default 4 MB spills to disk) and without JIT compilation, which costs
# 100–200 ms per query at this size and gains nothing back. SET LOCAL: for the report's transaction only.
ANALYTIC_SETTINGS = {"work_mem": "64MB", "jit": "off"}

_in_analytic: ContextVar[bool] = ContextVar("in_analytic", default=False)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def analytic(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run a report selector in a transaction with ``ANALYTIC_SETTINGS`` (PostgreSQL; a no-op elsewhere)."""

    @wraps(function)
    def wrapped(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        if connection.vendor != "postgresql" or _in_analytic.get():
            return function(*args, **kwargs)  # elsewhere, or inside another report selector
        token = _in_analytic.set(True)
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(ANALYTIC_SETTINGS)),
                    [part for item in ANALYTIC_SETTINGS.items() for part in item],
                )
                return function(*args, **kwargs)
        finally:
            _in_analytic.reset(token)

    return wrapped


class PercentileCont(Aggregate):
    """PostgreSQL's continuous percentile (interpolated), e.g. ``PercentileCont("wait_seconds", 0.9)``.

    Over an interval (a ``DurationField`` expression) pass ``output_field=DurationField()``.
    """

    function = "percentile_cont"
    name = "PercentileCont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        fraction = float(fraction)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("a percentile is a fraction between 0 and 1")
        extra.setdefault("output_field", FloatField())
        # A float literal rendered by us: nothing from the request reaches the SQL text.
        super().__init__(expression, fraction=repr(fraction), **extra)

    def as_sql(self, compiler: Any, connection: Any, *args: Any, **extra_context: Any) -> Any:
        if connection.vendor != "postgresql":
            raise NotSupportedError("percentile_cont needs PostgreSQL; use percentile_by_group()")
        return super().as_sql(compiler, connection, *args, **extra_context)


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def percentile_by_group(
    queryset: QuerySet[Any], *, group: str, value: Expression | F, fraction: float
) -> dict[Hashable, float | None]:
    """{group value: the continuous percentile of ``value`` over the group's rows} (seconds for
    durations); a group with no rows is absent. Rows whose value is NULL must not count (as in SQL
    aggregates): a plain field (``F``) is filtered here, for an expression the caller's queryset must
    already exclude them."""
    rows = queryset.exclude(**_is_null(value))
    if uses_percentile_cont():
        found = rows.order_by().values(group).annotate(_pct=PercentileCont(value, fraction))
        return {row[group]: _seconds(row["_pct"]) for row in found}

    partition = [F(group)]
    ranked = rows.order_by().annotate(
        _value=value,
        _rank=Window(RowNumber(), partition_by=partition, order_by=[value.asc()]),  # type: ignore[union-attr]
        _count=Window(Count("pk"), partition_by=partition),
    )
    # The rows of 1-based rank floor(pos)+1 and ceil(pos)+1, pos = (n-1)p, picked inside the database:
    # for an integer r, r-1 >= floor(pos) <=> r > pos and r-1 <= ceil(pos) <=> r < pos + 2.
    rank_at = (F("_count") - 1) * fraction
    picked = ranked.filter(_rank__gt=rank_at, _rank__lt=rank_at + 2).values_list(
        group, "_rank", "_count", "_value"
    )
    pairs: dict[Hashable, dict[int, float]] = {}
    counts: dict[Hashable, int] = {}
    for key, rank, count, raw in picked:
        seconds = _seconds(raw)
        assert seconds is not None
        pairs.setdefault(key, {})[int(rank)] = seconds
        counts[key] = int(count)
    result: dict[Hashable, float | None] = {}
    for key, by_rank in pairs.items():
        position = (counts[key] - 1) * fraction
        lower = math.floor(position)
        upper = math.ceil(position)
        below = by_rank[lower + 1]
        above = by_rank.get(upper + 1, below)
        result[key] = below + (above - below) * (position - lower)
    return result


def _is_null(value: Expression | F) -> dict[str, bool]:
    name = getattr(value, "name", None)
    if isinstance(value, F) and name:
        return {f"{name}__isnull": True}
    return {}

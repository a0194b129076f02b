"""Calls by their wrap-up result (issue 16): how many answered calls of the period ended in each result,
and the share left without one.

Counted from the call table, never from the rollups: a result is set after the call (often minutes or
days later, from the call log) and may be changed, while the rollups' hours are final once built.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count
from django.utils.translation import gettext as _

from ...models import CallResult
from ..aggregates import analytic
from .scope import ReportScope, scope_calls


@dataclass(frozen=True)
class ResultRow:
    result_id: int | None  # None: the calls without a result
    name: str
    count: int
    share: float | None  # of the answered calls of the period; None when there are none


@analytic
def result_stats(scope: ReportScope) -> list[ResultRow]:
    """Answered calls (either direction) started in the period, by result: every active result (zeros
    included), any retired one that still has calls, then "No result"; each with its share."""
    answered = scope_calls(scope).filter(answered_at__isnull=False)
    counts = dict(answered.order_by().values_list("result_id").annotate(n=Count("pk")))
    total = sum(counts.values())
    shown = CallResult.objects.filter(is_active=True) | CallResult.objects.filter(
        pk__in=[k for k in counts if k]
    )
    rows = [
        ResultRow(r.pk, r.name, counts.get(r.pk, 0), counts.get(r.pk, 0) / total if total else None)
        for r in shown.distinct().order_by("position", "name")
    ]
    rows.append(
        ResultRow(None, _("No result"), counts.get(None, 0), counts.get(None, 0) / total if total else None)
    )
    return rows

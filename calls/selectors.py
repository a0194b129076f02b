"""Reads on calls: the filtered call log shared by the page and the CSV export."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from contacts.selectors import NumberQuery, number_q, number_query

from .models import Call
from .recordings.selectors import recordings_prefetch
from .routing import routing_decisions_prefetch


@dataclass(frozen=True)
class CallFilters:
    period: str = "30d"  # today | 7d | 30d | all | custom
    date_from: date | None = None
    date_to: date | None = None
    direction: str = ""
    status: str = ""
    operator_id: int | None = None
    line_id: int | None = None
    query: str = ""


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def period_bounds(filters: CallFilters) -> tuple[datetime | None, datetime | None]:
    today = timezone.localdate()
    if filters.period == "today":
        return _day_start(today), None
    if filters.period == "7d":
        return _day_start(today - timedelta(days=6)), None
    if filters.period == "30d":
        return _day_start(today - timedelta(days=29)), None
    if filters.period == "custom":
        start = _day_start(filters.date_from) if filters.date_from else None
        end = _day_start(filters.date_to + timedelta(days=1)) if filters.date_to else None
        return start, end
    return None, None


def client_number_q(number: NumberQuery) -> Q:
    """The calls whose client number matches ``number`` (``contacts.selectors.number_q``): the E.164 we
    store, or the number as received when it is not a phone number. The call log's search and the API's."""
    return number_q(number, e164_field="client_number", digits_fields=("client_number_raw",))


def call_list(*, filters: CallFilters, calls: QuerySet[Call] | None = None) -> QuerySet[Call]:
    """The call log: ``calls`` (default: every call) filtered, newest first, with what the page shows."""
    qs = (
        (calls if calls is not None else Call.objects.all())
        .select_related("contact", "operator", "workplace", "line", "result")
        .prefetch_related(recordings_prefetch(), routing_decisions_prefetch())
    )
    start, end = period_bounds(filters)
    if start is not None:
        qs = qs.filter(started_at__gte=start)
    if end is not None:
        qs = qs.filter(started_at__lt=end)
    if filters.direction:
        qs = qs.filter(direction=filters.direction)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.operator_id:
        qs = qs.filter(operator_id=filters.operator_id)
    if filters.line_id:
        qs = qs.filter(line_id=filters.line_id)
    query = filters.query.strip()
    if query:
        condition = Q(contact__name__icontains=query) | Q(contact__company__icontains=query)
        # A number, whole or a part, in every format the contacts' search reads (`8 921 946`, `+7 (921)`,
        # `946-27`, `… доб. 12`): the same reading and the same matching, on the call's client number.
        number = number_query(query)
        if number is not None:
            condition |= client_number_q(number)
        qs = qs.filter(condition)
    return qs.order_by("-started_at", "-pk")


def call_list_for_contact(*, contact_id: int) -> QuerySet[Call]:
    return (
        Call.objects.filter(contact_id=contact_id)
        .select_related("contact", "operator", "workplace", "line", "result")
        .prefetch_related(recordings_prefetch(), routing_decisions_prefetch())
        .order_by("-started_at", "-pk")
    )


def call_active_for_user(*, user_id: int) -> QuerySet[Call]:
    return Call.objects.filter(operator_id=user_id, status__in=Call.LIVE_STATUSES)

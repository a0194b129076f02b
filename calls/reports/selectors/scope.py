"""What a report covers (``ReportScope``) and the definitions every figure shares.

Definitions (how ``calls.services._summarise`` and ``calls.callbacks`` set the fields):

- A call belongs to the period when it *started* in it (``Call.started_at``, local days and hours of
  ``TIME_ZONE``: a day is [00:00, 24:00) Moscow time), and to a line when ``Call.line`` is it.
- *Incoming answered*: ``direction = incoming`` and ``answered_at`` set — some leg connected (or, with
  forwarding outside, finished with a talk duration, guide §6.1); a call still in conversation counts.
- *Incoming missed*: ``direction = incoming`` and ``status = missed`` — every leg finished and none
  connected: nobody answered. Calls still ringing are neither answered nor missed.
- *Outgoing*: ``direction = outgoing``, whatever the outcome (``not_answered`` included).
- *Missed share*: missed / (answered + missed) incoming calls; ``None`` when there were none.
- *Wait*: ``Call.wait_seconds`` — from the call's start to the answer (parking, IVR and ringing included).
- *Talk*: ``Call.talk_seconds`` of answered calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from django.db.models import DurationField, ExpressionWrapper, F, Q, QuerySet
from django.utils import timezone

from ...models import Call, Direction

# The longest period a report covers (a custom period is refused beyond it).
MAX_DAYS = 366
WAIT_PERCENTILE = 0.9

# Calls are counted as COUNT(started_at) — never NULL inside a period — rather than COUNT(id): every
# column the call aggregates read is in the report indexes (Call.Meta), so PostgreSQL answers them with
# index-only scans, without visiting the table.
CALL = "started_at"

INCOMING = Q(direction=Direction.INCOMING)
ANSWERED_IN = Q(direction=Direction.INCOMING, answered_at__isnull=False)
MISSED_IN = Q(direction=Direction.INCOMING, status=Call.Status.MISSED)
OUTGOING = Q(direction=Direction.OUTGOING)
ANSWERED_ANY = Q(answered_at__isnull=False)

# Time to callback: from the client's FIRST missed call to the connected call that closed the task.
# The first miss, not the last: the client has been waiting for us since then, and each new attempt
# by the client must not reset the clock (measuring from the last miss would reward not calling back
# until the client gives up calling).
CALLBACK_DELAY = ExpressionWrapper(F("closed_at") - F("first_missed_at"), output_field=DurationField())

Span = tuple[datetime, datetime]  # [start, end)


@dataclass(frozen=True)
class ReportScope:
    """Local days ``first_day`` … ``last_day`` (both included) and one line (``None``: every line).

    ``calls`` is the set of calls the report may count — what the user may see — given by the view;
    ``None`` is every call. Only the unrestricted set is pre-aggregated (``rollups``): a restricted one
    is counted from the call tables.
    """

    first_day: date
    last_day: date
    line_id: int | None = None
    calls: QuerySet[Call] | None = field(default=None, compare=False, repr=False)

    @property
    def tz(self) -> tzinfo:
        return timezone.get_default_timezone()

    def day_start(self, day: date) -> datetime:
        return timezone.make_aware(datetime.combine(day, time.min), self.tz)

    @property
    def start(self) -> datetime:
        return self.day_start(self.first_day)

    @property
    def end(self) -> datetime:
        """Exclusive: the local midnight after the last day."""
        return self.day_start(self.last_day + timedelta(days=1))

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def hourly(self) -> bool:
        """One day is charted per hour, longer periods per day."""
        return self.first_day == self.last_day

    def buckets(self) -> list[date] | list[datetime]:
        """Every bucket of the period, in order: local dates, or local starts of hours for one day
        (counted in UTC, so a day with a DST change has its 23 or 25 hours)."""
        if not self.hourly:
            return [self.first_day + timedelta(days=i) for i in range(self.days)]
        start, end = self.start.astimezone(UTC), self.end.astimezone(UTC)
        hours = int((end - start).total_seconds() // 3600)
        return [(start + timedelta(hours=i)).astimezone(self.tz) for i in range(hours)]

    def base_calls(self) -> QuerySet[Call]:
        return (self.calls if self.calls is not None else Call.objects.all()).order_by()


def span_q(spans: Iterable[Span], field_name: str = "started_at") -> Q:
    """``field_name`` inside any of the spans (an empty list matches nothing)."""
    condition = Q(pk__in=[])
    for start, end in spans:
        condition |= Q(**{f"{field_name}__gte": start, f"{field_name}__lt": end})
    return condition


def scope_calls(scope: ReportScope, spans: Iterable[Span] | None = None) -> QuerySet[Call]:
    """The scope's calls started in ``spans`` (default: the whole period), on its line if it has one."""
    spans = [(scope.start, scope.end)] if spans is None else list(spans)
    qs = scope.base_calls()
    if len(spans) == 1:
        qs = qs.filter(started_at__gte=spans[0][0], started_at__lt=spans[0][1])
    else:
        qs = qs.filter(span_q(spans))
    if scope.line_id is not None:
        qs = qs.filter(line_id=scope.line_id)
    return qs

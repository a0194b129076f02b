"""Pre-aggregated report data (rollups), rebuilt from the call tables by ``calls.reports.rollups``.

Imported by ``calls.models`` (the package), so these are models of the ``calls`` app.

Every row is a sum over the calls (legs, routing decisions) of one bucket. Nothing writes these tables
but the rebuild, which deletes a range and inserts it again from the source tables in one transaction:
the applier never touches them. Each table has the grain its reports need, so that a year stays small:

- ``CallHourRollup``: UTC hour × line × direction × outcome (with the hour's local weekday and hour of
  the day) — calls per hour of one day, and the weekday / hour-of-day grids of any period;
- ``CallDayRollup``: local day (``TIME_ZONE``) × line × direction × outcome, with a histogram of the
  wait — the summary, calls per day, the line table;
- ``OperatorDayRollup``: local day × line × operator — the operator table's calls, with the histogram;
- ``OfferDayRollup``: local day × line × workplace — offers not taken (the operator is the workplace's
  operator when the report is read, as in the exact query);
- ``CallbackDayRollup``: local day × operator × line (and "all lines") — callbacks closed, with a
  histogram of the time to callback;
- ``RoutingDayRollup``: local day × line × decision — routing outcomes.

Why not one table per hour × line × operator × direction × outcome: at 5,000 calls a day and 40
operators that grain has about 0.65 rows per call (1.2 M rows for a year of bench/reports.py), and
adding it up is as slow as counting the calls. Each table above has the coarsest grain its reports
need: a year is 3 k–130 k rows.

The *outcome* of a call is its ``status`` and whether it was ``answered`` (``answered_at`` set): exactly
what the report definitions read (``calls.reports.selectors.scope``). A new dimension of the call (its
result, once calls carry one) is one field on ``CallKey`` — named like the ``Call`` field it copies —
and one migration: the rebuild groups by every field of ``CallKey`` (``rollups.call_key_columns``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = [
    "CALLBACK_BUCKETS",
    "CALLBACK_FIELDS",
    "WAIT_BUCKETS",
    "WAIT_FIELDS",
    "CallDayRollup",
    "CallHourRollup",
    "CallbackDayRollup",
    "OfferDayRollup",
    "OperatorDayRollup",
    "ReportRollupState",
    "RoutingDayRollup",
]

# Lower edges (seconds) of the wait histogram's buckets; the last one is open-ended. One-second buckets
# below 10 s, then about a tenth of the value wide: a percentile read from it is within half a bucket of
# the exact one in practice, a whole bucket at worst (README "Reports").
WAIT_BUCKETS: tuple[int, ...] = (
    *range(0, 10),  # 1 s
    *range(10, 20, 2),
    *range(20, 60, 5),
    *range(60, 120, 10),
    *range(120, 300, 30),
    *range(300, 600, 60),
    *range(600, 1800, 300),
    1800,
    3600,
)
WAIT_FIELDS: tuple[str, ...] = tuple(f"wait_b{i:02d}" for i in range(len(WAIT_BUCKETS)))

# Lower edges (seconds) of the time-to-callback histogram: a minute wide at first, then about a quarter
# of the value (a median within ~12 % in practice).
CALLBACK_BUCKETS: tuple[int, ...] = (
    0, 60, 120, 180, 300, 420, 600, 900, 1200, 1800, 2400, 3600, 4800, 6000, 7200, 9000, 10800, 14400,
    18000, 21600, 28800, 36000, 43200, 57600, 72000, 86400, 108000, 129600, 172800, 216000, 259200,
    345600, 432000, 518400, 604800, 864000, 1209600, 1814400, 2592000,
)  # fmt: skip
CALLBACK_FIELDS: tuple[str, ...] = tuple(f"delay_b{i:02d}" for i in range(len(CALLBACK_BUCKETS)))


class CallKey(models.Model):
    """The call's own dimensions every call rollup keeps (each named like the Call field it copies)."""

    line = models.ForeignKey(
        "integrations.ExternalNumber",
        verbose_name=_("line"),
        on_delete=models.SET_NULL,  # as Call.line: the line's calls then count under "no line"
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        abstract = True


class CallDimensions(CallKey):
    """And its outcome."""

    direction = models.CharField(_("direction"), max_length=10)
    status = models.CharField(_("status"), max_length=16)
    answered = models.BooleanField(_("answered"))

    class Meta:
        abstract = True


class CallMeasures(models.Model):
    """Additive figures of the bucket's calls: counts and sums (averages are sum / count)."""

    calls = models.PositiveIntegerField(_("calls"), default=0)
    # Calls with a wait / talk time, and its sum in seconds (AVG ignores NULLs: so does sum / count).
    wait_count = models.PositiveIntegerField(default=0)
    wait_sum = models.PositiveBigIntegerField(default=0)
    talk_count = models.PositiveIntegerField(default=0)
    talk_sum = models.PositiveBigIntegerField(default=0)

    class Meta:
        abstract = True


class CallHourRollup(CallDimensions, CallMeasures):
    hour = models.DateTimeField(_("hour"))  # the UTC start of the hour
    # The hour's local ISO weekday (1 = Monday) and hour of the day in TIME_ZONE, so that the grids of a
    # year group small integers instead of converting 8,760 timestamps per query.
    local_weekday = models.PositiveSmallIntegerField(_("weekday"))
    local_hour = models.PositiveSmallIntegerField(_("hour of the day"))

    class Meta:
        verbose_name = _("calls per hour (report rollup)")
        verbose_name_plural = _("calls per hour (report rollup)")
        indexes = [
            models.Index(fields=["hour"], name="rollup_hour_idx"),
            models.Index(fields=["line", "hour"], name="rollup_hour_line_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 {self.direction} {self.status}: {self.calls}"


def _histogram(fields: tuple[str, ...], edges: tuple[int, ...]) -> dict[str, models.Field]:
    return {
        name: models.PositiveIntegerField(default=0, help_text=f"{edge} s and more")
        for name, edge in zip(fields, edges, strict=True)
    }


class CallDayRollup(CallDimensions, CallMeasures):
    day = models.DateField(_("day"))  # a local day of TIME_ZONE

    class Meta:
        verbose_name = _("calls per day (report rollup)")
        verbose_name_plural = _("calls per day (report rollup)")
        indexes = [
            models.Index(fields=["day"], name="rollup_day_idx"),
            models.Index(fields=["line", "day"], name="rollup_day_line_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.direction} {self.status}: {self.calls}"


class OperatorDayRollup(CallKey):
    day = models.DateField(_("day"))  # a local day of TIME_ZONE
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("operator"), on_delete=models.CASCADE, related_name="+"
    )
    calls = models.PositiveIntegerField(_("calls"), default=0)  # any call with this operator
    taken = models.PositiveIntegerField(_("calls taken"), default=0)  # incoming answered
    outgoing = models.PositiveIntegerField(_("outgoing"), default=0)
    wait_count = models.PositiveIntegerField(default=0)  # of the calls taken
    wait_sum = models.PositiveBigIntegerField(default=0)
    talk_count = models.PositiveIntegerField(default=0)  # of all answered calls
    talk_sum = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = _("operator calls per day (report rollup)")
        verbose_name_plural = _("operator calls per day (report rollup)")
        indexes = [
            models.Index(fields=["day"], name="rollup_operator_day_idx"),
            models.Index(fields=["line", "day"], name="rollup_operator_line_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.operator_id}: {self.calls}"


# wait_b00 … : how many of the row's calls waited WAIT_BUCKETS[i] s or more (and less than the next
# edge); filled for answered incoming calls, the ones the wait percentiles are about.
for _model in (CallDayRollup, OperatorDayRollup):
    for _name, _field in _histogram(WAIT_FIELDS, WAIT_BUCKETS).items():
        _model.add_to_class(_name, _field)


class CallbackDayRollup(models.Model):
    """Callback tasks closed per local day (of ``closed_at``) and operator (``closed_by``): one row for
    all lines (``all_lines``) and one per line of the task's missed calls (a task with missed calls on
    two lines counts under each, once in all lines), as ``selectors.operators.closed_callbacks``."""

    day = models.DateField(_("day"))
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    all_lines = models.BooleanField(_("all lines"))
    line = models.ForeignKey(
        "integrations.ExternalNumber", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    closed = models.PositiveIntegerField(_("callbacks closed"), default=0)

    class Meta:
        verbose_name = _("callbacks per day (report rollup)")
        verbose_name_plural = _("callbacks per day (report rollup)")
        indexes = [models.Index(fields=["day"], name="rollup_callback_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.closed_by_id}: {self.closed}"


# delay_b00 … : how many of the row's callbacks came CALLBACK_BUCKETS[i] s or more after the first miss.
for _name, _field in _histogram(CALLBACK_FIELDS, CALLBACK_BUCKETS).items():
    CallbackDayRollup.add_to_class(_name, _field)


class OfferDayRollup(models.Model):
    day = models.DateField(_("day"))  # local day of the leg's offered_at
    line = models.ForeignKey(
        "integrations.ExternalNumber", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    workplace = models.ForeignKey(
        "integrations.Workplace", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    offers = models.PositiveIntegerField(_("offered, not taken"), default=0)

    class Meta:
        verbose_name = _("offers not taken per day (report rollup)")
        verbose_name_plural = _("offers not taken per day (report rollup)")
        indexes = [models.Index(fields=["day"], name="rollup_offer_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.workplace_id}: {self.offers}"


class RoutingDayRollup(models.Model):
    day = models.DateField(_("day"))  # local day of decided_at
    line = models.ForeignKey(
        "integrations.ExternalNumber", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decision = models.CharField(_("decision"), max_length=16)
    decisions = models.PositiveIntegerField(_("decisions"), default=0)

    class Meta:
        verbose_name = _("routing decisions per day (report rollup)")
        verbose_name_plural = _("routing decisions per day (report rollup)")
        indexes = [models.Index(fields=["day"], name="rollup_routing_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.decision}: {self.decisions}"


class ReportRollupState(models.Model):
    """One row: the rollups hold every hour in [built_from, built_until) (UTC hour boundaries, local
    midnights when the rebuild started at one). Reports read the rollups inside that range and the call
    tables outside it, so a report is right whether or not the rollups are current."""

    built_from = models.DateTimeField(_("rolled up from"))
    built_until = models.DateTimeField(_("rolled up until"))
    time_zone = models.CharField(_("time zone of the local days"), max_length=64)
    rebuilt_at = models.DateTimeField(_("last rebuilt"), auto_now=True)

    class Meta:
        verbose_name = _("report rollup state")
        verbose_name_plural = _("report rollup state")

    def __str__(self) -> str:
        return f"{self.built_from:%Y-%m-%d %H:%M} – {self.built_until:%Y-%m-%d %H:%M} UTC"

"""Pre-aggregated report data (rollups), rebuilt from the call tables by ``calls.reports.rollups``.

Imported at the end of ``calls.models`` (one star import), so these are models of the ``calls`` app.

Every row is a sum over the calls (legs, routing decisions) of one bucket. Nothing writes these tables
but the rebuild, which deletes a range and inserts it again from the source tables in one transaction:
the applier never touches them. Each table has the grain its reports need, so that a year stays small:

- ``CallHourRollup``: UTC hour × line × direction × outcome — calls per hour of one day, and the local
  hour of the day / weekday grids of any period;
- ``CallDayRollup``: local day (``TIME_ZONE``) × line × operator × direction × outcome, with a histogram
  of the wait — the summary, calls per day, the line and operator tables;
- ``OfferDayRollup``: local day × line × workplace — offers not taken (the operator is the workplace's
  operator when the report is read, as in the exact query);
- ``RoutingDayRollup``: local day × line × decision — routing outcomes.

The *outcome* of a call is its ``status`` and whether it was ``answered`` (``answered_at`` set): exactly
what the report definitions read (``calls.reports.selectors.scope``). A new dimension (the call's result,
once calls carry one) is one field on ``CallDimensions`` and one migration; the rebuild groups by every
field of it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = [
    "WAIT_BUCKETS",
    "WAIT_FIELDS",
    "CallDayRollup",
    "CallHourRollup",
    "OfferDayRollup",
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


class CallDimensions(models.Model):
    """What a call rollup row is about, besides its time bucket."""

    line = models.ForeignKey(
        "integrations.ExternalNumber",
        verbose_name=_("line"),
        on_delete=models.SET_NULL,  # as Call.line: the line's calls then count under "no line"
        null=True,
        blank=True,
        related_name="+",
    )
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

    class Meta:
        verbose_name = _("calls per hour (report rollup)")
        verbose_name_plural = _("calls per hour (report rollup)")
        indexes = [
            models.Index(fields=["hour"], name="rollup_hour_idx"),
            models.Index(fields=["line", "hour"], name="rollup_hour_line_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 {self.direction} {self.status}: {self.calls}"


def _wait_histogram() -> dict[str, models.Field]:
    return {
        name: models.PositiveIntegerField(default=0, help_text=f"waits of {edge} s and more")
        for name, edge in zip(WAIT_FIELDS, WAIT_BUCKETS, strict=True)
    }


class CallDayRollup(CallDimensions, CallMeasures):
    day = models.DateField(_("day"))  # a local day of TIME_ZONE
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("operator"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = _("calls per day (report rollup)")
        verbose_name_plural = _("calls per day (report rollup)")
        indexes = [
            models.Index(fields=["day"], name="rollup_day_idx"),
            models.Index(fields=["line", "day"], name="rollup_day_line_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.direction} {self.status}: {self.calls}"


# wait_b00 … : how many of the row's calls waited WAIT_BUCKETS[i] s or more (and less than the next
# edge); filled for answered incoming calls, the ones the wait percentiles are about.
for _name, _field in _wait_histogram().items():
    CallDayRollup.add_to_class(_name, _field)


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

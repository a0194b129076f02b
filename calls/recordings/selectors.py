"""Reads on recordings: what the call log and the call page show (the screen pop reads its own, in
calls.realtime.cards)."""

from __future__ import annotations

from django.db.models import Prefetch

from ..models import Recording


def recordings_prefetch() -> Prefetch:
    """For call lists: ``.prefetch_related(recordings_prefetch())`` so templates and the CSV export
    read ``call.recordings.all`` without a query per call."""
    return Prefetch("recordings", queryset=Recording.objects.order_by("created_at", "pk"))

"""Reads on recordings: what the call log, the call page and the screen pop show."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from ..models import Call, Recording


def stored_recordings() -> QuerySet[Recording]:
    return Recording.objects.filter(status=Recording.Status.STORED).order_by("created_at", "pk")


def recordings_prefetch() -> Prefetch:
    """For call lists: ``.prefetch_related(recordings_prefetch())`` so templates and the CSV export
    read ``call.recordings.all`` without a query per call."""
    return Prefetch("recordings", queryset=Recording.objects.order_by("created_at", "pk"))


def recording_url_for(call: Call) -> str | None:
    """The playback URL (path, no host) of the call's first stored recording, None if none.

    Uses the prefetched ``recordings`` when the caller prefetched them, else one query.
    """
    cache = getattr(call, "_prefetched_objects_cache", {})
    if "recordings" in cache:
        first = next((r for r in call.recordings.all() if r.status == Recording.Status.STORED), None)
        return first.get_absolute_url() if first else None
    if call.pk is None:
        return None
    first_pk = stored_recordings().filter(call_id=call.pk).values_list("pk", flat=True).first()
    return Recording(pk=first_pk).get_absolute_url() if first_pk else None

"""The recordings sweep (requeues, stale claims, expiry warnings) and retention, and their beat schedule."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from calls.models import Recording
from calls.recordings.services import recording_download, recordings_apply_retention, recordings_sweep
from calls.tasks import download_recording, recordings_retention, sweep_recordings
from integrations.models import Integration
from sandbox.testing import RunningSandbox
from tests.calls import recording_fixtures as shared
from tests.calls.recording_fixtures import make_recording, media_path

# The shared fixtures, under their names (autouse: production-like settings).
recordings_settings = shared.recordings_settings
record_host = shared.record_host

pytestmark = pytest.mark.django_db


# --- the sweep and retention ---------------------------------------------------------------------


def test_sweep_requeues_missing_flags_expiring_and_gives_up_on_long_expired(
    record_host: RunningSandbox, integration: Integration
) -> None:
    now = timezone.now()
    url = record_host.url + "/records/sweep-{}.mp3"
    never_tried = make_recording(integration, url.format(1), call_key="c1")
    Recording.objects.filter(pk=never_tried.pk).update(created_at=now - timedelta(minutes=10))
    just_created = make_recording(integration, url.format(2), call_key="c2")
    expiring = make_recording(
        integration,
        url.format(3),
        call_key="c3",
        status=Recording.Status.FAILED,
        mtt_expires_at=now + timedelta(days=3),
    )
    stored_soon = make_recording(
        integration,
        url.format(4),
        call_key="c4",
        status=Recording.Status.STORED,
        mtt_expires_at=now + timedelta(days=1),
    )
    long_gone = make_recording(
        integration, url.format(5), call_key="c5", mtt_expires_at=now - timedelta(days=30)
    )

    result = recordings_sweep(now=now)

    assert result.requeue == [never_tried.pk]
    assert result.flagged == 1
    assert result.given_up == 1
    assert Recording.objects.get(pk=expiring.pk).expiring_soon
    assert not Recording.objects.get(pk=stored_soon.pk).expiring_soon
    assert not Recording.objects.get(pk=just_created.pk).expiring_soon
    assert Recording.objects.get(pk=long_gone.pk).status == Recording.Status.EXPIRED

    # The beat task enqueues what the sweep found; the download clears the flag when it stores.
    Recording.objects.filter(pk=never_tried.pk).update(mtt_expires_at=now + timedelta(days=2))
    recordings_sweep(now=now)
    assert Recording.objects.get(pk=never_tried.pk).expiring_soon
    assert sweep_recordings() == 1
    stored = Recording.objects.get(pk=never_tried.pk)
    assert stored.status == Recording.Status.STORED
    assert not stored.expiring_soon


def test_sweep_reclaims_only_stale_claims(integration: Integration) -> None:
    now = timezone.now()
    stale = make_recording(
        integration, "https://r.mtt.ru/1.mp3", call_key="c1", status=Recording.Status.DOWNLOADING
    )
    alive = make_recording(
        integration, "https://r.mtt.ru/2.mp3", call_key="c2", status=Recording.Status.DOWNLOADING
    )
    Recording.objects.filter(pk=stale.pk).update(claimed_at=now - timedelta(hours=1))
    Recording.objects.filter(pk=alive.pk).update(claimed_at=now - timedelta(minutes=5))
    assert recordings_sweep(now=now).reclaimed == 1
    assert Recording.objects.get(pk=stale.pk).status == Recording.Status.PENDING
    assert Recording.objects.get(pk=alive.pk).status == Recording.Status.DOWNLOADING


def test_retention_deletes_old_files(
    record_host: RunningSandbox, integration: Integration, settings: Any
) -> None:
    old = make_recording(integration, record_host.url + "/records/old.mp3", call_key="c1")
    new = make_recording(integration, record_host.url + "/records/new.mp3", call_key="c2")
    for recording in (old, new):
        assert recording_download(recording_id=recording.pk) == Recording.Status.STORED
    Recording.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    old.refresh_from_db()

    assert recordings_retention() == 0  # RECORDINGS_KEEP_DAYS empty: keep forever
    assert media_path(old.storage_key).exists()

    settings.RECORDINGS_KEEP_DAYS = 30
    assert recordings_retention() == 1
    old.refresh_from_db()
    assert old.status == Recording.Status.DELETED
    assert old.deleted_at is not None
    assert not media_path(old.storage_key).exists()
    assert media_path(Recording.objects.get(pk=new.pk).storage_key).exists()
    assert recordings_apply_retention() == 0  # idempotent


def test_beat_schedule_has_the_sweep_and_daily_retention() -> None:
    from django.conf import settings as django_settings

    from mttcrm.celery import app

    schedule = django_settings.CELERY_BEAT_SCHEDULE
    assert schedule["recordings-sweep"]["task"] == sweep_recordings.name
    assert schedule["recordings-retention"]["task"] == recordings_retention.name
    assert {sweep_recordings.name, recordings_retention.name, download_recording.name} <= set(app.tasks)

"""Where recordings are kept and what they are: the storage key, a storage that is not a file system, and the
mp3 recognition and duration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import storages
from django.utils import timezone

from calls.models import Recording
from calls.recordings import mp3
from calls.recordings.services import recording_download
from integrations.models import Integration
from sandbox.testing import RunningSandbox
from tests.calls import recording_fixtures as shared
from tests.calls.recording_fixtures import MP3_BYTES, make_recording

# The shared fixtures, under their names (autouse: production-like settings).
recordings_settings = shared.recordings_settings
record_host = shared.record_host

pytestmark = pytest.mark.django_db


def test_storage_key_is_deterministic(integration: Integration) -> None:
    from calls.recordings.storage import recording_storage_key

    at = timezone.now()
    one = recording_storage_key(received_at=at, name="a/../b c@d", source_url="https://x.mtt.ru/1.mp3")
    assert one == recording_storage_key(
        received_at=at, name="a/../b c@d", source_url="https://x.mtt.ru/1.mp3"
    )
    assert one != recording_storage_key(
        received_at=at, name="a/../b c@d", source_url="https://x.mtt.ru/2.mp3"
    )
    assert "/../" not in one and " " not in one


# --- other storages ------------------------------------------------------------------------------


def test_non_filesystem_storage_gets_the_whole_file(
    record_host: RunningSandbox, integration: Integration, settings: Any
) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "recordings": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    recording = make_recording(integration, record_host.url + "/records/s3.mp3")
    assert recording_download(recording_id=recording.pk) == Recording.Status.STORED
    recording.refresh_from_db()
    storage = storages["recordings"]
    with storage.open(recording.storage_key, "rb") as fh:
        assert fh.read() == MP3_BYTES
    # Again (a row never updated after an upload): the key is overwritten, not suffixed.
    Recording.objects.filter(pk=recording.pk).update(status=Recording.Status.PENDING)
    assert recording_download(recording_id=recording.pk) == Recording.Status.STORED
    recording.refresh_from_db()
    assert recording.storage_key.endswith(".mp3") and storage.exists(recording.storage_key)
    assert not Path(settings.MEDIA_ROOT).exists()


# --- mp3 parsing ---------------------------------------------------------------------------------


def test_mp3_recognition_and_duration(tmp_path: Path) -> None:
    assert mp3.looks_like_mp3(MP3_BYTES[:4])
    assert mp3.looks_like_mp3(b"ID3\x04\x00\x00\x00\x00\x00\x00")
    assert not mp3.looks_like_mp3(b"<html>")
    assert not mp3.looks_like_mp3(b"\xff\xff\xff\xff")  # invalid bitrate/layer bits
    header = mp3.parse_frame_header(MP3_BYTES[:4])
    assert header is not None
    assert (header.mpeg1, header.layer, header.bitrate_kbps, header.sample_rate, header.mono) == (
        False,
        3,
        32,
        22050,
        True,
    )
    # An ID3v2 tag in front is skipped (size is a synchsafe integer).
    tag = b"ID3\x04\x00\x00" + bytes([0, 0, 1, 0]) + b"\x00" * 128
    path = tmp_path / "tagged.mp3"
    path.write_bytes(tag + MP3_BYTES)
    with path.open("rb") as fh:
        assert mp3.duration_seconds(fh, path.stat().st_size) == pytest.approx(9.404, abs=0.01)
    path.write_bytes(tag + b"no audio here" * 10)
    with path.open("rb") as fh:
        assert mp3.duration_seconds(fh, path.stat().st_size) is None

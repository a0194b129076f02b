"""Recordings end to end: `recorded` through the real notify URL, the sandbox serving the mp3, the worker
task copying it into storage; duplicates, several recordings of a call, and the order of arrival."""

from __future__ import annotations

import copy
import hashlib
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from calls.models import Call, CallLeg, Recording
from calls.tasks import download_recording
from integrations.models import Integration, NotificationEvent
from sandbox.testing import RunningSandbox
from tests.calls import payloads as p
from tests.calls import recording_fixtures as shared
from tests.calls.recording_fixtures import (
    GUIDE_CALL_ID,
    GUIDE_RECORD_PATH,
    MP3_BYTES,
    Notify,
    leftovers,
    media_path,
    recorded_body,
)

# The shared fixtures, under their names (autouse: production-like settings).
recordings_settings = shared.recordings_settings
record_host = shared.record_host

pytestmark = pytest.mark.django_db


# --- the guide's fixture end to end --------------------------------------------------------------


def test_guide_recorded_fixture_end_to_end(
    notify: Notify, record_host: RunningSandbox, settings: Any, integration: Integration
) -> None:
    url = record_host.url + GUIDE_RECORD_PATH
    notify(recorded_body(url))

    recording = Recording.objects.get()
    assert recording.status == Recording.Status.STORED, recording.failure_reason
    assert recording.source_url == url
    assert recording.call == Call.objects.get(call_key=GUIDE_CALL_ID)
    assert recording.leg == CallLeg.objects.get(leg_id=GUIDE_CALL_ID)
    assert recording.leg_call_id == GUIDE_CALL_ID
    assert recording.notification == NotificationEvent.objects.get()
    assert recording.size == len(MP3_BYTES)
    assert recording.sha256 == hashlib.sha256(MP3_BYTES).hexdigest()
    assert recording.duration_seconds == pytest.approx(len(MP3_BYTES) * 8 / 32000, abs=0.01)
    assert recording.content_type == "audio/mpeg"
    assert recording.attempts == 1
    assert recording.stored_at is not None
    assert recording.failure_reason == ""
    received = recording.notification.received_at
    assert recording.mtt_expires_at == received + timedelta(days=90)
    # recordings/YYYY/MM/DD/<call key, sanitised>-<hash>.mp3
    day = timezone.localtime(received)
    assert recording.storage_key.startswith(f"recordings/{day:%Y/%m/%d}/SDvapac01-3bd7d743")
    assert recording.storage_key.endswith(".mp3")
    assert "@" not in recording.storage_key
    assert media_path(recording.storage_key).read_bytes() == MP3_BYTES
    assert record_host.state.record_downloads == [GUIDE_RECORD_PATH]
    assert leftovers(settings) == []


def test_duplicate_recorded_downloads_once(
    notify: Notify, record_host: RunningSandbox, integration: Integration
) -> None:
    url = record_host.url + "/records/2024/01/02/dup.mp3"
    body = recorded_body(url)
    notify(body)
    notify(body)  # resent as is: the inbox stores it once
    doubled = copy.deepcopy(body)
    doubled["result"]["callInfo"]["extra"] = "mobile app"  # doubled by the MTT app (guide §6.5)
    notify(doubled)

    assert NotificationEvent.objects.count() == 2
    recording = Recording.objects.get()
    assert recording.status == Recording.Status.STORED
    assert record_host.state.record_downloads == ["/records/2024/01/02/dup.mp3"]
    # And running the task again does nothing either.
    assert download_recording.delay(recording.pk).get() == Recording.Status.STORED
    assert len(record_host.state.record_downloads) == 1


def test_a_call_may_have_several_recordings(
    notify: Notify, record_host: RunningSandbox, integration: Integration
) -> None:
    notify(recorded_body(record_host.url + "/records/a/1.mp3"))
    notify(recorded_body(record_host.url + "/records/a/2.mp3"))
    call = Call.objects.get()
    recordings = list(call.recordings.all())
    assert [r.status for r in recordings] == [Recording.Status.STORED] * 2
    assert recordings[0].storage_key != recordings[1].storage_key


# --- order of arrival ----------------------------------------------------------------------------


def _staff_leg_recorded(url: str, base: str = p.BASE) -> dict[str, Any]:
    return recorded_body(url, call_id=f"{base}~2o", account=p.WP_INCOMING)


def test_recorded_before_finished(
    notify: Notify, record_host: RunningSandbox, directory: dict[str, Any]
) -> None:
    notes = p.incoming_answered()
    url = record_host.url + "/records/early.mp3"
    for body in notes[:4]:  # trying, trying, showing, connected
        notify(body)
    notify(_staff_leg_recorded(url))
    for body in notes[4:]:  # both legs finished after the recording
        notify(body)

    call = Call.objects.get()
    recording = Recording.objects.get()
    assert recording.call == call
    assert recording.leg == CallLeg.objects.get(leg_id=f"{p.BASE}~2o")
    assert recording.status == Recording.Status.STORED
    assert call.status == Call.Status.ANSWERED
    assert call.operator == directory["ivanova"]
    assert call.talk_seconds == 42


def test_recorded_before_the_call_exists(
    notify: Notify, record_host: RunningSandbox, directory: dict[str, Any]
) -> None:
    url = record_host.url + "/records/first.mp3"
    notify(_staff_leg_recorded(url))
    first = Recording.objects.get()
    assert first.call is not None and first.call.call_key == p.BASE
    assert first.leg is not None and first.leg.leg_id == f"{p.BASE}~2o"

    for body in p.incoming_answered():
        notify(body)

    assert Call.objects.count() == 1
    call = Call.objects.get()
    recording = Recording.objects.get()
    assert recording.call == call and recording.leg.leg_id == f"{p.BASE}~2o"
    assert call.legs.count() == 2
    assert call.status == Call.Status.ANSWERED
    assert call.operator == directory["ivanova"]
    assert recording.status == Recording.Status.STORED


def test_recorded_before_the_outgoing_call(
    notify: Notify, record_host: RunningSandbox, directory: dict[str, Any]
) -> None:
    notify(recorded_body(record_host.url + "/records/out.mp3", call_id=p.OUT_ID, account=p.WP_OUTGOING))
    for body in p.outgoing(answered=True):
        notify(body)
    call = Call.objects.get()
    assert call.status == Call.Status.ANSWERED
    assert Recording.objects.get().call == call


def test_recorded_without_a_link_creates_nothing(notify: Notify, integration: Integration) -> None:
    body = recorded_body("")
    notify(body)
    assert Recording.objects.count() == 0
    assert Call.objects.count() == 1  # the notification itself is applied

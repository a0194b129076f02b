"""Recording downloads that fail: transient errors retried, permanent ones and expiry, connections dropped
and workers killed mid-download, and eight workers at once (PostgreSQL) downloading once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from calls.models import Recording
from calls.recordings import download
from calls.recordings.services import recording_download
from calls.recordings.storage import StagedFile
from calls.tasks import download_recording, sweep_recordings
from integrations.models import Integration
from sandbox.testing import RunningSandbox
from tests.calls import recording_fixtures as shared
from tests.calls.recording_fixtures import (
    MP3_BYTES,
    Notify,
    allow_local,
    leftovers,
    make_recording,
    media_path,
    recorded_body,
)

# The shared fixtures, under their names (autouse: production-like settings).
recordings_settings = shared.recordings_settings
record_host = shared.record_host
eager_retries = shared.eager_retries

pytestmark = pytest.mark.django_db


# --- retries and permanent failures --------------------------------------------------------------


@pytest.mark.usefixtures("eager_retries")
def test_503_is_retried_then_succeeds(
    notify: Notify, record_host: RunningSandbox, integration: Integration
) -> None:
    path = "/records/flaky.mp3"
    record_host.control("POST", "faults", {"path": path, "status": 503, "count": 2})
    notify(recorded_body(record_host.url + path))
    recording = Recording.objects.get()
    assert recording.status == Recording.Status.STORED
    assert recording.attempts == 3
    assert record_host.state.record_downloads == [path] * 3


def test_429_and_timeouts_are_transient(
    record_host: RunningSandbox, integration: Integration, settings: Any
) -> None:
    path = "/records/slow.mp3"
    recording = make_recording(integration, record_host.url + path)
    record_host.control("POST", "faults", {"path": path, "status": 429, "count": 1})
    with pytest.raises(download.RecordingTransientError, match="HTTP 429"):
        recording_download(recording_id=recording.pk)
    recording.refresh_from_db()
    assert recording.status == Recording.Status.PENDING
    assert "429" in recording.failure_reason

    settings.RECORDINGS_READ_TIMEOUT = 0.3
    record_host.control("POST", "faults", {"path": path, "delay": 1.0, "count": 1})
    with pytest.raises(download.RecordingTransientError, match="ReadTimeout"):
        recording_download(recording_id=recording.pk)
    recording.refresh_from_db()
    assert recording.status == Recording.Status.PENDING
    assert recording.attempts == 2

    assert recording_download(recording_id=recording.pk) == Recording.Status.STORED


def test_404_is_permanent(notify: Notify, record_host: RunningSandbox, integration: Integration) -> None:
    path = "/records/missing.mp3"
    record_host.control("POST", "faults", {"path": path, "status": 404, "count": 5})
    notify(recorded_body(record_host.url + path))
    recording = Recording.objects.get()
    # Within MTT's 90 days a 404 is a failure to look at, not an expiry.
    assert recording.status == Recording.Status.FAILED
    assert "HTTP 404" in recording.failure_reason
    assert record_host.state.record_downloads == [path]  # never retried


def test_404_after_mtt_keep_period_and_410_mean_expired(
    record_host: RunningSandbox, integration: Integration
) -> None:
    old = make_recording(
        integration, record_host.url + "/records/old.mp3", mtt_expires_at=timezone.now() - timedelta(days=1)
    )
    record_host.control("POST", "faults", {"path": "/records/old.mp3", "status": 404})
    assert recording_download(recording_id=old.pk) == Recording.Status.EXPIRED
    gone = make_recording(integration, record_host.url + "/records/gone.mp3", call_key="call-2")
    record_host.control("POST", "faults", {"path": "/records/gone.mp3", "status": 410})
    assert recording_download(recording_id=gone.pk) == Recording.Status.EXPIRED
    gone.refresh_from_db()
    assert "410" in gone.failure_reason


@pytest.mark.usefixtures("eager_retries")
def test_retries_run_out_then_the_sweep_finishes_it(
    notify: Notify, record_host: RunningSandbox, integration: Integration, settings: Any
) -> None:
    path = "/records/down.mp3"
    record_host.control("POST", "faults", {"path": path, "status": 502, "count": 100})
    notify(recorded_body(record_host.url + path))  # the task gives up after its retries (logged)
    recording = Recording.objects.get()
    assert recording.status == Recording.Status.PENDING
    assert recording.attempts == 7  # 1 + max_retries
    assert "HTTP 502" in recording.failure_reason

    record_host.control("DELETE", "faults")
    assert sweep_recordings() == 0  # tried moments ago: not yet
    Recording.objects.update(last_attempt_at=timezone.now() - timedelta(hours=2))
    assert sweep_recordings() == 1
    recording.refresh_from_db()
    assert recording.status == Recording.Status.STORED
    assert recording.failure_reason == ""


# --- interruptions -------------------------------------------------------------------------------


@pytest.fixture
def dropping_server(settings: Any) -> Iterator[dict[str, Any]]:
    """Serves the mp3 but drops the connection half-way through the first ``drops`` requests."""
    state: dict[str, Any] = {"drops": 1, "requests": 0}

    def app(environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        state["requests"] += 1
        if state["requests"] <= state["drops"]:

            def half() -> Iterator[bytes]:
                yield MP3_BYTES[: len(MP3_BYTES) // 2]
                raise ConnectionResetError("dropped mid-stream")

            headers = [("Content-Type", "audio/mpeg"), ("Content-Length", str(len(MP3_BYTES)))]
            start_response("200 OK", headers)
            return half()
        return Response(MP3_BYTES, mimetype="audio/mpeg")(request.environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    allow_local(settings, url)
    state["url"] = url
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.usefixtures("eager_retries")
def test_connection_dropped_mid_stream_is_retried_and_leaves_no_partial_file(
    dropping_server: dict[str, Any], integration: Integration, settings: Any
) -> None:
    recording = make_recording(integration, dropping_server["url"] + "/records/drop.mp3")
    assert download_recording.delay(recording.pk).get() == Recording.Status.STORED
    recording.refresh_from_db()
    assert dropping_server["requests"] == 2
    assert recording.attempts == 2
    assert media_path(recording.storage_key).read_bytes() == MP3_BYTES
    assert leftovers(settings) == []


class _Killed(BaseException):
    """Stands for SIGKILL: nothing of ours runs after it (no cleanup, no status update)."""


def test_worker_killed_mid_download_is_finished_by_the_next_attempt(
    record_host: RunningSandbox, integration: Integration, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = make_recording(integration, record_host.url + "/records/killed.mp3")
    real_fetch = download.fetch_recording

    class DiesAfter:
        def __init__(self, out: Any) -> None:
            self.out, self.written = out, 0

        def write(self, chunk: bytes) -> None:
            self.out.write(chunk)
            self.written += len(chunk)
            if self.written > 10_000:
                raise _Killed

        def flush(self) -> None:
            self.out.flush()

    def killed_fetch(url: str, *, out: Any, **kwargs: Any) -> Any:
        return real_fetch(url, out=DiesAfter(out), **kwargs)

    monkeypatch.setattr("calls.recordings.services.fetch_recording", killed_fetch)
    monkeypatch.setattr(StagedFile, "discard", lambda self: None)  # a killed process cleans nothing
    with pytest.raises(_Killed):
        recording_download(recording_id=recording.pk)
    # What a dead worker leaves: a claim and a half-written temporary file, no final file.
    Recording.objects.filter(pk=recording.pk).update(
        status=Recording.Status.DOWNLOADING, claimed_at=timezone.now() - timedelta(hours=1)
    )
    assert len(leftovers(settings)) == 1
    assert not media_path(recording.storage_key).exists()
    monkeypatch.undo()
    allow_local(settings, record_host.url)  # monkeypatch.undo() does not touch the settings fixture

    # Another task does nothing while the claim may still be alive...
    assert recording_download(recording_id=recording.pk, claim_token="other-task") == "downloading"
    # ...the sweep takes the stale claim back and re-queues it; the next attempt finishes the job.
    assert sweep_recordings() == 1
    recording.refresh_from_db()
    assert recording.status == Recording.Status.STORED
    assert media_path(recording.storage_key).read_bytes() == MP3_BYTES
    assert leftovers(settings) == []


def test_the_same_task_delivered_again_takes_back_its_own_claim(
    record_host: RunningSandbox, integration: Integration
) -> None:
    recording = make_recording(integration, record_host.url + "/records/again.mp3")
    Recording.objects.filter(pk=recording.pk).update(
        status=Recording.Status.DOWNLOADING, claimed_at=timezone.now(), claimed_by="task-1"
    )
    assert recording_download(recording_id=recording.pk, claim_token="task-2") == "downloading"
    assert recording_download(recording_id=recording.pk, claim_token="task-1") == Recording.Status.STORED


# --- concurrency (PostgreSQL) --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_eight_workers_at_once_download_once(
    postgres_only: None, record_host: RunningSandbox, integration: Integration, settings: Any
) -> None:
    from tests.concurrency import at_once

    path = "/records/race.mp3"
    recording = make_recording(integration, record_host.url + path)
    # A slow first byte keeps the winner's claim open while the others try.
    record_host.control("POST", "faults", {"path": path, "delay": 0.3})
    results = at_once(
        [lambda i=i: recording_download(recording_id=recording.pk, claim_token=f"task-{i}") for i in range(8)]
    )
    assert results.count(Recording.Status.STORED) == 1
    assert set(results) == {Recording.Status.STORED, Recording.Status.DOWNLOADING}
    assert record_host.state.record_downloads == [path]
    recording.refresh_from_db()
    assert recording.status == Recording.Status.STORED
    assert recording.attempts == 1
    assert media_path(recording.storage_key).read_bytes() == MP3_BYTES
    assert leftovers(settings) == []

"""Recordings against the realistic sandbox: record links behind the Bearer token that answer 401 to an
old token, served as application/octet-stream, counted in the integration's 5 requests/s (guide §6.7,
§7.6, §10.1.3) — and a sweep of downloads that must not delay routing commands."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from calls.models import Recording
from calls.recordings.errors import RecordingTransientError
from calls.recordings.services import recording_download
from integrations.applier import applier_drain
from integrations.models import Integration
from integrations.mtt.client import MttClient
from integrations.mtt.errors import MttRateLimited
from sandbox.testing import RunningSandbox, running_receiver, running_sandbox
from tests.calls import recording_fixtures as shared
from tests.calls.recording_fixtures import MP3_BYTES, allow_local, make_recording, media_path
from tests.mtt_sandbox import connect

recordings_settings = shared.recordings_settings

RECORDS = frozenset({"records_need_token", "records_rate_limited", "octet_stream_records"})


@pytest.fixture(autouse=True)
def _own_limiter_keys(settings: Any) -> None:
    settings.MTT_RATE_LIMIT_KEY_PREFIX = f"test-records:{uuid.uuid4().hex}:"


@pytest.fixture
def realistic(settings: Any) -> Iterator[RunningSandbox]:
    with running_sandbox(step_delay=0.01, auto_click_to_call=False, mode="realistic") as sandbox:
        allow_local(settings, sandbox.url)
        yield sandbox


@pytest.mark.django_db
def test_a_recording_behind_a_401_is_stored_after_a_refresh(
    realistic: RunningSandbox, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    mtt = connect(realistic, django_capture_on_commit_callbacks)
    # The token the CRM holds is dead at MTT (expired early, or ended by a refresh elsewhere).
    realistic.control("POST", "expire-tokens")
    with running_receiver() as rx:
        started = realistic.control("POST", "scenario", {"scenario": "recorded", "notify_url": rx.url})
        bodies = rx.wait_for(started["notifications"])
    assert len(bodies) == 2 and bodies[0] == bodies[1]  # the quirk "copies"
    for body in bodies:
        response = client.post(mtt.notify_path, json.dumps(body), content_type="application/json")
        assert response.status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        applier_drain()

    recording = Recording.objects.get()
    assert recording.status == Recording.Status.STORED, recording.failure_reason
    assert recording.content_type == "application/octet-stream"  # the bytes decided it is an mp3
    assert media_path(recording.storage_key).read_bytes() == MP3_BYTES
    log = realistic.control("GET", "requests")
    assert [r["status"] for r in log if r["path"].startswith("/records/")] == [401, 200]
    assert [r["json"] for r in log if r["path"] == "/oauth/token"] == [{"grant_type": "refresh_token"}]
    mtt.refresh_from_db()
    assert realistic.state.client_for_access_token(mtt.access_token) == mtt.client_id


@pytest.mark.django_db(transaction=True)
def test_a_sweep_of_100_downloads_never_delays_a_routing_command(
    postgres_only: None, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Issue 17's acceptance: eight workers sweep 100 recordings off the sandbox, whose records count in
    the integration's 5 requests/s; meanwhile routing commands go out the way calls/routing.py sends
    them (a priority permit; a refusal waits and tries again) and each reaches MTT well within 4.5 s."""
    with running_sandbox(step_delay=0.01, auto_click_to_call=False, quirks=RECORDS) as sandbox:
        allow_local(settings, sandbox.url)
        mtt = connect(sandbox, django_capture_on_commit_callbacks)
        ids = deque(
            make_recording(mtt, f"{sandbox.url}/records/sweep/{i}.mp3", call_key=f"sweep-{i}").pk
            for i in range(100)
        )
        stop = threading.Event()
        stored: list[int] = []

        def worker() -> None:
            try:
                while not stop.is_set():
                    try:
                        pk = ids.popleft()
                    except IndexError:
                        return
                    try:
                        if recording_download(recording_id=pk) == Recording.Status.STORED:
                            stored.append(pk)
                    except RecordingTransientError:
                        ids.append(pk)  # as Celery's retry would, later
            finally:
                connection.close()

        workers = [threading.Thread(target=worker) for _ in range(8)]
        for thread in workers:
            thread.start()
        try:
            time.sleep(1.5)  # the sweep is under way and holds its share of every window
            latencies = [_route(mtt, n) for n in range(5)]
        finally:
            stop.set()
            for thread in workers:
                thread.join(timeout=30)

    assert max(latencies) < 4.5, latencies
    assert len(stored) >= 2  # the sweep was really running alongside
    assert len(stored) < 100  # and still far from done: routing did not wait for it


def _route(integration: Integration, n: int) -> float:
    """One routing command as calls/routing.py sends it; the seconds until MTT answered."""
    client = MttClient(Integration.objects.get(pk=integration.pk))
    started = time.monotonic()
    while True:
        try:
            client.terminate_call(call_id=f"sweep-parked-{n}~1o", tag="t", transport_id="10.133.33.136:5073")
            break
        except MttRateLimited as exc:
            time.sleep(min(exc.retry_after, 0.5))
    waited = time.monotonic() - started
    time.sleep(0.5)
    return waited

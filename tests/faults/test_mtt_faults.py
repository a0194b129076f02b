"""MTT (the sandbox) failing for a period — 500s, 429 with Retry-After, hanging past MTT_READ_TIMEOUT —
and mttcrm backing off and recovering. Periods of a second or two here; the minute-long run with every
fault at once is bench/faults.py. No timing assertions: each test polls with generous limits.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery.exceptions import Retry
from django.utils import timezone

from calls.models import Recording
from calls.recordings.errors import RecordingTransientError
from calls.recordings.services import recording_download
from calls.recordings.storage import recording_storage_key
from calls.tasks import download_recording
from integrations.models import Integration, MttRequestLog
from integrations.mtt import ratelimit
from integrations.mtt.client import MttClient
from integrations.mtt.errors import MttRateLimited, MttTransientError
from integrations.tasks import sync_integration
from integrations.tokens import integration_refresh_tokens
from sandbox.testing import RunningSandbox, running_sandbox
from tests.mtt_sandbox import connect

pytestmark = [pytest.mark.django_db, pytest.mark.faults]


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(step_delay=0.01, auto_click_to_call=False) as sb:
        yield sb


@pytest.fixture(autouse=True)
def _own_limiter(settings: Any) -> None:
    settings.MTT_RATE_LIMIT_KEY_PREFIX = f"test-mtt-faults:{uuid.uuid4().hex}:"


@pytest.fixture
def mtt(db: Any, sandbox: RunningSandbox, django_capture_on_commit_callbacks: Any) -> Integration:
    return connect(sandbox, django_capture_on_commit_callbacks)


def statuses(sandbox: RunningSandbox, path: str) -> list[int]:
    return [r["status"] for r in sandbox.control("GET", "requests") if r["path"] == path]


def test_the_directory_sync_backs_off_through_a_period_of_500s_and_recovers(
    mtt: Integration, sandbox: RunningSandbox
) -> None:
    # Longer than the limiter's wait left by connecting (its sync used this second's permits).
    sandbox.control("POST", "faults", {"path": "*", "status": 500, "seconds": 3.0})
    # The client retries with backoff; past its attempts the task asks Celery to run it again later
    # (exponential backoff with jitter). A worker would wait the countdown; here the test runs it again.
    countdowns: list[float] = []
    deadline = time.monotonic() + 60
    while True:
        try:
            result = sync_integration.apply(args=(mtt.pk,), retries=len(countdowns), throw=True).get()
            break
        except Retry as retry:
            assert isinstance(retry.exc, MttTransientError)
            countdowns.append(float(retry.when))  # type: ignore[arg-type]
            assert time.monotonic() < deadline, "the sync never recovered"
            time.sleep(0.5)
    assert countdowns, "the fault period was over before the sync ran"
    # retry_backoff=5 doubling up to 300 s, with full jitter: each countdown within its cap.
    assert all(0 <= c <= min(300, 5 * 2**n) for n, c in enumerate(countdowns))
    assert "workplaces" in result
    seen = statuses(sandbox, "/externalNumbersInfo")
    assert 500 in seen and seen[-1] == 200
    mtt.refresh_from_db()
    assert mtt.status == Integration.Status.CONNECTED and mtt.last_sync_at is not None


def test_a_hang_past_the_read_timeout_is_a_timeout_then_a_retry(
    mtt: Integration, sandbox: RunningSandbox, settings: Any
) -> None:
    settings.MTT_READ_TIMEOUT = 1.0
    sandbox.control("POST", "faults", {"path": "/workplacesInfo", "delay": 3, "count": 1})
    workplaces = MttClient(mtt).workplaces_info()
    assert workplaces  # the second attempt, after backoff
    # The sandbox logs a request when it answers: the hung one shows up when its delay is over.
    deadline = time.monotonic() + 30
    while len(statuses(sandbox, "/workplacesInfo")) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(statuses(sandbox, "/workplacesInfo")) == 2
    [log] = MttRequestLog.objects.filter(method="workplacesInfo", ok=False)
    assert "Timeout" in log.error


def test_a_429_with_retry_after_holds_every_ordinary_request_off_then_they_go_again(
    mtt: Integration, sandbox: RunningSandbox, settings: Any
) -> None:
    time.sleep(ratelimit.WINDOW_MS / 1000)  # the permits connecting used are free again
    sandbox.control("POST", "faults", {"path": "*", "status": 429, "retry_after": 3, "seconds": 1.5})
    client = MttClient(mtt)
    with pytest.raises(MttRateLimited) as first:
        client.workplaces_info()
    assert first.value.retry_after == 3
    # Nobody asks MTT before the Retry-After has passed: with a shorter wait allowed, fail at once …
    settings.MTT_RATE_LIMIT_MAX_WAIT = 0.5
    asked = len(sandbox.control("GET", "requests"))
    with pytest.raises(MttRateLimited):
        client.workplaces_info()
    assert len(sandbox.control("GET", "requests")) == asked
    # … and with the usual wait the request waits for it and goes through.
    settings.MTT_RATE_LIMIT_MAX_WAIT = 10.0
    assert client.workplaces_info()
    assert statuses(sandbox, "/workplacesInfo") == [429, 200]
    # Routing commands never wait for the penalty (they are worthless after 5 s of parking).
    assert ratelimit.acquire(mtt.pk, priority=True, max_wait=0) < 1.0


def test_token_refresh_through_an_outage_keeps_the_integration_connected(
    mtt: Integration, sandbox: RunningSandbox
) -> None:
    sandbox.control("POST", "faults", {"path": "/oauth/token", "status": 503, "seconds": 1.0})
    failures = 0
    deadline = time.monotonic() + 60
    while True:
        try:
            integration_refresh_tokens(integration_id=mtt.pk, force=True)
            break
        except MttTransientError:
            failures += 1
            mtt.refresh_from_db()
            # An outage is not a refusal: nobody has to press Reconnect.
            assert mtt.status == Integration.Status.CONNECTED
            assert time.monotonic() < deadline, "the refresh never recovered"
            time.sleep(0.3)
    assert failures >= 1
    mtt.refresh_from_db()
    assert mtt.status == Integration.Status.CONNECTED
    assert mtt.access_token_valid(margin_seconds=0)


def test_a_recording_download_through_500s_and_429s_retries_and_is_stored_once(
    mtt: Integration, sandbox: RunningSandbox, settings: Any
) -> None:
    entry = sandbox.url.split("://", 1)[1]
    settings.RECORDINGS_ALLOWED_HOSTS = [entry]
    settings.RECORDINGS_ALLOW_PRIVATE_HOSTS = [entry]
    settings.RECORDINGS_ALLOW_HTTP = True
    url = f"{sandbox.url}/records/faults/{uuid.uuid4().hex}.mp3"
    from calls.models import Call

    call = Call.objects.create(integration=mtt, call_key="faults-1")
    now = timezone.now()
    recording = Recording.objects.create(
        integration=mtt,
        call=call,
        source_url=url,
        storage_key=recording_storage_key(received_at=now, name="faults-1", source_url=url),
        mtt_expires_at=now + timezone.timedelta(days=90),
    )
    sandbox.control("POST", "faults", {"path": "/records/*", "status": 500, "count": 1})
    sandbox.control("POST", "faults", {"path": "/records/*", "status": 429, "retry_after": 1, "count": 1})
    for _attempt in range(2):
        with pytest.raises(RecordingTransientError):
            recording_download(recording_id=recording.pk)
        recording.refresh_from_db()
        assert recording.status == Recording.Status.PENDING
    assert download_recording.delay(recording.pk).get() == Recording.Status.STORED
    # Once stored, another delivery of the task downloads nothing.
    assert download_recording.delay(recording.pk).get() == Recording.Status.STORED
    assert len(sandbox.state.snapshot()["record_downloads"]) == 3
    recording.refresh_from_db()
    assert recording.size and recording.sha256

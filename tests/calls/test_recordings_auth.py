"""Record links behind the Bearer token (guide §7.6: an expired access token gets 401 from MTT) and the
shared rate limiter (§6.7: 5 requests/s per integration, record links on the API host included).

The record host and MTT's token endpoint are mocked with `responses`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses
from responses import matchers

from calls.models import Recording
from calls.recordings.errors import RecordingTransientError
from calls.recordings.services import recording_download
from integrations.models import Integration
from integrations.mtt import ratelimit
from integrations.mtt.ratelimit import Priority
from monitoring.metrics import REGISTRY
from tests.calls import recording_fixtures as shared
from tests.calls.recording_fixtures import MP3_BYTES, PUBLIC_IP, leftovers, make_recording, media_path
from tests.conftest import load_fixture

recordings_settings = shared.recordings_settings
fake_dns = shared.fake_dns

pytestmark = pytest.mark.django_db

MTT_URL = "https://openapi.mtt.ru/records/34380859/2020/12/18/9B58D12A_EC9D5E37_56485D37_0EE913E5.mp3"
TOKEN_URL = "http://oauth.mtt.test/oauth/token"
OLD, NEW = "access-token-1", "access-2"


@pytest.fixture(autouse=True)
def public_dns(fake_dns: dict[str, list[str]]) -> dict[str, list[str]]:
    fake_dns.update({"openapi.mtt.ru": [PUBLIC_IP], "records.example.com": ["93.184.216.35"]})
    return fake_dns


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def bearer(token: str) -> Any:
    return matchers.header_matcher({"Authorization": f"Bearer {token}"})


def refresh_answers(rsps: responses.RequestsMock, token: str = NEW) -> None:
    body = load_fixture("api/oauth_token_refresh.json")
    body["access_token"], body["refresh_token"] = token, "refresh-2"
    rsps.add(responses.POST, TOKEN_URL, json=body)


def token_requests(rsps: responses.RequestsMock) -> list[dict[str, list[str]]]:
    return [parse_qs(c.request.body) for c in rsps.calls if c.request.url == TOKEN_URL]


def record_requests(rsps: responses.RequestsMock) -> list[str]:
    return [c.request.headers.get("Authorization", "") for c in rsps.calls if c.request.url != TOKEN_URL]


def test_a_401_refreshes_the_token_and_the_record_is_stored(
    integration: Integration, rsps: responses.RequestsMock, settings: Any
) -> None:
    """The old (pre-refresh) token gets 401; the refreshed one gets the record."""
    rsps.add(responses.GET, MTT_URL, status=401, json={"error": "invalid_token"}, match=[bearer(OLD)])
    rsps.add(
        responses.GET, MTT_URL, body=MP3_BYTES, content_type="application/octet-stream", match=[bearer(NEW)]
    )
    refresh_answers(rsps)
    recording = make_recording(integration, MTT_URL)

    assert recording_download(recording_id=recording.pk) == Recording.Status.STORED

    assert record_requests(rsps) == [f"Bearer {OLD}", f"Bearer {NEW}"]
    [refresh] = token_requests(rsps)
    assert refresh["grant_type"] == ["refresh_token"] and refresh["refresh_token"] == ["refresh-token-1"]
    integration.refresh_from_db()
    assert integration.access_token == NEW  # the refresh is the integration's, for every later request
    recording.refresh_from_db()
    assert (recording.attempts, recording.failure_reason) == (1, "")
    assert media_path(recording.storage_key).read_bytes() == MP3_BYTES
    assert leftovers(settings) == []


def test_a_second_401_with_a_fresh_token_fails_the_recording(
    integration: Integration, rsps: responses.RequestsMock
) -> None:
    """Failed, not retried: a token MTT has just issued is refused too, so more attempts would only
    refresh again and again. *Download again* (admin) after the cause is found."""
    rsps.add(responses.GET, MTT_URL, status=401)
    refresh_answers(rsps)
    recording = make_recording(integration, MTT_URL)

    assert recording_download(recording_id=recording.pk) == Recording.Status.FAILED

    recording.refresh_from_db()
    assert (
        recording.failure_reason == "HTTP 401 from openapi.mtt.ru even with a freshly refreshed access token"
    )
    assert record_requests(rsps) == [f"Bearer {OLD}", f"Bearer {NEW}"]
    assert len(token_requests(rsps)) == 1


def test_a_401_when_the_refresh_is_refused_keeps_the_recording_pending(
    integration: Integration, rsps: responses.RequestsMock
) -> None:
    """Transient: the integration turns *Needs reconnect*; after an admin's Reconnect the sweep's next
    attempt downloads it (the record stays at MTT 90 days)."""
    rsps.add(responses.GET, MTT_URL, status=401)
    rsps.add(responses.POST, TOKEN_URL, status=400, json={"error": "invalid_grant"})
    recording = make_recording(integration, MTT_URL)

    with pytest.raises(RecordingTransientError, match="the token could not be refreshed"):
        recording_download(recording_id=recording.pk)

    recording.refresh_from_db()
    assert recording.status == Recording.Status.PENDING
    assert "401" in recording.failure_reason
    integration.refresh_from_db()
    assert integration.status == Integration.Status.NEEDS_RECONNECT


def test_a_401_from_a_host_that_never_gets_the_token_fails_without_a_refresh(
    settings: Any, integration: Integration, rsps: responses.RequestsMock
) -> None:
    settings.RECORDINGS_ALLOWED_HOSTS = [*settings.RECORDINGS_ALLOWED_HOSTS, "records.example.com"]
    url = "https://records.example.com/A.mp3"
    rsps.add(responses.GET, url, status=401)
    recording = make_recording(integration, url)

    assert recording_download(recording_id=recording.pk) == Recording.Status.FAILED

    recording.refresh_from_db()
    assert "RECORDINGS_TOKEN_HOSTS" in recording.failure_reason
    assert record_requests(rsps) == [""]
    assert token_requests(rsps) == []


def test_the_token_goes_over_plain_http_only_to_a_private_allow_listed_host(
    settings: Any, integration: Integration, rsps: responses.RequestsMock
) -> None:
    """A local stand-in of MTT (the sandbox: RECORDINGS_ALLOW_SANDBOX) needs the token over http; a
    host on the internet never gets it without TLS."""
    settings.RECORDINGS_ALLOW_HTTP = True
    local = "http://10.0.0.5:8001/records/A.mp3"
    settings.RECORDINGS_ALLOWED_HOSTS = [*settings.RECORDINGS_ALLOWED_HOSTS, "10.0.0.5:8001"]
    settings.RECORDINGS_TOKEN_HOSTS = [*settings.RECORDINGS_TOKEN_HOSTS, "10.0.0.5:8001"]
    settings.RECORDINGS_ALLOW_PRIVATE_HOSTS = ["10.0.0.5:8001"]
    public = "http://openapi.mtt.ru/records/B.mp3"
    for url, key in ((local, "c1"), (public, "c2")):
        rsps.add(responses.GET, url, body=MP3_BYTES)
        assert recording_download(recording_id=make_recording(integration, url, call_key=key).pk) == "stored"
    assert record_requests(rsps) == [f"Bearer {OLD}", ""]


# --- the shared limiter --------------------------------------------------------------------------


@pytest.fixture
def permits(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, Any]]:
    """The real limiter (local backend in the test's VAR_DIR), spied on."""
    asked: list[tuple[int, Any]] = []
    real = ratelimit.acquire

    def spy(integration_id: int, *, priority: Any = False, max_wait: float | None = None) -> float:
        asked.append((integration_id, priority))
        return real(integration_id, priority=priority, max_wait=max_wait)

    monkeypatch.setattr(ratelimit, "acquire", spy)
    return asked


def test_every_request_of_a_download_takes_a_permit_at_the_lowest_priority(
    settings: Any, integration: Integration, rsps: responses.RequestsMock, permits: list[tuple[int, Any]]
) -> None:
    settings.REDIS_URL = ""
    observed_before = REGISTRY.get_sample_value("mttcrm_mtt_limiter_wait_seconds_count") or 0
    moved = MTT_URL.replace("/records/", "/moved/")
    rsps.add(responses.GET, MTT_URL, status=302, headers={"Location": moved})
    rsps.add(responses.GET, moved, status=401, match=[bearer(OLD)])
    rsps.add(responses.GET, moved, body=MP3_BYTES, match=[bearer(NEW)])
    refresh_answers(rsps)
    recording = make_recording(integration, MTT_URL)

    assert recording_download(recording_id=recording.pk) == Recording.Status.STORED

    # The first request, the redirect's hop and the request after the refresh: three requests to MTT.
    assert permits == [(integration.pk, Priority.DOWNLOAD)] * 3
    # Their waits are in the limiter's histogram (/metrics), with the API client's.
    assert REGISTRY.get_sample_value("mttcrm_mtt_limiter_wait_seconds_count") == observed_before + 3


def test_no_permit_in_time_keeps_the_recording_pending(
    settings: Any, integration: Integration, rsps: responses.RequestsMock
) -> None:
    settings.REDIS_URL = ""
    settings.MTT_RATE_LIMIT_MAX_WAIT = 0
    for _ in range(2):  # the downloads' share of this window (2 of 5) is taken
        ratelimit.acquire(integration.pk, priority=Priority.DOWNLOAD)
    recording = make_recording(integration, MTT_URL)

    with pytest.raises(RecordingTransientError, match="no permit from the MTT rate limiter"):
        recording_download(recording_id=recording.pk)

    recording.refresh_from_db()
    assert recording.status == Recording.Status.PENDING
    assert len(rsps.calls) == 0  # nothing was sent
    # Meanwhile the classes above still have their permits.
    assert ratelimit.acquire(integration.pk, priority=Priority.ROUTING, max_wait=0) < 0.5


# --- concurrency (PostgreSQL) --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_downloads_hitting_401_at_once_refresh_once(
    postgres_only: None, integration: Integration, rsps: responses.RequestsMock
) -> None:
    """The single-flight refresh of the API client: whoever refreshes first wins, the others take its
    token (the old one was answered 401 to all of them)."""
    from tests.concurrency import at_once

    lock = threading.Lock()

    def record(request: Any) -> tuple[int, dict[str, str], bytes]:
        with lock:
            ok = request.headers.get("Authorization") == f"Bearer {NEW}"
        return (200, {"Content-Type": "audio/mpeg"}, MP3_BYTES) if ok else (401, {}, b"")

    urls = [f"{MTT_URL[:-4]}-{i}.mp3" for i in range(4)]
    for url in urls:
        rsps.add_callback(responses.GET, url, callback=record)
    refresh_answers(rsps)
    recordings = [make_recording(integration, url, call_key=f"c{i}") for i, url in enumerate(urls)]

    results = at_once([lambda r=r: recording_download(recording_id=r.pk) for r in recordings])

    assert results == [Recording.Status.STORED] * 4
    assert len(token_requests(rsps)) == 1

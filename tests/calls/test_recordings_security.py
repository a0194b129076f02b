"""What the downloader refuses, and what it sends where: hosts, addresses, redirects, the token,
content checks and the size cap. The record host is mocked with `responses`; refused URLs must never be
requested at all. Where the connection goes (DNS pinning, TLS): test_recordings_pinning.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import responses

from calls.models import Recording
from calls.recordings.download import check_url, host_matches
from calls.recordings.errors import RecordingRefused
from calls.recordings.services import recording_download
from integrations.models import Integration
from tests.calls import recording_fixtures as shared
from tests.calls.recording_fixtures import MP3_BYTES, PUBLIC_IP, leftovers, make_recording, media_path

# The fixtures of the shared module, under their names (autouse: production-like settings).
recordings_settings = shared.recordings_settings
fake_dns = shared.fake_dns

pytestmark = pytest.mark.django_db

MTT_URL = "https://records.mtt.ru/records/1/2024/01/02/A.mp3"


@pytest.fixture
def public_dns(fake_dns: dict[str, list[str]]) -> dict[str, list[str]]:
    fake_dns.update(
        {
            "records.mtt.ru": [PUBLIC_IP],
            "openapi-stage.mtt.ru": [PUBLIC_IP],
            "records.example.com": ["93.184.216.35"],
            "evil.example.com": ["93.184.216.36"],
        }
    )
    return fake_dns


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def mp3_reply(rsps: responses.RequestsMock, url: str, body: bytes = MP3_BYTES, **kwargs: Any) -> None:
    kwargs.setdefault("content_type", "audio/mpeg")
    rsps.add(responses.GET, url, body=body, **kwargs)


# --- refused URLs: never fetched -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allowed", "reason"),
    [
        ("https://evil.example.com/a.mp3", [], "not in RECORDINGS_ALLOWED_HOSTS"),
        ("https://mtt.ru.evil.example.com/a.mp3", [], "not in RECORDINGS_ALLOWED_HOSTS"),
        ("https://127.0.0.1/a.mp3", [], "not in RECORDINGS_ALLOWED_HOSTS"),
        # Even when a (mis)configured allow-list names them, internal addresses are refused.
        ("https://127.0.0.1/a.mp3", ["127.0.0.1"], "loopback address (127.0.0.1)"),
        ("https://169.254.169.254/latest/meta-data.mp3", ["169.254.169.254"], "link-local"),
        ("https://[::1]/a.mp3", ["[::1]"], "loopback address (::1)"),
        ("https://[::ffff:127.0.0.1]/a.mp3", ["[::ffff:127.0.0.1]"], "loopback"),
        ("https://10.1.2.3/a.mp3", ["10.1.2.3"], "private address"),
        ("https://0.0.0.0/a.mp3", ["0.0.0.0"], "address (0.0.0.0)"),
        # A name of an allowed domain that resolves to a private address (DNS says so).
        ("https://internal.mtt.ru/a.mp3", [], "resolves to a private address (10.0.0.7)"),
        ("https://mixed.mtt.ru/a.mp3", [], "resolves to a loopback address (127.0.0.1)"),
        # https only outside the demo.
        ("http://records.mtt.ru/a.mp3", [], "plain http is not allowed"),
        ("ftp://records.mtt.ru/a.mp3", [], "scheme 'ftp' is not allowed"),
        ("https://user:pw@records.mtt.ru/a.mp3", [], "credentials in the URL"),
        ("https://records.mtt.ru:99999/a.mp3", [], "not a valid URL"),
        ("records.mtt.ru/a.mp3", [], "scheme '(none)'"),
    ],
)
def test_refused_urls_are_recorded_and_never_fetched(
    url: str,
    allowed: list[str],
    reason: str,
    settings: Any,
    integration: Integration,
    public_dns: dict[str, list[str]],
    rsps: responses.RequestsMock,
) -> None:
    settings.RECORDINGS_ALLOWED_HOSTS = [*settings.RECORDINGS_ALLOWED_HOSTS, *allowed]
    public_dns["internal.mtt.ru"] = ["10.0.0.7"]
    public_dns["mixed.mtt.ru"] = [PUBLIC_IP, "127.0.0.1"]  # every answer must be public
    recording = make_recording(integration, url)

    assert recording_download(recording_id=recording.pk) == Recording.Status.REFUSED

    recording.refresh_from_db()
    assert recording.status == Recording.Status.REFUSED
    assert reason in recording.failure_reason
    assert len(rsps.calls) == 0
    assert not media_path(recording.storage_key).exists()
    assert leftovers(settings) == []


def test_a_refused_recording_is_not_retried(integration: Integration, rsps: responses.RequestsMock) -> None:
    recording = make_recording(integration, "https://evil.example.com/a.mp3")
    recording_download(recording_id=recording.pk)
    assert recording_download(recording_id=recording.pk) == Recording.Status.REFUSED  # no new attempt
    recording.refresh_from_db()
    assert recording.attempts == 1


def test_redirect_to_another_host_is_refused(
    integration: Integration, public_dns: dict[str, list[str]], rsps: responses.RequestsMock
) -> None:
    rsps.add(responses.GET, MTT_URL, status=302, headers={"Location": "https://evil.example.com/a.mp3"})
    mp3_reply(rsps, "https://evil.example.com/a.mp3")
    recording = make_recording(integration, MTT_URL)
    assert recording_download(recording_id=recording.pk) == Recording.Status.REFUSED
    recording.refresh_from_db()
    assert "redirect to another host (evil.example.com)" in recording.failure_reason
    assert [c.request.url for c in rsps.calls] == [MTT_URL]


def test_redirect_to_the_metadata_address_is_refused(
    integration: Integration, public_dns: dict[str, list[str]], rsps: responses.RequestsMock
) -> None:
    rsps.add(responses.GET, MTT_URL, status=307, headers={"Location": "http://169.254.169.254/latest/"})
    recording = make_recording(integration, MTT_URL)
    assert recording_download(recording_id=recording.pk) == Recording.Status.REFUSED
    assert len(rsps.calls) == 1


def test_redirect_on_the_same_host_is_followed_and_rechecked(
    settings: Any, integration: Integration, public_dns: dict[str, list[str]], rsps: responses.RequestsMock
) -> None:
    final = "https://records.mtt.ru/store/A.mp3"
    rsps.add(responses.GET, MTT_URL, status=302, headers={"Location": "/store/A.mp3"})
    mp3_reply(rsps, final)
    recording = make_recording(integration, MTT_URL)
    assert recording_download(recording_id=recording.pk) == Recording.Status.STORED
    assert [c.request.url for c in rsps.calls] == [MTT_URL, final]
    # Both hops are MTT over https: the token goes with each.
    assert all(c.request.headers["Authorization"] == "Bearer access-token-1" for c in rsps.calls)


def test_redirect_to_http_on_the_same_host_is_refused_outside_demo(
    integration: Integration, public_dns: dict[str, list[str]], rsps: responses.RequestsMock
) -> None:
    rsps.add(responses.GET, MTT_URL, status=301, headers={"Location": "http://records.mtt.ru/A.mp3"})
    recording = make_recording(integration, MTT_URL)
    assert recording_download(recording_id=recording.pk) == Recording.Status.REFUSED


def test_endless_redirects_stop(
    integration: Integration, public_dns: dict[str, list[str]], rsps: responses.RequestsMock
) -> None:
    rsps.add(responses.GET, MTT_URL, status=302, headers={"Location": MTT_URL})
    recording = make_recording(integration, MTT_URL)
    assert recording_download(recording_id=recording.pk) == Recording.Status.REFUSED
    recording.refresh_from_db()
    assert "redirects" in recording.failure_reason
    assert len(rsps.calls) == 4


# --- the token -----------------------------------------------------------------------------------


def test_token_is_sent_only_to_mtt_hosts(
    settings: Any, integration: Integration, public_dns: dict[str, list[str]], rsps: responses.RequestsMock
) -> None:
    settings.RECORDINGS_ALLOWED_HOSTS = [*settings.RECORDINGS_ALLOWED_HOSTS, "records.example.com"]
    other = "https://records.example.com/A.mp3"
    mp3_reply(rsps, MTT_URL)
    mp3_reply(rsps, other)
    for url, key in ((MTT_URL, "c1"), (other, "c2")):
        recording = make_recording(integration, url, call_key=key)
        assert recording_download(recording_id=recording.pk) == Recording.Status.STORED

    to_mtt, to_other = rsps.calls[0].request, rsps.calls[1].request
    assert to_mtt.headers["Authorization"] == "Bearer access-token-1"
    assert "Authorization" not in to_other.headers
    assert "Cookie" not in to_other.headers


def test_token_is_never_sent_over_plain_http(
    settings: Any, integration: Integration, public_dns: dict[str, list[str]], rsps: responses.RequestsMock
) -> None:
    settings.RECORDINGS_ALLOW_HTTP = True
    url = "http://records.mtt.ru/A.mp3"
    mp3_reply(rsps, url)
    recording = make_recording(integration, url)
    assert recording_download(recording_id=recording.pk) == Recording.Status.STORED
    assert "Authorization" not in rsps.calls[0].request.headers


def test_no_token_keeps_the_recording_pending(
    integration: Integration, public_dns: dict[str, list[str]], rsps: responses.RequestsMock
) -> None:
    from calls.recordings.errors import RecordingTransientError

    Integration.objects.filter(pk=integration.pk).update(status=Integration.Status.NEEDS_RECONNECT)
    recording = make_recording(integration, MTT_URL)
    with pytest.raises(RecordingTransientError, match="no MTT access token"):
        recording_download(recording_id=recording.pk)
    recording.refresh_from_db()
    assert recording.status == Recording.Status.PENDING
    assert len(rsps.calls) == 0


# --- content checks and the cap ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "reason"),
    [
        # The bytes decide, not the header (the guide promises "*.mp3", no Content-Type).
        ("text/html", b"<html>login</html>", "not an mp3 (an HTML or XML page, served as text/html)"),
        ("audio/mpeg", b"<!DOCTYPE html><html>not audio</html>", "not an mp3 (an HTML or XML page, served"),
        ("audio/mpeg", b'\xef\xbb\xbf {"error": {"code": 403}}', "not an mp3 (JSON, served as audio/mpeg)"),
        ("application/octet-stream", b"[1, 2, 3]", "not an mp3 (JSON, served as application/octet-stream)"),
        ("audio/mpeg", b"RIFF\x00\x00\x00\x00WAVEfmt ", "not an mp3 (it starts with 52494646"),
        ("audio/mpeg", b"<", "not an mp3 (an HTML or XML page"),  # shorter than the bytes looked at
        ("audio/mpeg", b"", "empty"),
        ("audio/mpeg", b"ID3\x04\x00\x00\x00\x00\x00\x10" + b"\x00" * 64, "no MPEG audio frame"),
    ],
)
def test_wrong_content_is_failed_permanently(
    content_type: str,
    body: bytes,
    reason: str,
    settings: Any,
    integration: Integration,
    public_dns: dict[str, list[str]],
    rsps: responses.RequestsMock,
) -> None:
    mp3_reply(rsps, MTT_URL, body=body, content_type=content_type)
    recording = make_recording(integration, MTT_URL)
    assert recording_download(recording_id=recording.pk) == Recording.Status.FAILED
    recording.refresh_from_db()
    assert reason in recording.failure_reason
    assert not media_path(recording.storage_key).exists()
    assert leftovers(settings) == []


@pytest.mark.parametrize(
    "content_type",
    [
        "audio/mpeg",
        "audio/mp3; charset=binary",
        "application/octet-stream",
        "binary/octet-stream",
        "text/html",
        None,
    ],
)
def test_mp3_bytes_are_stored_whatever_the_content_type(
    content_type: str | None,
    integration: Integration,
    public_dns: dict[str, list[str]],
    rsps: responses.RequestsMock,
) -> None:
    """The guide says "*.mp3" (§10.1.3), not which header: an octet-stream, or no header at all, is
    fine when the bytes are an mp3 (an MPEG frame sync here; an ID3 tag below)."""
    if content_type is None:
        rsps.add(responses.GET, MTT_URL, body=MP3_BYTES, content_type=None)
    else:
        mp3_reply(rsps, MTT_URL, content_type=content_type)
    recording = make_recording(integration, MTT_URL)
    assert recording_download(recording_id=recording.pk) == Recording.Status.STORED
    recording.refresh_from_db()
    assert recording.size == len(MP3_BYTES)
    assert recording.content_type == (content_type or "").split(";")[0]  # as the host declared it


def test_an_id3_tagged_mp3_as_octet_stream_is_stored(
    integration: Integration, public_dns: dict[str, list[str]], rsps: responses.RequestsMock
) -> None:
    tag = b"ID3\x03\x00\x00" + bytes([0, 0, 0, 20]) + b"\x00" * 20
    mp3_reply(rsps, MTT_URL, body=tag + MP3_BYTES, content_type="application/octet-stream")
    recording = make_recording(integration, MTT_URL)
    assert recording_download(recording_id=recording.pk) == Recording.Status.STORED
    assert media_path(recording.storage_key).read_bytes() == tag + MP3_BYTES


@pytest.mark.parametrize("declared", [True, False])
def test_over_the_size_cap(
    declared: bool,
    settings: Any,
    integration: Integration,
    public_dns: dict[str, list[str]],
    rsps: responses.RequestsMock,
) -> None:
    settings.RECORDINGS_MAX_BYTES = 20_000
    headers = {"Content-Length": str(len(MP3_BYTES))} if declared else {}
    mp3_reply(rsps, MTT_URL, headers=headers, auto_calculate_content_length=False)
    recording = make_recording(integration, MTT_URL)
    assert recording_download(recording_id=recording.pk) == Recording.Status.FAILED
    recording.refresh_from_db()
    assert "over the 20000-byte limit" in recording.failure_reason
    assert not media_path(recording.storage_key).exists()
    assert leftovers(settings) == []


def test_other_http_errors(
    integration: Integration, public_dns: dict[str, list[str]], rsps: responses.RequestsMock
) -> None:
    rsps.add(responses.GET, MTT_URL, status=403, body="forbidden")
    recording = make_recording(integration, MTT_URL)
    assert recording_download(recording_id=recording.pk) == Recording.Status.FAILED
    recording.refresh_from_db()
    assert recording.failure_reason == "HTTP 403 from records.mtt.ru"


# --- the policy helpers --------------------------------------------------------------------------


def test_host_patterns() -> None:
    entries = ["mtt.ru", "*.mtt.ru", "127.0.0.1:8001", "[::1]:8001"]
    assert host_matches("mtt.ru", 443, entries)
    assert host_matches("a.b.mtt.ru", 443, entries)
    assert host_matches("RECORDS.MTT.RU.", 443, entries)
    assert not host_matches("evilmtt.ru", 443, entries)
    assert not host_matches("mtt.ru.evil.com", 443, entries)
    assert host_matches("127.0.0.1", 8001, entries)
    assert not host_matches("127.0.0.1", 6379, entries)  # the port is part of the entry
    assert host_matches("::1", 8001, entries)
    assert not host_matches("mtt.ru", 443, ["*.mtt.ru"])  # "*." means subdomains only


def test_dns_failure_is_transient(settings: Any, fake_dns: dict[str, list[str]]) -> None:
    from calls.recordings.errors import RecordingTransientError

    with pytest.raises(RecordingTransientError, match="cannot resolve"):
        check_url("https://no-such-host.invalid.mtt.ru/a.mp3")


def test_sandbox_entry_comes_only_with_the_setting(settings: Any) -> None:
    with pytest.raises(RecordingRefused):
        check_url("http://127.0.0.1:8001/records/a.mp3")
    settings.RECORDINGS_ALLOW_HTTP = True
    settings.RECORDINGS_ALLOWED_HOSTS = [*settings.RECORDINGS_ALLOWED_HOSTS, "127.0.0.1:8001"]
    with pytest.raises(RecordingRefused, match="loopback"):
        check_url("http://127.0.0.1:8001/records/a.mp3")
    settings.RECORDINGS_ALLOW_PRIVATE_HOSTS = ["127.0.0.1:8001"]
    target = check_url("http://127.0.0.1:8001/records/a.mp3")
    assert (target.address, target.send_token) == ("127.0.0.1", False)
    with pytest.raises(RecordingRefused):
        check_url("http://127.0.0.1:6379/records/a.mp3")  # another port of the same machine

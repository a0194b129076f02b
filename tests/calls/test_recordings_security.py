"""What the downloader refuses, and what it sends where: hosts, addresses, redirects, the token,
content checks and the size cap. The record host is mocked with `responses` (or a local server for
the DNS-pinning test); refused URLs must never be requested at all."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import responses
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

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


# --- DNS rebinding: the connection goes to the address that was checked ---------------------------


@pytest.fixture
def local_record_server() -> Iterator[dict[str, Any]]:
    seen: dict[str, Any] = {"hosts": []}

    def app(environ: Any, start_response: Any) -> Any:
        seen["hosts"].append(Request(environ).host)
        return Response(MP3_BYTES, mimetype="audio/mpeg")(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    seen["port"] = server.server_port
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_connection_is_pinned_to_the_checked_address(
    settings: Any,
    integration: Integration,
    fake_dns: dict[str, list[str]],
    local_record_server: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A name that answers differently on the second lookup (rebinding) cannot redirect the socket:
    the connection uses the address checked, and Host still names the record host."""
    port = local_record_server["port"]
    entry = f"records.mtt.ru:{port}"
    settings.RECORDINGS_ALLOW_HTTP = True
    settings.RECORDINGS_ALLOW_PRIVATE_HOSTS = [entry]  # the test server is on loopback
    fake_dns["records.mtt.ru"] = ["127.0.0.1"]

    import calls.recordings.download as download_module

    real_check = download_module.check_url

    def check_then_rebind(url: str) -> Any:
        target = real_check(url)
        fake_dns["records.mtt.ru"] = ["10.255.255.1"]  # any later lookup would go elsewhere
        return target

    monkeypatch.setattr(download_module, "check_url", check_then_rebind)
    recording = make_recording(integration, f"http://records.mtt.ru:{port}/records/a.mp3")
    assert recording_download(recording_id=recording.pk) == Recording.Status.STORED
    assert local_record_server["hosts"] == [entry]
    assert Path(media_path(Recording.objects.get().storage_key)).read_bytes() == MP3_BYTES


@pytest.mark.parametrize(
    ("url", "address", "host_header"),
    [
        ("https://records.mtt.ru/r/a.mp3?x=1", "203.0.113.7", "records.mtt.ru"),
        ("https://records.mtt.ru:8443/a.mp3", "203.0.113.7", "records.mtt.ru:8443"),
        ("https://records.mtt.ru/a.mp3", "2001:db8::7", "records.mtt.ru"),
        ("http://records.mtt.ru:8080/a.mp3", "203.0.113.7", "records.mtt.ru:8080"),
    ],
)
def test_tls_and_host_name_the_urls_host_while_the_socket_goes_to_the_address(
    url: str, address: str, host_header: str
) -> None:
    """The pool connects to the checked address; SNI (and so the certificate check) and Host name the
    URL's host; plain http gets no SNI."""
    import requests

    from calls.recordings.download import PinnedAdapter

    adapter = PinnedAdapter(address)
    prepared = requests.Request("GET", url).prepare()
    pool = adapter.get_connection_with_tls_context(prepared, verify=True)
    assert pool.host == address
    assert pool.port == (urlsplit(url).port or (443 if url.startswith("https") else 80))
    if url.startswith("https"):
        assert pool.conn_kw["server_hostname"] == "records.mtt.ru"
    else:
        assert "server_hostname" not in pool.conn_kw
    adapter.add_headers(prepared)
    assert prepared.headers["Host"] == host_header
    assert prepared.url == url  # the request itself still names the host
    adapter.close()


def _self_signed(tmp_path: Path, name: str) -> tuple[str, str]:
    """A certificate for ``name`` (its own CA) and its key, as PEM files."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


@pytest.mark.parametrize("served_name", ["records.mtt.ru", "evil.example.com"])
def test_over_tls_the_certificate_must_be_the_urls_hosts(tmp_path: Path, served_name: str) -> None:
    """A real TLS server on loopback: the connection goes to the checked address, SNI names
    records.mtt.ru, and the certificate is checked against that name — a server with another name's
    certificate is refused."""
    import ssl

    import requests

    from calls.recordings.download import PinnedAdapter

    cert_file, key_file = _self_signed(tmp_path, served_name)
    seen: dict[str, Any] = {}

    @Request.application
    def app(request: Request) -> Response:
        seen["host"] = request.host
        return Response(b"ok")

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)

    def sni(_sock: Any, name: str | None, _context: Any) -> None:
        seen["sni"] = name

    context.sni_callback = sni
    server = make_server("127.0.0.1", 0, app, ssl_context=context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"https://records.mtt.ru:{server.server_port}/a.mp3"  # the name resolves nowhere here
    try:
        with requests.Session() as session:
            session.trust_env = False
            session.mount("https://", PinnedAdapter("127.0.0.1"))
            if served_name == "records.mtt.ru":
                response = session.get(url, verify=cert_file, timeout=10)
                assert response.status_code == 200 and response.content == b"ok"
                assert seen["host"] == f"records.mtt.ru:{server.server_port}"
            else:
                with pytest.raises(requests.exceptions.SSLError):
                    session.get(url, verify=cert_file, timeout=10)
                assert "host" not in seen
            assert seen["sni"] == "records.mtt.ru"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

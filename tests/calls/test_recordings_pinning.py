"""DNS rebinding: a recording's download connects to the address that was checked, while the Host header,
TLS's SNI and the certificate check name the URL's host (calls/recordings/download.py, ``PinnedAdapter``).
A local server (plain and TLS, with a self-signed certificate) stands for the record host."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from calls.models import Recording
from calls.recordings.services import recording_download
from integrations.models import Integration
from tests.calls import recording_fixtures as shared
from tests.calls.recording_fixtures import MP3_BYTES, make_recording, media_path

# The fixtures of the shared module, under their names (autouse: production-like settings).
recordings_settings = shared.recordings_settings
fake_dns = shared.fake_dns

pytestmark = pytest.mark.django_db


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

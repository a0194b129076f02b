"""The ONLY place that fetches call records (the record host is a different remote party from the API).

Every URL is checked before any byte is sent (``check_url``): an allowed host (setting), https unless
the demo allows http, no credentials in the URL, and every address the name resolves to must be a
public one unless the host is explicitly allow-listed as private (the local sandbox). The connection
is then pinned to the address that was checked, so a second DNS answer (rebinding) cannot send it
elsewhere; redirects are followed by hand, only on the same host, each hop checked again. The body is
streamed in chunks into a file the caller owns: memory does not grow with the file.

What the guide does not promise (API.md "What the guide does not promise"), so not assumed here:
* a record link answers without the Bearer token: an expired token gets 401 like any method (§7.6), so a
  401 is answered by one refresh of the token (the caller's, single-flight) and one more request;
* a record is served as ``audio/mpeg``: the guide only says "*.mp3" (§10.1.3), so the BYTES decide (an
  ID3 tag or an MPEG frame sync), whatever the Content-Type says — ``application/octet-stream``, none;
* a record is outside the 5 requests/s (§6.7): every request takes a permit first (``permit``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings
from requests import PreparedRequest
from requests.adapters import HTTPAdapter

from . import mp3
from .errors import RecordingPermanentError, RecordingRefused, RecordingTransientError

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 3
CHUNK_BYTES = 64 * 1024
_REDIRECT_STATUSES = (301, 302, 303, 307, 308)
_TRANSIENT_STATUSES = frozenset({408, 425, 429})
USER_AGENT = "mttcrm-recordings/1"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Target:
    """A URL that passed the checks, and the address the connection is pinned to."""

    url: str
    scheme: str
    host: str
    port: int
    address: str
    send_token: bool


@dataclass(frozen=True)
class Access:
    """What a download needs from the integration: ``token()`` the current access token,
    ``refreshed(stale)`` a new one after ``stale`` was answered 401 (single-flight), ``permit()`` a
    permit of the MTT rate limiter before each request. Each raises a RecordingError when it cannot."""

    token: Callable[[], str]
    refreshed: Callable[[str], str]
    permit: Callable[[], None]


@dataclass(frozen=True)
class Fetched:
    size: int
    sha256: str
    content_type: str
    url: str


# --- the policy ----------------------------------------------------------------------------------


def _split_entry(entry: str) -> tuple[str, int | None]:
    """'host', 'host:port', '[v6]', '[v6]:port', bare v6, '*.domain' → (host, port or None)."""
    entry = entry.strip().lower().rstrip(".")
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, int(port) if port.isdigit() else None
    return entry, None


def host_matches(host: str, port: int, entries: list[str]) -> bool:
    """Whether ``host:port`` is named by one of ``entries`` ("*.domain" = any subdomain of domain)."""
    host = host.lower().rstrip(".")
    for entry in entries:
        pattern, entry_port = _split_entry(entry)
        if not pattern or (entry_port is not None and entry_port != port):
            continue
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and host != pattern[2:]:
                return True
        elif host == pattern:
            return True
    return False


def address_unsafe_reason(address: Address) -> str | None:
    """Why connecting to ``address`` could reach something internal (None: a public address). The SSRF
    rule of recording downloads, used by webhook subscriptions too (webhooks/safety.py)."""
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address wrapped in IPv6 is judged as that IPv4 address.
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None:
            return address_unsafe_reason(embedded)
    for flag, words in (
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_private, "private"),
        (address.is_multicast, "multicast"),
        (address.is_reserved, "reserved"),
        (address.is_unspecified, "unspecified"),
    ):
        if flag:
            return words
    if not address.is_global:
        return "not public"
    return None


def resolve_addresses(host: str, port: int) -> list[Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        # DNS can fail for a while; the host was allowed, so try again later.
        raise RecordingTransientError(f"cannot resolve {host}: {exc}") from exc
    addresses: list[Address] = []
    for info in infos:
        # IPv6 scoped addresses come as "fe80::1%eth0": the scope is not part of the address.
        text = str(info[4][0]).split("%", 1)[0]
        address = ipaddress.ip_address(text)
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise RecordingTransientError(f"{host} resolves to no address")
    return addresses


class UrlRefused(ValueError):
    """An outgoing URL we will not call, with the reason in words (English, for the log) and ``code``, which
    one: invalid, scheme, http, credentials, no_host (webhooks/safety.py words it for the admin)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class UrlParts:
    scheme: str
    host: str  # without brackets or a trailing dot
    port: int  # the scheme's default when the URL names none


def url_parts(url: str, *, allow_http: bool) -> UrlParts:
    """The parts of an http(s) URL the CRM may send a request to (recording downloads, webhooks), or
    UrlRefused: not a URL, another scheme, plain http when not allowed, credentials, no host."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"not a valid URL: {exc}", code="invalid") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise UrlRefused(f"scheme {scheme or '(none)'!r} is not allowed", code="scheme")
    if scheme == "http" and not allow_http:
        raise UrlRefused("plain http is not allowed (https only)", code="http")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("credentials in the URL are not allowed", code="credentials")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRefused("the URL has no host", code="no_host")
    return UrlParts(scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80))


def check_url(url: str) -> Target:
    """The checked target of ``url``, or RecordingRefused with the reason (nothing is sent)."""
    try:
        checked = url_parts(url, allow_http=settings.RECORDINGS_ALLOW_HTTP)
    except UrlRefused as exc:
        raise RecordingRefused(str(exc)) from exc
    scheme, host, port = checked.scheme, checked.host, checked.port
    shown = f"[{host}]" if ":" in host else host
    if not host_matches(host, port, settings.RECORDINGS_ALLOWED_HOSTS):
        raise RecordingRefused(f"host {shown}:{port} is not in RECORDINGS_ALLOWED_HOSTS")
    addresses = resolve_addresses(host, port)
    if not host_matches(host, port, settings.RECORDINGS_ALLOW_PRIVATE_HOSTS):
        for address in addresses:
            unsafe = address_unsafe_reason(address)
            if unsafe:
                raise RecordingRefused(f"host {shown} resolves to a {unsafe} address ({address})")
    # The token goes to MTT's hosts over https; over plain http only to a host allow-listed as private
    # too (a local stand-in of MTT, the sandbox: RECORDINGS_ALLOW_SANDBOX), never across the internet.
    send_token = host_matches(host, port, settings.RECORDINGS_TOKEN_HOSTS) and (
        scheme == "https" or host_matches(host, port, settings.RECORDINGS_ALLOW_PRIVATE_HOSTS)
    )
    return Target(
        url=url, scheme=scheme, host=host, port=port, address=str(addresses[0]), send_token=send_token
    )


# --- pinning the connection to the checked address ----------------------------------------------


class PinnedAdapter(HTTPAdapter):
    """requests' transport adapter whose connections go to a checked ``address``, while the URL, the
    Host header, TLS's SNI and the certificate check keep the URL's host name.

    Two of the hooks requests documents for subclassing: ``build_connection_pool_key_attributes`` names
    the pool's host (urllib3 connects to the address: no DNS lookup, so a second answer — rebinding —
    changes nothing) and urllib3's documented ``server_hostname`` (SNI; Python's ssl checks the
    certificate against it); ``add_headers`` sends the URL's host in Host.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(max_retries=0)

    def build_connection_pool_key_attributes(
        self, request: PreparedRequest, verify: Any, cert: Any = None
    ) -> Any:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        pinned: dict[str, Any] = {**host_params, "host": self.address}
        tls: dict[str, Any] = {**pool_kwargs}
        if host_params["scheme"] == "https":
            tls["server_hostname"] = host_params["host"]
        return pinned, tls

    def add_headers(self, request: PreparedRequest, **kwargs: Any) -> None:
        request.headers["Host"] = urlsplit(request.url or "").netloc.rpartition("@")[2]


# --- the download --------------------------------------------------------------------------------


def fetch_recording(url: str, *, out: BinaryIO, access: Access, max_bytes: int) -> Fetched:
    """Stream the mp3 at ``url`` into ``out``; Fetched on success, a RecordingError otherwise.

    The token is asked for only when the (checked) host gets it (``Target.send_token``). A 401 is
    answered once per download by a refreshed token and the same request again; a second 401 is final.
    """
    deadline = time.monotonic() + settings.RECORDINGS_DOWNLOAD_MAX_SECONDS
    timeout = (settings.RECORDINGS_CONNECT_TIMEOUT, settings.RECORDINGS_READ_TIMEOUT)
    current = url
    bearer = ""
    refreshed = False
    with requests.Session() as session:
        # No proxies from the environment: the connection must go to the address we checked.
        session.trust_env = False
        adapter: PinnedAdapter | None = None
        hops = 0
        while hops <= MAX_REDIRECTS:
            target = check_url(current)
            if adapter is not None:
                adapter.close()
            adapter = PinnedAdapter(target.address)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            headers = {"User-Agent": USER_AGENT, "Accept": "audio/mpeg", "Accept-Encoding": "identity"}
            if target.send_token:
                bearer = bearer or access.token()
                headers["Authorization"] = f"Bearer {bearer}"
            access.permit()
            try:
                response = session.get(
                    current, headers=headers, stream=True, allow_redirects=False, timeout=timeout
                )
            except requests.RequestException as exc:
                raise RecordingTransientError(f"{type(exc).__name__} talking to {target.host}") from exc
            with response:
                if response.status_code == 401:
                    _unauthorized(target, refreshed=refreshed)
                    # Guide §7.6: an expired access token gets 401. Refresh (single-flight: whoever
                    # refreshed first wins) and send the same request once more.
                    logger.info("Record host %s answered 401; refreshing the access token", target.host)
                    bearer, refreshed = access.refreshed(bearer), True
                    continue
                if response.status_code in _REDIRECT_STATUSES:
                    current = _redirect_target(response, target)
                    hops += 1
                    continue
                _check_response(response, target, max_bytes)
                return _stream(response, out, max_bytes=max_bytes, deadline=deadline, url=current)
    raise RecordingRefused(f"more than {MAX_REDIRECTS} redirects")


def _unauthorized(target: Target, *, refreshed: bool) -> None:
    """Raise unless a refreshed token may still help with this 401."""
    if not target.send_token:
        # Nothing to refresh: the host was not given the token, and is not trusted with it.
        raise RecordingPermanentError(
            f"HTTP 401 from {target.host}: it wants a token, and the token goes only to "
            "RECORDINGS_TOKEN_HOSTS over https",
            status_code=401,
        )
    if refreshed:
        # A token MTT has just issued is refused too: repeating (and refreshing) again will not help.
        raise RecordingPermanentError(
            f"HTTP 401 from {target.host} even with a freshly refreshed access token", status_code=401
        )


def _redirect_target(response: requests.Response, target: Target) -> str:
    location = response.headers.get("Location", "")
    if not location:
        raise RecordingPermanentError(f"HTTP {response.status_code} without a Location")
    following = urljoin(target.url, location)
    try:
        host = (urlsplit(following).hostname or "").rstrip(".").lower()
    except ValueError as exc:
        raise RecordingRefused(f"redirect to an invalid URL: {exc}") from exc
    if host != target.host.lower():
        raise RecordingRefused(f"redirect to another host ({host or '?'}) refused")
    return following


def _check_response(response: requests.Response, target: Target, max_bytes: int) -> None:
    status = response.status_code
    if status in (404, 410):
        raise RecordingPermanentError(
            f"HTTP {status}: not found at {target.host}", gone=True, status_code=status
        )
    if status >= 500 or status in _TRANSIENT_STATUSES:
        raise RecordingTransientError(f"HTTP {status} from {target.host}")
    if status != 200:
        raise RecordingPermanentError(f"HTTP {status} from {target.host}")
    # No check of the Content-Type: the guide promises "*.mp3", not a header; the bytes decide (_stream).
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise RecordingPermanentError(f"{int(declared)} bytes is over the {max_bytes}-byte limit")


def _stream(
    response: requests.Response, out: BinaryIO, *, max_bytes: int, deadline: float, url: str
) -> Fetched:
    digest = hashlib.sha256()
    size = 0
    head = b""
    checked = False
    content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    try:
        for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
            if not chunk:
                continue
            size += len(chunk)
            if size > max_bytes:
                raise RecordingPermanentError(f"over the {max_bytes}-byte limit")
            if not checked:
                head += chunk[: 16 - len(head)]
                if len(head) >= 16:
                    _check_magic(head, content_type)
                    checked = True
            digest.update(chunk)
            out.write(chunk)
            if time.monotonic() > deadline:
                raise RecordingTransientError("the download took too long")
    except requests.RequestException as exc:
        raise RecordingTransientError(f"{type(exc).__name__} after {size} bytes") from exc
    if size == 0:
        raise RecordingPermanentError("the record is empty")
    if not checked:
        _check_magic(head, content_type)
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) != size:
        raise RecordingTransientError(f"got {size} of {declared} bytes")
    out.flush()
    return Fetched(size=size, sha256=digest.hexdigest(), content_type=content_type, url=url)


def _check_magic(head: bytes, content_type: str) -> None:
    """The first bytes must be an mp3's (an ID3 tag or an MPEG frame sync), whatever the header said."""
    if mp3.looks_like_mp3(head):
        return
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")  # a UTF-8 BOM, white space
    if start[:1] == b"<":
        what = "an HTML or XML page"
    elif start[:1] in (b"{", b"["):
        what = "JSON"
    else:
        what = f"it starts with {head[:4].hex()}"
    served = f", served as {content_type}" if content_type else ""
    raise RecordingPermanentError(f"not an mp3 ({what}{served})")

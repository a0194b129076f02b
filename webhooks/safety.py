"""Where a webhook may be sent: the SSRF rules of recording downloads (calls/recordings/download.py).

A subscription URL must be https (plain http only with ``WEBHOOKS_ALLOW_HTTP``), carry no credentials, and
every address its host resolves to must be public — unless an admin allowed private addresses for that one
subscription (``allow_private_network``). The check runs when the admin saves the subscription and again
before every attempt, whose connection is pinned to the address checked (no DNS rebinding).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from calls.recordings.download import UrlRefused, address_unsafe_reason, resolve_addresses, url_parts
from calls.recordings.errors import RecordingTransientError


class WebhookUrlRefused(Exception):
    """The URL may not be used; ``str(exc)`` says why (English, for the log and the delivery row)."""


@dataclass(frozen=True)
class WebhookTarget:
    url: str
    host: str
    port: int
    address: str


def webhook_url_check(url: str, *, allow_private: bool) -> WebhookTarget:
    """The checked target of ``url``, or WebhookUrlRefused with the reason (nothing is sent)."""
    try:
        checked = url_parts(url, allow_http=settings.WEBHOOKS_ALLOW_HTTP)
    except UrlRefused as exc:
        raise WebhookUrlRefused(str(exc)) from exc
    host, port = checked.host, checked.port
    try:
        addresses = resolve_addresses(host, port)
    except RecordingTransientError as exc:
        raise WebhookUrlRefused(str(exc)) from exc
    if not allow_private:
        for address in addresses:
            unsafe = address_unsafe_reason(address)
            if unsafe:
                shown = f"[{host}]" if ":" in host else host
                raise WebhookUrlRefused(f"host {shown} resolves to a {unsafe} address ({address})")
    return WebhookTarget(url=url, host=host, port=port, address=str(addresses[0]))

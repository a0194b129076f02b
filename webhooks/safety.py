"""Where a webhook may be sent: the SSRF rules of recording downloads (calls/recordings/download.py).

A subscription URL must be https (plain http only with ``WEBHOOKS_ALLOW_HTTP``), carry no credentials, and
every address its host resolves to must be public — unless an admin allowed private addresses for that one
subscription (``allow_private_network``). The check runs when the admin saves the subscription and again
before every attempt, whose connection is pinned to the address checked (no DNS rebinding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from calls.recordings.download import UrlRefused, address_unsafe_reason, resolve_addresses, url_parts
from calls.recordings.errors import RecordingTransientError

# What the admin reads when a subscription's URL is refused (the admin's form), by UrlRefused.code.
URL_WORDS: dict[str, Promise] = {
    "invalid": _("this is not a valid URL"),
    "scheme": _("only https:// addresses may be used"),
    "http": _("plain http:// is not allowed, only https:// (WEBHOOKS_ALLOW_HTTP)"),
    "credentials": _(
        "a user name or password in the URL is not allowed (the signing secret proves the sender)"
    ),
    "no_host": _("the URL has no host name"),
}
# address_unsafe_reason()'s kinds of address.
ADDRESS_WORDS: dict[str, Promise] = {
    "loopback": _("this server itself (loopback)"),
    "link-local": _("a link-local address"),
    "private": _("a private network"),
    "multicast": _("a multicast address"),
    "reserved": _("a reserved address"),
    "unspecified": _("an unspecified address"),
    "not public": _("not a public address"),
}


class WebhookUrlRefused(Exception):
    """The URL may not be used; ``str(exc)`` says why (English, for the log and the delivery row), ``words``
    says it to the admin, in the UI's language."""

    def __init__(self, message: str, *, words: Any) -> None:
        super().__init__(message)
        self.words = words


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
        raise WebhookUrlRefused(str(exc), words=URL_WORDS[exc.code]) from exc
    host, port = checked.host, checked.port
    shown = f"[{host}]" if ":" in host else host
    try:
        addresses = resolve_addresses(host, port)
    except RecordingTransientError as exc:
        words = _("the host %(host)s cannot be found (DNS)") % {"host": shown}
        raise WebhookUrlRefused(str(exc), words=words) from exc
    if not allow_private:
        for address in addresses:
            unsafe = address_unsafe_reason(address)
            if unsafe:
                words = _(
                    "%(host)s leads to %(kind)s (%(address)s); tick “allow private addresses” if the "
                    "receiver is meant to be inside the network"
                ) % {"host": shown, "kind": ADDRESS_WORDS.get(unsafe, unsafe), "address": address}
                raise WebhookUrlRefused(
                    f"host {shown} resolves to a {unsafe} address ({address})", words=words
                )
    return WebhookTarget(url=url, host=host, port=port, address=str(addresses[0]))

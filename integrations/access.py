"""Who may POST notifications: the optional allow-list of MTT's networks (NOTIFY_ALLOWED_NETWORKS)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from mttcrm.clientip import address_in, client_address, parse_networks


def notify_source_allowed(request: HttpRequest) -> bool:
    """True when the allow-list is empty or the client address (mttcrm.clientip: REMOTE_ADDR, or
    X-Forwarded-For behind TRUSTED_PROXIES) is in one of its networks. An address that cannot be told
    is refused."""
    networks = parse_networks(tuple(settings.NOTIFY_ALLOWED_NETWORKS))
    if not networks:
        return True
    address = client_address(request)
    return address is not None and address_in(address, networks)

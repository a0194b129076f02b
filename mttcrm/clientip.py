"""The client's IP address, honouring X-Forwarded-For only from trusted proxies (TRUSTED_PROXIES).

Used by the notify URL's allow-list (NOTIFY_ALLOWED_NETWORKS) and by the login throttling (django-axes).
A proxy appends the address it received the request from to X-Forwarded-For, so the list reads
"client, proxy1, proxy2" and the right-hand entries are the trustworthy ones: walking from the right,
past every trusted proxy, the first address that is not a trusted proxy is the client. Whatever stands
to its left was written by the client itself and is ignored. A peer that is not a trusted proxy is the
client, whatever X-Forwarded-For it sends.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=32)
def parse_networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """CIDRs (or single addresses) from a setting; a typo is a configuration error, not "allow all"."""
    networks = []
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ImproperlyConfigured(f"Not an IP network: {entry!r} ({exc})") from None
    return tuple(networks)


def parse_address(value: str) -> IPAddress | None:
    """An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:443`.

    IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`, what a dual-stack socket reports) become IPv4.
    """
    value = value.strip()
    if value.startswith("["):
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_in(address: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


def client_address(request: HttpRequest) -> IPAddress | None:
    """The client's address; None when it cannot be told (a malformed address where it matters)."""
    peer = parse_address(str(request.META.get("REMOTE_ADDR") or ""))
    if peer is None:
        return None
    proxies = parse_networks(tuple(settings.TRUSTED_PROXIES))
    if not proxies or not address_in(peer, proxies):
        return peer
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR") or "")
    hops = [hop for hop in (h.strip() for h in forwarded.split(",")) if hop]
    client = peer
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None:
            # Garbage where the client should be: nothing trustworthy to go on.
            return None
        client = address
        if not address_in(address, proxies):
            break
    return client


def client_ip(request: HttpRequest) -> str | None:
    """django-axes' AXES_CLIENT_IP_CALLABLE: the client address as a string (the peer's if unclear)."""
    address = client_address(request)
    if address is None:
        return str(request.META.get("REMOTE_ADDR") or "") or None
    return str(address)

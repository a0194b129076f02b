"""The client address: REMOTE_ADDR, or X-Forwarded-For only through trusted proxies."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory

from mttcrm.clientip import client_address, client_ip, parse_address, parse_networks


def request(remote: str, forwarded: str | None = None) -> Any:
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().post("/", **extra)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("203.0.113.7:51000", "203.0.113.7"),
        ("2001:db8::7", "2001:db8::7"),
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("unknown", None),
        ("", None),
        ("300.1.1.1", None),
    ],
)
def test_parse_address(raw: str, expected: str | None) -> None:
    parsed = parse_address(raw)
    assert (str(parsed) if parsed else None) == expected


def test_untrusted_peer_is_the_client_whatever_it_forwards(settings: Any) -> None:
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    # A client claiming to be someone else: its own header is ignored.
    assert client_ip(request("198.51.100.9", "203.0.113.7")) == "198.51.100.9"
    settings.TRUSTED_PROXIES = []
    assert client_ip(request("198.51.100.9", "203.0.113.7")) == "198.51.100.9"


def test_trusted_proxy_gives_the_right_most_untrusted_address(settings: Any) -> None:
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "fd00::/8"]
    assert client_ip(request("10.0.0.2", "203.0.113.7")) == "203.0.113.7"
    # The client prepended a forged address; two proxies appended theirs.
    assert client_ip(request("10.0.0.2", "1.2.3.4, 203.0.113.7, 10.0.0.5")) == "203.0.113.7"
    assert client_ip(request("fd00::2", "2001:db8::7, fd00::9")) == "2001:db8::7"
    # A v4 client through a v6 proxy.
    assert client_ip(request("fd00::2", "203.0.113.7")) == "203.0.113.7"


def test_trusted_proxy_without_header_or_all_trusted(settings: Any) -> None:
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_ip(request("10.0.0.2")) == "10.0.0.2"
    assert client_ip(request("10.0.0.2", "")) == "10.0.0.2"
    assert client_ip(request("10.0.0.2", "10.1.1.1, 10.0.0.3")) == "10.1.1.1"


def test_garbage_where_the_client_should_be_is_unknown(settings: Any) -> None:
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_address(request("10.0.0.2", "not-an-ip")) is None
    # django-axes still gets an address to count against: the peer's.
    assert client_ip(request("10.0.0.2", "not-an-ip")) == "10.0.0.2"
    # Garbage left of the client is never looked at.
    assert client_ip(request("10.0.0.2", "not-an-ip, 203.0.113.7")) == "203.0.113.7"


def test_bad_network_setting_is_an_error_not_allow_all() -> None:
    with pytest.raises(ImproperlyConfigured, match="not-a-net"):
        parse_networks(("10.0.0.0/8", "not-a-net"))
    assert [str(n) for n in parse_networks(("192.0.2.1", " ", "2001:db8::/32"))] == [
        "192.0.2.1/32",
        "2001:db8::/32",
    ]

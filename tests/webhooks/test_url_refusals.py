"""The admin's form for a webhook subscription says why a URL is refused in the UI's language (Russian by
default): the reasons were the log's English ("plain http is not allowed (https only)", "cannot resolve
x: [Errno -2] …") inside a Russian sentence. Nothing is saved."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.utils import translation

from webhooks.models import WebhookSubscription
from webhooks.safety import WebhookUrlRefused, webhook_url_check

pytestmark = pytest.mark.django_db

# URL → the Russian reason the form gives
REFUSED = [
    ("http://example.com/hook", "адрес http:// без шифрования не разрешён, только https://"),
    ("ftp://example.com/hook", "можно указать только адрес https://"),
    ("https://user:pw@example.com/hook", "логин и пароль в адресе не разрешены"),
    ("https://example.com:99999/hook", "это неправильный адрес"),
    ("https://127.0.0.1/hook", "127.0.0.1 указывает на этот же сервер (loopback) (127.0.0.1)"),
    ("https://10.0.0.5/hook", "10.0.0.5 указывает на частную сеть (10.0.0.5)"),
    ("https://169.254.169.254/latest", "указывает на локальный адрес канала (link-local)"),
    ("https://[::1]/hook", "[::1] указывает на этот же сервер (loopback)"),
    ("https://nothing-here.invalid/hook", "сервер nothing-here.invalid не найден (DNS)"),
]


@pytest.mark.parametrize(("url", "words"), REFUSED)
def test_a_refused_url_is_explained_in_russian(admin_user: Any, settings: Any, url: str, words: str) -> None:
    settings.LANGUAGE_CODE = "ru"
    settings.WEBHOOKS_ALLOW_HTTP = False
    admin = Client(HTTP_ACCEPT_LANGUAGE="ru")
    admin.force_login(admin_user)
    with translation.override("ru"):
        response = admin.post(
            "/admin/webhooks/webhooksubscription/add/",
            {"name": "x", "url": url, "events": ["call.started"], "secret": "", "is_active": "on"},
        )
    assert response.status_code == 200
    errors = " ".join(
        re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S)
    )
    assert "Этот URL использовать нельзя: " in errors
    assert words in errors.replace("&#x27;", "'"), errors
    for english in ("not allowed", "resolves to", "cannot resolve", "Errno", "https only"):
        assert english not in errors, errors
    assert not WebhookSubscription.objects.exists()


# Other spellings of an inside address, each judged by the address it resolves to (the connection is pinned
# to that address): decimal, hex and octal IPv4, a short form, a host name, IPv6 forms that carry IPv4.
OTHER_SPELLINGS = [
    ("https://2130706433/hook", "loopback"),
    ("https://0x7f000001/hook", "loopback"),
    ("https://017700000001/hook", "loopback"),
    ("https://0177.0.0.1/hook", "loopback"),
    ("https://127.1/hook", "loopback"),
    ("https://localhost./hook", "loopback"),
    ("https://LOCALHOST/hook", "loopback"),
    ("https://169.254.169.254./latest", "link-local"),
    ("https://[::ffff:127.0.0.1]/hook", "loopback"),
    ("https://[2002:7f00:1::]/hook", "loopback"),  # 6to4 of 127.0.0.1
    ("https://[fd12:3456::1]/hook", "private"),  # IPv6 unique local
    ("https://[64:ff9b::a00:1]/hook", "reserved"),  # NAT64 of 10.0.0.1
    ("https://[::]/hook", "private"),
    ("https://100.64.0.1/hook", "not public"),  # carrier-grade NAT
    ("https://172.16.5.4/hook", "private"),
    ("https://172.31.255.255/hook", "private"),
]


@pytest.mark.parametrize(("url", "kind"), OTHER_SPELLINGS)
def test_every_spelling_of_an_inside_address_is_refused(settings: Any, url: str, kind: str) -> None:
    with pytest.raises(WebhookUrlRefused, match=f"resolves to a {kind} address"):
        webhook_url_check(url, allow_private=False)

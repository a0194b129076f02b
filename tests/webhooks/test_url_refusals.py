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

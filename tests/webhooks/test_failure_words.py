"""The admin says why a webhook delivery failed, and why a subscription was disabled, in the UI's language
(Russian by default). It showed the log's English ("ConnectionError: HTTPConnectionPool(host=…", "refused:
host 127.0.0.1 resolves to a loopback address", "deliveries failed for 24 h; last: 500") or, for an answer
that was not a 2xx, a bare status. Each failure below is a real one, from a real socket."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone, translation

from webhooks.models import WebhookDelivery, WebhookSubscription
from webhooks.outbox import webhook_emit
from webhooks.services import webhook_attempt, webhook_subscription_create

from .listener import Listener, serving

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _russian(settings: Any) -> Iterator[None]:
    settings.LANGUAGE_CODE = "ru"
    settings.WEBHOOKS_ALLOW_HTTP = True
    settings.WEBHOOKS_TIMEOUT_SECONDS = 1
    with translation.override("ru"):
        yield


@pytest.fixture
def listener() -> Iterator[Listener]:
    with serving(Listener(port=0)) as running:
        yield running


@pytest.fixture
def silent() -> Iterator[str]:
    """A receiver that takes the connection and never answers (the kernel accepts it: nothing reads)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook"


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def _answering(status: int) -> Callable[[Listener, str], str]:
    def setup(listener: Listener, silent: str) -> str:
        listener.answer = status
        return listener.url

    return setup


# failure → the words the admin shows
FAILURES: dict[str, tuple[Callable[[Listener, str], str], bool, str]] = {
    "500": (_answering(500), True, "получатель ответил HTTP 500"),
    "410": (_answering(410), True, "получатель ответил HTTP 410"),
    "404": (_answering(404), True, "получатель ответил HTTP 404"),
    "302": (
        _answering(302),
        True,
        "получатель ответил перенаправлением (HTTP 302): по перенаправлениям не переходим",
    ),
    "a refused connection": (
        lambda listener, silent: _closed_port(),
        True,
        "не удалось соединиться с получателем",
    ),
    "a receiver that never answers": (
        lambda listener, silent: silent,
        True,
        "получатель не ответил вовремя (тайм-аут)",
    ),
    "https to a receiver without TLS": (
        lambda listener, silent: listener.url.replace("http://", "https://"),
        True,
        "сертификат TLS получателя не принят или TLS не удалось установить",
    ),
    "a private address not allowed": (
        _answering(204),
        False,
        "этот URL использовать нельзя: 127.0.0.1 указывает на этот же сервер (loopback) (127.0.0.1)",
    ),
}


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_a_failed_delivery_is_explained_in_russian(
    integration: Any, admin_user: Any, listener: Listener, silent: str, case: str
) -> None:
    setup, private_allowed, words = FAILURES[case]
    subscription = webhook_subscription_create(
        name="ERP", url=setup(listener, silent), events=["call.started"], allow_private_network=True
    )
    WebhookSubscription.objects.filter(pk=subscription.pk).update(allow_private_network=private_allowed)
    webhook_emit(event="call.started", message_id="m-words", data={"id": 1})
    delivery = WebhookDelivery.objects.get()
    assert webhook_attempt(delivery_id=delivery.pk) == "pending"
    assert len(listener.received) <= 1  # a redirect is not followed
    admin = Client()
    admin.force_login(admin_user)
    page = admin.get(f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert page.count(words) == 2  # the delivery's last failure, and its attempt's
    listing = admin.get("/admin/webhooks/webhookdelivery/").content.decode()
    assert words in listing

    # A day of it: the subscription is disabled, and its page says why in words.
    later = delivery.created_at + timedelta(days=2)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert webhook_attempt(delivery_id=delivery.pk, now=later) == "failed"
    page = admin.get(f"/admin/webhooks/webhooksubscription/{subscription.pk}/change/").content.decode()
    assert f"доставки не удавались 24 ч; последняя: {words}" in page


def test_a_delivered_event_shows_no_failure(integration: Any, admin_user: Any, listener: Listener) -> None:
    webhook_subscription_create(
        name="ERP", url=listener.url, events=["call.started"], allow_private_network=True
    )
    webhook_emit(event="call.started", message_id="m-ok", data={"id": 1})
    delivery = WebhookDelivery.objects.get()
    assert webhook_attempt(delivery_id=delivery.pk) == "delivered"
    admin = Client()
    admin.force_login(admin_user)
    page = admin.get(f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert "получатель" not in page and "соединиться" not in page


@pytest.mark.parametrize(
    ("path", "secret"),
    [
        ("/services/T0AB12/B0CD34/Xy9SecretPart", "Xy9SecretPart"),
        ("/hook?token=s3cr3t-value", "s3cr3t-value"),
        ("/h/abc123def456?x=2", "abc123def456"),
        ("/in?q=Zq81kk", "Zq81kk"),
    ],
)
def test_a_failed_connection_keeps_the_receivers_path_and_query_out_of_the_error_and_the_log(
    integration: Any, path: str, secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Receivers carry their secret in the path or the query; requests' error repeats both."""
    url = _closed_port().removesuffix("/hook") + path
    webhook_subscription_create(name="ERP", url=url, events=["call.started"], allow_private_network=True)
    webhook_emit(event="call.started", message_id="m-secret", data={"id": 1})
    delivery = WebhookDelivery.objects.get()
    with caplog.at_level("DEBUG"):
        assert webhook_attempt(delivery_id=delivery.pk) == "pending"
    delivery.refresh_from_db()
    assert delivery.error and "127.0.0.1" in delivery.error
    assert secret not in delivery.error
    assert all(secret not in a.error for a in delivery.attempt_log.all())
    assert secret not in caplog.text

"""Outgoing webhooks: the outbox written with the change, Standard Webhooks signatures, retries with a
controlled clock, persistent failure and the health warning, the SSRF rules for subscription URLs."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from calls.models import Call, CallbackTask
from monitoring.models import HealthWarning
from monitoring.selectors import integration_health, warnings_for
from tests.calls import payloads as p
from webhooks.events import webhook_on_call
from webhooks.models import Event, WebhookAttempt, WebhookDelivery, WebhookSubscription
from webhooks.outbox import webhook_emit
from webhooks.safety import WebhookUrlRefused
from webhooks.services import webhook_attempt, webhook_subscription_create, webhooks_sweep

from .listener import Listener, serving

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _http_allowed(settings: Any) -> None:
    # The test listener speaks plain http on 127.0.0.1 (an admin allows private addresses for it).
    settings.WEBHOOKS_ALLOW_HTTP = True


@pytest.fixture
def listener() -> Iterator[Listener]:
    with serving(Listener(port=0)) as running:
        yield running


def subscribe(url: str, events: list[str] | None = None) -> WebhookSubscription:
    return webhook_subscription_create(
        name="ERP", url=url, events=events or list(Event.values), allow_private_network=True
    )


def verified(subscription: WebhookSubscription, listener: Listener) -> list[dict[str, Any]]:
    """Every received body, verified with the standardwebhooks library and the subscription's secret."""
    hook = Webhook(subscription.secret)
    return [hook.verify(r.body, r.headers) for r in listener.received]


def test_call_events_arrive_signed_through_the_production_path(
    directory: dict[str, Any], notify: Any, listener: Listener
) -> None:
    subscription = subscribe(listener.url)
    for body in p.incoming_answered():
        notify(body)
    events = verified(subscription, listener)
    assert [e["type"] for e in events] == ["call.started", "call.answered", "call.finished"]
    call = Call.objects.get()
    assert {e["data"]["id"] for e in events} == {call.pk}
    assert events[-1]["data"]["status"] == "answered" and events[-1]["data"]["talk_seconds"] == 42
    assert listener.ids() == [
        f"call-{call.pk}-started",
        f"call-{call.pk}-answered",
        f"call-{call.pk}-finished",
    ]
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    # A wrong secret does not verify.
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 40).verify(listener.received[0].body, listener.received[0].headers)


def test_a_missed_call_sends_missed_and_callback_created(
    directory: dict[str, Any], notify: Any, listener: Listener
) -> None:
    subscription = subscribe(listener.url, ["call.missed", "callback.created"])
    for body in p.incoming_missed():
        notify(body)
    events = verified(subscription, listener)
    assert sorted(e["type"] for e in events) == ["call.missed", "callback.created"]
    created = next(e for e in events if e["type"] == "callback.created")
    assert created["data"]["id"] == CallbackTask.objects.get().pk
    assert created["data"]["client_number"] == CallbackTask.objects.get().client_number


def test_applying_again_sends_nothing_twice(
    directory: dict[str, Any], notify: Any, listener: Listener
) -> None:
    subscribe(listener.url)
    notes = p.incoming_answered()
    for body in notes + notes:
        notify(body)
    assert len(listener.ids()) == len(set(listener.ids())) == 3
    assert WebhookDelivery.objects.count() == 3


def test_no_subscription_means_no_row_and_no_query(integration: Any, django_assert_num_queries: Any) -> None:
    call = Call.objects.create(integration=integration, call_key="k", status=Call.Status.ANSWERED)
    webhook_on_call(call=call, was_new=True, was_status="ringing", was_answered=False)  # warms the cache
    with django_assert_num_queries(0):
        assert webhook_on_call(call=call, was_new=True, was_status="ringing", was_answered=False) == 0
    assert not WebhookDelivery.objects.exists()


def test_the_outbox_row_commits_or_rolls_back_with_its_change(integration: Any, listener: Listener) -> None:
    subscribe(listener.url, ["call.started"])
    with pytest.raises(RuntimeError), transaction.atomic():
        webhook_emit(event="call.started", message_id="m-1", data={})
        raise RuntimeError
    assert not WebhookDelivery.objects.exists()
    with transaction.atomic():
        assert webhook_emit(event="call.started", message_id="m-2", data={}) == 1
    assert WebhookDelivery.objects.get().message_id == "m-2"


def test_a_listener_down_for_a_while_gets_every_event_once_it_is_back(integration: Any) -> None:
    down = Listener(port=0)
    with serving(down):
        pass  # the port now refuses connections
    subscription = subscribe(down.url, ["call.finished"])
    start = timezone.now()
    ids = [
        webhook_emit(event="call.finished", message_id=f"call-{n}-finished", data={"id": n}, at=start) and n
        for n in range(1, 4)
    ]
    rows = list(WebhookDelivery.objects.order_by("pk").values_list("pk", flat=True))
    assert len(rows) == 3 and ids == [1, 2, 3]
    # Down: each attempt fails and is put off with backoff (about 30 s at first, doubling, jittered).
    clock = start
    for _round in range(4):
        for pk in webhooks_sweep(now=clock):
            assert webhook_attempt(delivery_id=pk, now=clock) == "pending"
        clock += timedelta(minutes=10)
    retries = WebhookDelivery.objects.filter(status="pending")
    assert retries.count() == 3 and all(r.next_attempt_at > start for r in retries)
    assert all(d.attempts >= 2 for d in retries)
    assert WebhookAttempt.objects.filter(response_status__isnull=True).count() >= 6
    # Nothing is due before its time.
    first_due = min(r.next_attempt_at for r in retries)
    assert webhooks_sweep(now=first_due - timedelta(seconds=1)) == []
    # Back on the same port: the next sweep delivers every event, once.
    with serving(down) as back:
        clock += timedelta(hours=2)
        for pk in webhooks_sweep(now=clock):
            assert webhook_attempt(delivery_id=pk, now=clock) == "delivered"
        assert webhooks_sweep(now=clock + timedelta(hours=1)) == []
    assert sorted(back.ids()) == ["call-1-finished", "call-2-finished", "call-3-finished"]
    assert [e["data"]["id"] for e in sorted(verified(subscription, back), key=lambda e: e["data"]["id"])] == [
        1,
        2,
        3,
    ]
    subscription.refresh_from_db()
    assert subscription.is_active and subscription.failing_since is None


def test_persistent_failure_disables_the_subscription_and_warns(integration: Any, listener: Listener) -> None:
    listener.answer = 500
    subscription = subscribe(listener.url, ["call.finished"])
    start = timezone.now()
    webhook_emit(event="call.finished", message_id="call-9-finished", data={"id": 9}, at=start)
    clock = start
    while clock < start + timedelta(hours=25):
        for pk in webhooks_sweep(now=clock):
            webhook_attempt(delivery_id=pk, now=clock)
        clock += timedelta(minutes=30)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed" and delivery.response_status == 500 and delivery.response_body == "ok"
    assert delivery.attempts == WebhookAttempt.objects.filter(delivery=delivery).count() > 5
    subscription.refresh_from_db()
    assert not subscription.is_active and "500" in subscription.disabled_reason
    # The health panel warns, and no new event is stored for the disabled subscription.
    issues = warnings_for(integration_health(integration))
    assert [i.kind for i in issues if i.kind == HealthWarning.Kind.WEBHOOKS_DISABLED] == ["webhooks_disabled"]
    assert webhook_emit(event="call.finished", message_id="call-10-finished", data={}) == 0
    # Within the retry window the delivery log keeps every answer.
    assert set(WebhookAttempt.objects.values_list("response_status", flat=True)) == {500}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://10.0.0.5/hook",
        "https://192.168.1.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "https://0.0.0.0/hook",
    ],
)
def test_a_private_address_subscription_is_refused(integration: Any, admin_user: Any, url: str) -> None:
    with pytest.raises(WebhookUrlRefused):
        webhook_subscription_create(name="x", url=url, events=["call.started"])
    admin = Client()
    admin.force_login(admin_user)
    response = admin.post(
        "/admin/webhooks/webhooksubscription/add/",
        {"name": "x", "url": url, "events": ["call.started"], "secret": "", "is_active": "on"},
    )
    assert response.status_code == 200 and b"This URL may not be used" in response.content
    assert not WebhookSubscription.objects.exists()
    # Allowed explicitly by an admin, per subscription: saved, with a generated secret.
    response = admin.post(
        "/admin/webhooks/webhooksubscription/add/",
        {
            "name": "x",
            "url": url,
            "events": ["call.started"],
            "secret": "",
            "is_active": "on",
            "allow_private_network": "on",
        },
    )
    assert response.status_code == 200  # the page that shows the generated secret, once
    assert WebhookSubscription.objects.get().secret.startswith("whsec_")


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "https://user:pw@example.com/x", "http://93.184.216.34/x"]
)
def test_other_unsafe_urls_are_refused(integration: Any, settings: Any, url: str) -> None:
    settings.WEBHOOKS_ALLOW_HTTP = False
    with pytest.raises(WebhookUrlRefused):
        webhook_subscription_create(name="x", url=url, events=["call.started"])


def test_a_url_turned_private_after_saving_is_refused_at_send_time(
    integration: Any, listener: Listener
) -> None:
    subscription = subscribe(listener.url, ["call.started"])
    WebhookSubscription.objects.filter(pk=subscription.pk).update(allow_private_network=False)
    webhook_emit(event="call.started", message_id="m", data={})
    for pk in webhooks_sweep():
        webhook_attempt(delivery_id=pk)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and delivery.error.startswith("refused: host 127.0.0.1")
    assert listener.received == []


def test_the_secret_is_encrypted_at_rest(integration: Any, listener: Listener) -> None:
    subscription = subscribe(listener.url)
    table = WebhookSubscription._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT "secret" FROM "{table}"')
        stored = cursor.fetchone()[0]
    assert subscription.secret.startswith("whsec_") and subscription.secret not in stored


@pytest.mark.parametrize(
    ("answer", "size", "block", "pause"),
    [
        (500, 512 * 1024 * 1024, 65536, 0.0),  # half a gigabyte of error page
        (200, 512 * 1024 * 1024, 65536, 0.0),  # ... after a success
        (503, 1024 * 1024, 100, 0.25),  # dripped: 100 bytes every quarter of a second
    ],
    ids=["huge-error", "huge-success", "dripping"],
)
def test_a_receivers_answer_is_read_only_as_far_as_the_log_keeps_it(
    integration: Any, listener: Listener, settings: Any, answer: int, size: int, block: int, pause: float
) -> None:
    """A hostile or broken receiver cannot make a worker read (and hold) an endless answer, nor keep it
    reading one past the timeout: the status decides, the log keeps the answer's first 2000 characters."""
    settings.WEBHOOKS_TIMEOUT_SECONDS = 1
    listener.answer, listener.answer_bytes = answer, size
    listener.answer_block, listener.answer_pause = block, pause
    subscribe(listener.url, ["call.started"])
    webhook_emit(event="call.started", message_id="m-huge", data={"id": 1})
    started = time.monotonic()
    for pk in webhooks_sweep():
        webhook_attempt(delivery_id=pk)
    assert time.monotonic() - started < 5  # the timeout (1 s), and one more read at most
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == ("delivered" if answer == 200 else "pending")
    assert delivery.response_status == answer
    kept = delivery.response_body
    assert set(kept) == {"x"} and (len(kept) == 2000 if not pause else 0 < len(kept) < 2000)
    assert listener.answer_sent < 32 * 1024 * 1024  # hung up on long before the end


def test_the_admin_shows_the_delivery_log(integration: Any, admin_user: Any, listener: Listener) -> None:
    subscribe(listener.url, ["call.started"])
    with transaction.atomic():
        webhook_emit(event="call.started", message_id="m-log", data={"id": 1})
    for pk in webhooks_sweep():
        webhook_attempt(delivery_id=pk)
    admin = Client()
    admin.force_login(admin_user)
    delivery = WebhookDelivery.objects.get()
    page = admin.get(f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/")
    assert page.status_code == 200 and b"m-log" in page.content and b"204" in page.content
    assert admin.get("/admin/webhooks/webhookdelivery/").status_code == 200
    assert json.loads(json.dumps(delivery.payload))["type"] == "call.started"


def test_rotate_keys_reencrypts_the_signing_secrets(
    integration: Any, settings: Any, listener: Listener
) -> None:
    from io import StringIO

    from cryptography.fernet import Fernet
    from django.core.management import call_command

    subscription = subscribe(listener.url)
    old_key, new_key = settings.FIELD_ENCRYPTION_KEYS[0], Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    out = StringIO()
    call_command("mtt", "rotate-keys", stdout=out)
    assert "1 webhook subscription" in out.getvalue()
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key is gone
    assert WebhookSubscription.objects.get().secret == subscription.secret


def test_the_audit_trail_masks_the_signing_secret(integration: Any, admin_user: Any) -> None:
    from auditlog.models import LogEntry

    admin = Client()
    admin.force_login(admin_user)
    secret = "whsec_" + "B" * 40
    response = admin.post(
        "/admin/webhooks/webhooksubscription/add/",
        {
            "name": "ERP",
            "url": "https://93.184.216.34/hook",
            "events": ["call.finished"],
            "secret": secret,
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    entry = LogEntry.objects.get(content_type__model="webhooksubscription")
    assert secret not in str(entry.changes) and "93.184.216.34" in str(entry.changes)


def _shown_secrets(response: Any) -> list[str]:
    return re.findall(r'<code class="webhook-secret">([^<]+)</code>', response.content.decode())


def _nowhere_else(admin: Client, subscription: WebhookSubscription) -> None:
    """The secret is in no admin page, no session and no message once the page that showed it is gone."""
    from django.contrib.sessions.models import Session

    secret = subscription.secret
    for url in (
        f"/admin/webhooks/webhooksubscription/{subscription.pk}/change/",
        "/admin/webhooks/webhooksubscription/",
        f"/admin/webhooks/webhooksubscription/{subscription.pk}/history/",
        "/admin/auditlog/logentry/",
    ):
        page = admin.get(url)
        assert page.status_code == 200, url
        assert secret not in page.content.decode() and secret[6:] not in page.content.decode(), url
    change = admin.get(f"/admin/webhooks/webhooksubscription/{subscription.pk}/change/").content.decode()
    assert secret[:10] + "…" in change  # its beginning tells which one a receiver has
    assert all(secret not in str(s.get_decoded()) for s in Session.objects.all())


def test_a_generated_signing_secret_is_shown_once(integration: Any, admin_user: Any) -> None:
    admin = Client()
    admin.force_login(admin_user)
    form = {
        "name": "ERP",
        "url": "https://93.184.216.34/hook",
        "events": ["call.finished"],
        "is_active": "on",
    }
    response = admin.post("/admin/webhooks/webhooksubscription/add/", {**form, "secret": ""})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    subscription = WebhookSubscription.objects.get()
    assert _shown_secrets(response) == [subscription.secret]
    _nowhere_else(admin, subscription)


def test_a_regenerated_signing_secret_is_shown_once(integration: Any, admin_user: Any) -> None:
    subscription = webhook_subscription_create(
        name="ERP", url="https://93.184.216.34/hook", events=["call.started"]
    )
    old = subscription.secret
    admin = Client()
    admin.force_login(admin_user)
    response = admin.post(
        "/admin/webhooks/webhooksubscription/",
        {"action": "regenerate_secret", "_selected_action": [subscription.pk]},
    )
    subscription.refresh_from_db()
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert subscription.secret != old and _shown_secrets(response) == [subscription.secret]
    _nowhere_else(admin, subscription)


@pytest.mark.parametrize("url", ["https://127.0.0.1/hook", "not a url", "ftp://93.184.216.34/"])
def test_a_typed_secret_is_not_shown_back_by_a_form_with_errors(
    integration: Any, admin_user: Any, url: str
) -> None:
    admin = Client()
    admin.force_login(admin_user)
    secret = "whsec_" + "C" * 40
    form = {"name": "ERP", "url": url, "events": ["call.finished"], "is_active": "on", "secret": secret}
    response = admin.post("/admin/webhooks/webhooksubscription/add/", form)
    assert response.status_code == 200 and not WebhookSubscription.objects.exists()
    assert "C" * 40 not in response.content.decode()


def test_the_sweep_deletes_old_log_rows_only(integration: Any, listener: Listener, settings: Any) -> None:
    settings.WEBHOOKS_KEEP_DAYS = 30
    subscribe(listener.url, ["call.started"])
    old = timezone.now() - timedelta(days=31)
    for n, status in enumerate(["delivered", "failed", "pending"]):
        webhook_emit(event="call.started", message_id=f"old-{n}", data={}, at=old)
        WebhookDelivery.objects.filter(message_id=f"old-{n}").update(status=status)
    webhook_emit(event="call.started", message_id="recent", data={})
    WebhookDelivery.objects.filter(message_id="recent").update(status="delivered")
    webhooks_sweep()
    assert sorted(WebhookDelivery.objects.values_list("message_id", flat=True)) == ["old-2", "recent"]

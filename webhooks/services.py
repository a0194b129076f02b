"""Webhooks: the outbox (``webhook_emit``, in the transaction of the change), sending and retrying.

- ``webhook_emit`` (outbox.py) writes one delivery row per subscription of the event in ONE INSERT, and
  only when a subscription for the event exists: which events have subscribers is cached per process for
  ``WEBHOOKS_SUBSCRIPTIONS_CACHE_SECONDS`` (the applier asks for each notification; with no subscriptions
  an event costs a dictionary lookup). After the commit a Celery task sends the event's rows.
- ``webhook_attempt`` sends one row (a conditional claim first: never two senders), signed per Standard
  Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``). A 2xx delivers it; anything else
  is retried with exponential backoff and jitter until ``WEBHOOKS_RETRY_FOR_SECONDS`` after the event; then
  the row fails for good and its subscription is disabled (a warning on the health panel).
- ``webhooks_sweep`` (beat) hands out what is due: retries, rows whose task was lost, stale claims.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from calls.recordings.download import PinnedAdapter
from mttcrm.logs import MASK

from .models import Event, WebhookAttempt, WebhookDelivery, WebhookSubscription
from .safety import WebhookUrlRefused, webhook_url_check

logger = logging.getLogger(__name__)

USER_AGENT = "mttcrm-webhooks/1"
# What is kept of a receiver's answer (the delivery log).
ANSWER_CHARS = 2000
# ... read as at most this many bytes (UTF-8: up to 4 a character).
ANSWER_BYTES = ANSWER_CHARS * 4
# A claim older than this is a sender that died: the row is sent again.
STALE_CLAIM = timedelta(minutes=10)
SWEEP_BATCH = 500
_random = secrets.SystemRandom()

# event -> ids of the active subscriptions to it; and when it was read (time.monotonic()).
_subscribed: tuple[float, dict[str, tuple[int, ...]]] | None = None


def webhook_secret_generate() -> str:
    """A new signing secret in Standard Webhooks' format: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_secret_valid(secret: str) -> bool:
    if not secret.startswith("whsec_"):
        return False
    try:
        return len(base64.b64decode(secret[len("whsec_") :], validate=True)) >= 24
    except ValueError:
        return False


def webhook_subscriptions_changed() -> None:
    """Forget this process's cache of subscribed events (the admin calls it after a change; other
    processes see the change within WEBHOOKS_SUBSCRIPTIONS_CACHE_SECONDS)."""
    global _subscribed
    _subscribed = None


def _subscriptions() -> dict[str, tuple[int, ...]]:
    global _subscribed
    now = time.monotonic()
    if _subscribed is not None and now - _subscribed[0] < settings.WEBHOOKS_SUBSCRIPTIONS_CACHE_SECONDS:
        return _subscribed[1]
    by_event: dict[str, list[int]] = {}
    for pk, events in WebhookSubscription.objects.filter(is_active=True).values_list("pk", "events"):
        for event in events or []:
            by_event.setdefault(str(event), []).append(pk)
    table = {event: tuple(ids) for event, ids in by_event.items()}
    _subscribed = (now, table)
    return table


def subscribed_to(event: str) -> tuple[int, ...]:
    """The active subscriptions to ``event`` (cached: the hot path asks before building a payload)."""
    return _subscriptions().get(event, ())


# --- sending -------------------------------------------------------------------------------------


def _backoff(attempts: int) -> timedelta:
    """Exponential backoff with jitter: about BASE·2^(n-1), capped, each wait 50–100 % of that."""
    base = settings.WEBHOOKS_BACKOFF_SECONDS * (2 ** max(0, attempts - 1))
    capped = min(settings.WEBHOOKS_BACKOFF_MAX_SECONDS, base)
    return timedelta(seconds=capped * _random.uniform(0.5, 1.0))


def _body(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def webhook_headers(*, secret: str, message_id: str, body: str, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt (``at``: the attempt's wall-clock time)."""
    signature = Webhook(secret).sign(message_id, at, body)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }


def _post(subscription: WebhookSubscription, message_id: str, body: str) -> tuple[int | None, str, str]:
    """(status, answer, error) of one POST; the URL checked again and the connection pinned to it."""
    try:
        target = webhook_url_check(subscription.url, allow_private=subscription.allow_private_network)
    except WebhookUrlRefused as exc:
        return None, "", f"refused: {exc}"
    headers = webhook_headers(secret=subscription.secret, message_id=message_id, body=body, at=timezone.now())
    timeout = settings.WEBHOOKS_TIMEOUT_SECONDS
    with requests.Session() as session:
        session.trust_env = False  # no proxy from the environment: the checked address only
        adapter = PinnedAdapter(target.address)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        try:
            response = session.post(
                target.url,
                data=body.encode(),
                # Uncompressed, so that what is read of the answer is what is kept (no gzip bomb).
                headers={**headers, "Accept-Encoding": "identity"},
                timeout=(timeout, timeout),
                allow_redirects=False,
                stream=True,
            )
        except requests.RequestException as exc:
            return (
                None,
                "",
                _without_request_target(f"{type(exc).__name__}: {exc}", target.url)[:ANSWER_CHARS],
            )
        with response:
            try:
                answer = _answer_start(response, deadline=time.monotonic() + timeout)
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                # A broken or timed-out answer after its status line (urllib3's ProtocolError,
                # ReadTimeoutError): the status is what counts.
                logger.debug("Webhook answer unreadable: %s", type(exc).__name__)
                answer = ""
            return response.status_code, answer, ""


def _without_request_target(error: str, url: str) -> str:
    """A connection error without the receiver's path and query, which requests puts in it ("…with url:
    /services/T0/B0/XXXX?token=…"): receivers often carry their secret there, and the error is stored and
    logged. The host stays — it is what an admin needs to tell which receiver failed."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    if target in ("", "/"):
        return error
    return error.replace(target, "/" + MASK)


def _answer_start(response: requests.Response, *, deadline: float) -> str:
    """The beginning of a receiver's answer, for the delivery log: at most ANSWER_BYTES, read until
    ``deadline`` at the latest. The rest is never read — an endless or huge answer costs no memory, a
    dripping one no more than the timeout (the status line is what decides the delivery)."""
    data = bytearray()
    while len(data) < ANSWER_BYTES and time.monotonic() < deadline:
        chunk = response.raw.read1(ANSWER_BYTES - len(data), decode_content=False)
        if not chunk:
            break
        data += chunk[: ANSWER_BYTES - len(data)]
    return bytes(data).decode(response.encoding or "utf-8", errors="replace")[:ANSWER_CHARS]


def webhook_attempt(*, delivery_id: int, now: datetime | None = None) -> str:
    """Send one due delivery once; returns the status it ends in (or "skipped": not due, taken, gone).

    ``now`` decides what is due and when to retry (tests pass their own clock); the signature always
    carries the real time, which receivers check against theirs.
    """
    now = now or timezone.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
    ).update(status=WebhookDelivery.Status.SENDING, claimed_at=now)
    if claimed != 1:
        return "skipped"
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    mine = WebhookDelivery.objects.filter(
        pk=delivery_id, status=WebhookDelivery.Status.SENDING, claimed_at=now
    )
    subscription = WebhookSubscription.objects.filter(pk=delivery.subscription_id).first()
    if subscription is None:
        delivery.delete()  # its subscription was deleted after the row was written
        return "skipped"
    if not subscription.is_active:
        # Kept for when an admin enables it again.
        mine.update(status=WebhookDelivery.Status.PENDING, claimed_at=None)
        return "skipped"
    started = time.monotonic()
    status, answer, error = _post(subscription, delivery.message_id, _body(delivery.payload))
    duration_ms = int((time.monotonic() - started) * 1000)
    WebhookAttempt.objects.create(
        delivery_id=delivery_id,
        at=now,
        response_status=status,
        response_body=answer,
        error=error,
        duration_ms=duration_ms,
    )
    attempts = delivery.attempts + 1
    common: dict[str, Any] = {
        "attempts": attempts,
        "last_attempt_at": now,
        "response_status": status,
        "response_body": answer,
        "error": error,
        "claimed_at": None,
    }
    if status is not None and 200 <= status < 300:
        mine.update(status=WebhookDelivery.Status.DELIVERED, delivered_at=now, **common)
        WebhookSubscription.objects.filter(pk=subscription.pk, failing_since__isnull=False).update(
            failing_since=None
        )
        logger.info("Webhook %s delivered to subscription %s", delivery.message_id, subscription.pk)
        return WebhookDelivery.Status.DELIVERED
    logger.warning(
        "Webhook %s to subscription %s failed (attempt %s): %s",
        delivery.message_id,
        subscription.pk,
        attempts,
        status or error,
    )
    WebhookSubscription.objects.filter(pk=subscription.pk, failing_since__isnull=True).update(
        failing_since=now
    )
    deadline = delivery.created_at + timedelta(seconds=settings.WEBHOOKS_RETRY_FOR_SECONDS)
    retry_at = now + _backoff(attempts)
    if now >= deadline:
        mine.update(status=WebhookDelivery.Status.FAILED, **common)
        webhook_subscription_disable(
            subscription_id=subscription.pk,
            now=now,
            reason=f"deliveries failed for {settings.WEBHOOKS_RETRY_FOR_SECONDS // 3600} h; "
            f"last: {status or error}",
        )
        return WebhookDelivery.Status.FAILED
    mine.update(status=WebhookDelivery.Status.PENDING, next_attempt_at=min(retry_at, deadline), **common)
    return WebhookDelivery.Status.PENDING


def webhook_subscription_disable(*, subscription_id: int, now: datetime, reason: str) -> bool:
    """Persistent failure: stop sending to it (its pending rows wait for an admin to enable it again)."""
    disabled = WebhookSubscription.objects.filter(pk=subscription_id, is_active=True).update(
        is_active=False, disabled_at=now, disabled_reason=reason[:1000]
    )
    if disabled:
        logger.error("Webhook subscription %s disabled: %s", subscription_id, reason)
        webhook_subscriptions_changed()
    return bool(disabled)


def webhook_send_message(*, message_id: str, now: datetime | None = None) -> int:
    """Send the due rows of one event (the task queued after its commit). Returns how many were sent."""
    now = now or timezone.now()
    ids = WebhookDelivery.objects.filter(
        message_id=message_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
    ).values_list("pk", flat=True)
    return sum(webhook_attempt(delivery_id=pk, now=now) != "skipped" for pk in list(ids))


def webhooks_sweep(*, now: datetime | None = None) -> list[int]:
    """Beat: put stale claims back, delete the log's rows older than WEBHOOKS_KEEP_DAYS, and return the ids
    of the due rows of active subscriptions (oldest first) for the caller to send."""
    now = now or timezone.now()
    WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.SENDING, claimed_at__lt=now - STALE_CLAIM
    ).update(status=WebhookDelivery.Status.PENDING, claimed_at=None)
    # The log's old rows go (their attempts with them): delivered or failed for good, long enough ago.
    WebhookDelivery.objects.filter(
        status__in=[WebhookDelivery.Status.DELIVERED, WebhookDelivery.Status.FAILED],
        created_at__lt=now - timedelta(days=settings.WEBHOOKS_KEEP_DAYS),
    ).delete()
    active = WebhookSubscription.objects.filter(is_active=True).values("pk")
    due = WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now, subscription_id__in=active
    ).order_by("next_attempt_at", "pk")
    return list(due.values_list("pk", flat=True)[:SWEEP_BATCH])


def webhook_subscription_save(*, subscription: WebhookSubscription) -> WebhookSubscription:
    """Save a subscription whose URL passed ``webhook_url_check`` (the admin form checks it first)."""
    if not subscription.secret:
        subscription.secret = webhook_secret_generate()
    if subscription.is_active:
        subscription.disabled_at = None
        subscription.disabled_reason = ""
    subscription.save()
    transaction.on_commit(webhook_subscriptions_changed)
    webhook_subscriptions_changed()
    return subscription


def webhook_subscription_create(
    *, name: str, url: str, events: Iterable[str], allow_private_network: bool = False, secret: str = ""
) -> WebhookSubscription:
    """A new subscription (WebhookUrlRefused for a URL that may not be used)."""
    webhook_url_check(url, allow_private=allow_private_network)
    unknown = set(events) - set(Event.values)
    if unknown:
        raise ValueError(f"unknown events: {sorted(unknown)}")
    return webhook_subscription_save(
        subscription=WebhookSubscription(
            name=name,
            url=url,
            events=list(events),
            allow_private_network=allow_private_network,
            secret=secret,
        )
    )


def webhooks_disabled_count() -> int:
    """Subscriptions disabled by persistent failure (the health panel's warning); one query."""
    return WebhookSubscription.objects.filter(Q(is_active=False) & ~Q(disabled_reason="")).count()

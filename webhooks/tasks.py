"""Celery tasks of the webhooks. Thin: ids in, services do the work (idempotent: a conditional claim)."""

from __future__ import annotations

from celery import shared_task

from .services import webhook_attempt, webhook_send_message, webhooks_sweep


@shared_task(name="webhooks.tasks.deliver_webhook", acks_late=True, reject_on_worker_lost=True)
def deliver_webhook(message_id: str) -> int:
    """After the commit of an event: send its rows (each retried by the sweep when it fails)."""
    return webhook_send_message(message_id=message_id)


@shared_task(name="webhooks.tasks.deliver_webhook_delivery", acks_late=True, reject_on_worker_lost=True)
def deliver_webhook_delivery(delivery_id: int) -> str:
    return webhook_attempt(delivery_id=delivery_id)


@shared_task(name="webhooks.tasks.sweep_webhook_deliveries")
def sweep_webhook_deliveries() -> int:
    """Beat: what is due (retries with backoff, rows whose task was lost) goes out, one task per row."""
    due = webhooks_sweep()
    for pk in due:
        deliver_webhook_delivery.delay(pk)
    return len(due)

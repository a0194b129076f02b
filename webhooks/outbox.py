"""The outbox: an event is stored as delivery rows in the transaction of the change that caused it, and
its send queued after the commit (webhooks/services.py sends)."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from .models import WebhookDelivery
from .services import subscribed_to
from .tasks import deliver_webhook

logger = logging.getLogger(__name__)


def webhook_emit(*, event: str, message_id: str, data: dict[str, Any], at: datetime | None = None) -> int:
    """Store ``event`` for every subscription to it (one INSERT), in the caller's transaction; the send is
    queued after the commit. A ``message_id`` already stored for a subscription is not stored twice.
    Returns the number of rows written (0: nobody subscribed)."""
    subscription_ids = subscribed_to(event)
    if not subscription_ids:
        return 0
    at = at or timezone.now()
    payload = {"type": event, "timestamp": at.isoformat(), "data": data}
    # Stored as it will be sent: JSON types only (datetimes as ISO 8601).
    payload = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                subscription_id=pk,
                event_type=event,
                message_id=message_id,
                payload=payload,
                created_at=at,
                next_attempt_at=at,
            )
            for pk in subscription_ids
        ],
        ignore_conflicts=True,
    )
    transaction.on_commit(lambda: _queue(message_id), robust=True)
    return len(subscription_ids)


def _queue(message_id: str) -> None:
    try:
        deliver_webhook.delay(message_id)
    except Exception:
        # The sweep sends it on its next run.
        logger.warning("Webhooks: queueing message %s failed", message_id, exc_info=True)

"""recording.stored: sent when a download finishes (the outbox row commits with the stored status)."""

from __future__ import annotations

from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from calls.models import Recording
from tests.calls.recording_fixtures import GUIDE_RECORD_PATH, recorded_body
from webhooks.services import webhook_subscription_create

from .listener import Listener, serving

pytestmark = pytest.mark.django_db


def test_a_stored_recording_is_announced(notify: Any, record_host: Any, settings: Any) -> None:
    settings.WEBHOOKS_ALLOW_HTTP = True
    with serving(Listener(port=0)) as listener:
        subscription = webhook_subscription_create(
            name="BI", url=listener.url, events=["recording.stored"], allow_private_network=True
        )
        notify(recorded_body(record_host.url + GUIDE_RECORD_PATH))
    recording = Recording.objects.get()
    assert recording.status == Recording.Status.STORED
    [event] = [Webhook(subscription.secret).verify(r.body, r.headers) for r in listener.received]
    assert event["type"] == "recording.stored"
    assert event["data"]["id"] == recording.pk and event["data"]["call_id"] == recording.call_id
    assert event["data"]["audio_url"] == f"/api/v1/recordings/{recording.pk}/audio/"
    assert listener.received[0].headers["webhook-id"] == f"recording-{recording.pk}-stored"

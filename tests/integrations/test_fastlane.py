"""The notify URL's fast lane (integrations/fastlane.py): ordinary notifications stored on the event loop,
everything else handed to the notify view with its body intact."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import psycopg
import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.db import OperationalError, connection
from django.utils import timezone

from calls.routing import _parking_numbers, parking_numbers_forget
from integrations import fastlane
from integrations.inbox import INBOX_CHANNEL, inbox_process_state_reset
from integrations.models import ExternalNumber, Integration, NotificationEvent
from integrations.selectors import integration_for_notification, notify_tokens_forget
from mttcrm import dbdown
from tests.conftest import load_fixture

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the lane stores on a connection of its own
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the fast lane needs PostgreSQL"),
]

OUTGOING_TRYING = "notifications/02_outgoing_trying.json"  # not urgent: the applier's


@pytest.fixture(autouse=True)
def lane_on(settings: Any) -> Any:
    settings.NOTIFY_APPLY_IN = "applier"
    settings.NOTIFY_FAST_LANE = True
    notify_tokens_forget()
    parking_numbers_forget()
    inbox_process_state_reset()
    yield settings
    notify_tokens_forget()
    parking_numbers_forget()
    dbdown.database_breaker_reset()


def warm(integration: Integration) -> None:
    """What an earlier notification through the view leaves behind: the token cached."""
    assert integration_for_notification(token=integration.notify_token, now=timezone.now()) is not None


class Behind:
    """Stands for Django behind the lane: records what reached it, body included."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        self.bodies.append(b"".join(chunks))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"django"})


def call(
    app: Any, path: str, body: bytes, *, method: str = "POST", chunk: int = 0, host: bytes = b"localhost"
) -> tuple[int, bytes]:
    """One request through ``app`` on a fresh event loop (the lane's pool closed after it)."""

    async def run() -> tuple[int, bytes]:
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "query_string": b"",
            "headers": [
                (b"host", host),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        communicator = ApplicationCommunicator(app, scope)
        try:
            parts = ([body[i : i + chunk] for i in range(0, len(body), chunk)] if chunk else []) or [body]
            for i, part in enumerate(parts):
                await communicator.send_input(
                    {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
                )
            start = await communicator.receive_output(10)
            content = b""
            while True:
                message = await communicator.receive_output(10)
                content += message.get("body", b"")
                if not message.get("more_body"):
                    break
            return start["status"], content
        finally:
            await communicator.wait(1)
            await fastlane.fast_lane_close()

    return async_to_sync(run)()


def encoded(name: str, **dumps: Any) -> bytes:
    return json.dumps(load_fixture(name), ensure_ascii=False, **dumps).encode()


def test_an_ordinary_notification_is_stored_and_answered_on_the_loop(integration: Integration) -> None:
    warm(integration)
    behind = Behind()
    lane = fastlane.NotifyFastLane(behind)
    body = load_fixture(OUTGOING_TRYING)
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as listener:
        listener.execute(f"LISTEN {INBOX_CHANNEL}")
        status, content = call(lane, integration.notify_path, encoded(OUTGOING_TRYING))
        assert status == 200, content
        answer = json.loads(content)
        woken = [n.payload for n in listener.notifies(timeout=5, stop_after=1)]
    assert behind.bodies == []  # Django never saw it
    event = NotificationEvent.objects.get()
    assert answer == {"ok": True, "id": event.pk, "duplicate": False}
    assert woken == [str(event.pk)]  # the applier is woken, as by the view
    assert event.body == body and event.event == body["event"]
    assert event.status == NotificationEvent.Status.PENDING
    integration.refresh_from_db()
    assert integration.last_notification_at is not None

    # The same notification again, keys reordered and indented: recognized, stored once.
    status, content = call(lane, integration.notify_path, encoded(OUTGOING_TRYING, indent=2, sort_keys=True))
    assert status == 200
    assert json.loads(content) == {"ok": True, "id": event.pk, "duplicate": True}
    assert NotificationEvent.objects.count() == 1 and behind.bodies == []


def test_a_body_sent_in_pieces_is_stored_whole(integration: Integration) -> None:
    warm(integration)
    status, content = call(
        fastlane.NotifyFastLane(Behind()), integration.notify_path, encoded(OUTGOING_TRYING), chunk=100
    )
    assert status == 200 and json.loads(content)["duplicate"] is False
    assert NotificationEvent.objects.get().body == load_fixture(OUTGOING_TRYING)


def _cold_token(integration: Integration, settings: Any) -> None:
    notify_tokens_forget()


def _malformed(integration: Integration, settings: Any) -> bytes:
    return b'{"event": "callNotifications", "result": '


def _too_large(integration: Integration, settings: Any) -> None:
    settings.MTT_NOTIFY_MAX_BYTES = 100


def _allow_list(integration: Integration, settings: Any) -> None:
    settings.NOTIFY_ALLOWED_NETWORKS = ["127.0.0.0/8"]


def _request_mode(integration: Integration, settings: Any) -> None:
    settings.NOTIFY_APPLY_IN = "request"


def _switched_off(integration: Integration, settings: Any) -> None:
    settings.NOTIFY_FAST_LANE = False


def _database_down(integration: Integration, settings: Any) -> None:
    dbdown.database_note_error(OperationalError("server closed the connection unexpectedly"))
    assert dbdown.database_marked_down()


def _another_host(integration: Integration, settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["crm.example.com"]


_another_host.host = b"evil.example.com"  # type: ignore[attr-defined]


def _parked_trying(integration: Integration, settings: Any) -> bytes:
    ExternalNumber.objects.create(integration=integration, number="74996497803", is_parking=True)
    assert _parking_numbers(integration.pk)  # cached: known urgent, applied before the answer
    return encoded("notifications/01_incoming_trying.json")


def _parked_trying_cold_cache(integration: Integration, settings: Any) -> bytes:
    ExternalNumber.objects.create(integration=integration, number="74996497803", is_parking=True)
    parking_numbers_forget()  # telling needs the database, which Django refuses on the loop
    return encoded("notifications/01_incoming_trying.json")


@pytest.mark.parametrize(
    "situation",
    [
        _cold_token,
        _malformed,
        _too_large,
        _allow_list,
        _another_host,
        _request_mode,
        _switched_off,
        _database_down,
        _parked_trying,
        _parked_trying_cold_cache,
    ],
)
def test_the_notify_view_gets_what_the_lane_leaves_with_its_body(
    integration: Integration, settings: Any, situation: Any
) -> None:
    warm(integration)
    body = situation(integration, settings) or encoded(OUTGOING_TRYING)
    behind = Behind()
    host = getattr(situation, "host", b"localhost")
    status, content = call(
        fastlane.NotifyFastLane(behind), integration.notify_path, body, chunk=64, host=host
    )
    assert (status, content) == (299, b"django")
    assert behind.bodies == [body]
    assert NotificationEvent.objects.count() == 0


def test_storing_that_fails_is_left_to_the_view(integration: Integration) -> None:
    warm(integration)
    behind = Behind()
    body = encoded(OUTGOING_TRYING)
    with mock.patch.object(
        fastlane, "notification_receive_async", side_effect=psycopg.OperationalError("lost")
    ):
        status, _content = call(fastlane.NotifyFastLane(behind), integration.notify_path, body)
    assert status == 299 and behind.bodies == [body]


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/mtt/{token}/"), ("POST", "/mtt/{token}/x/"), ("POST", "/ping")]
)
def test_other_requests_pass_through(integration: Integration, method: str, path: str) -> None:
    warm(integration)
    behind = Behind()
    status, _content = call(
        fastlane.NotifyFastLane(behind), path.format(token=integration.notify_token), b"{}", method=method
    )
    assert status == 299 and behind.bodies == [b"{}"]


def test_in_the_production_app_the_view_answers_what_the_lane_leaves(integration: Integration) -> None:
    """Through mttcrm.asgi.application: the first notification (token not cached) is stored by the view,
    which caches the token; the next goes by the lane; a malformed one gets the view's 400."""
    from integrations import views
    from mttcrm.asgi import application

    spy = mock.Mock(wraps=views.notification_receive)
    with mock.patch.object(views, "notification_receive", spy):
        first = call(application, integration.notify_path, encoded(OUTGOING_TRYING))
        second = call(application, integration.notify_path, encoded("notifications/04_outgoing_showing.json"))
        bad = call(application, integration.notify_path, b'{"event": 1}')
    assert first[0] == second[0] == 200
    assert spy.call_count == 1  # the second did not reach the view
    assert json.loads(second[1])["id"] > json.loads(first[1])["id"]
    assert bad[0] == 400 and b"event" in bad[1]
    assert NotificationEvent.objects.count() == 2

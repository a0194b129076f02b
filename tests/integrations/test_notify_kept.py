"""What MTT sends is kept even when we cannot use it (MTT promises no resend), and several notifications in
one POST are each stored: the notify URL (integrations/views.py), the parser (integrations/mtt/notifications.py)
and the spool's replay (integrations/spool.py)."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from django.test import Client

from calls.models import Call
from integrations import spool
from integrations.models import Integration, NotificationEvent
from integrations.mtt.notifications import MAX_BATCH, parse_body, parse_notifications
from tests.calls.conftest import directory  # noqa: F401 - the PBX directory of the guide's payloads
from tests.calls.payloads import incoming_answered
from tests.conftest import load_fixture
from tests.integrations.spool_fixtures import database_down, spooled_files

pytestmark = pytest.mark.django_db


def post_raw(client: Client, integration: Integration, raw: bytes) -> Any:
    return client.post(integration.notify_path, data=raw, content_type="application/json")


def original_bytes(body: dict[str, str]) -> bytes:
    """The bytes that came, from what is stored: base64 when the text is not exactly them."""
    if "base64" in body:
        return base64.b64decode(body["base64"])
    return body["unreadable_body"].encode("utf-8")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json at all", "body is not JSON"),
        (b'{"event": "callNotifications", ', "body is not JSON"),
        (b"\xff\xfe\x00garbage", "body is not UTF-8"),
        ("event=callNotifications&state=trying".encode("cp1251"), "body is not JSON"),
        ("состояние: звонок".encode("cp1251"), "body is not UTF-8"),
        (b"nul \x00 inside", "body is not JSON"),
        (b"", "body is empty"),
        (b"  \r\n", "body is empty"),
        (b"\xef\xbb\xbf", "body is empty"),
        (b"\xef\xbb\xbf\xef\xbb\xbf{}", "body is not JSON"),
        (b"\xef\xbb\xbfnot json", "body is not JSON"),
    ],
)
def test_a_body_we_cannot_read_is_kept_acknowledged_and_logged(
    client: Client, integration: Integration, raw: bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="integrations.inbox"):
        response = post_raw(client, integration, raw)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["ok"] is True and answer["ignored"] is True and answer["duplicate"] is False
    assert answer["reason"] == reason
    event = NotificationEvent.objects.get(pk=answer["id"])
    assert event.status == NotificationEvent.Status.IGNORED
    assert event.error == reason
    # Exactly what came can be had back from the row.
    assert original_bytes(event.body) == raw
    assert any(reason in r.getMessage() for r in caplog.records)
    # The same bytes again are the same notification; never applied.
    again = post_raw(client, integration, raw)
    assert again.json()["duplicate"] is True and again.json()["id"] == event.pk
    assert NotificationEvent.objects.count() == 1


def test_two_bodies_that_differ_only_in_bytes_the_text_cannot_show_are_two_rows(
    client: Client, integration: Integration
) -> None:
    # Both decode to the same text with U+FFFD in place of the bad byte.
    first = post_raw(client, integration, b"call \xff").json()
    second = post_raw(client, integration, b"call \xfe").json()
    assert first["id"] != second["id"]
    assert second["duplicate"] is False


@pytest.mark.parametrize("raw", [b"\xff" * 10, b"not json", b"", b"[" * 5000])
def test_the_parser_never_raises_and_gives_a_storable_ignored_envelope(raw: bytes) -> None:
    envelope = parse_body(raw)
    assert not envelope.understood and envelope.ignored_because
    assert "\x00" not in envelope.canonical
    assert parse_notifications(raw) == [envelope]


# --- several notifications in one POST ------------------------------------------------------------------


@pytest.mark.usefixtures("directory")
def test_an_array_of_notifications_is_stored_each_in_order_and_applied(
    client: Client, integration: Integration, apply_inbox: Any
) -> None:
    bodies = incoming_answered()
    response = client.post(integration.notify_path, data=json.dumps(bodies), content_type="application/json")
    assert response.status_code == 200, response.content
    answers = response.json()["notifications"]
    assert response.json()["ok"] is True
    assert [a["duplicate"] for a in answers] == [False] * len(bodies)
    rows = [NotificationEvent.objects.get(pk=a["id"]) for a in answers]
    assert [row.body for row in rows] == bodies
    assert [a["id"] for a in answers] == sorted(a["id"] for a in answers)
    apply_inbox()
    assert all(
        row.status == NotificationEvent.Status.APPLIED
        for row in NotificationEvent.objects.filter(pk__in=[a["id"] for a in answers])
    )
    call = Call.objects.get()
    assert call.ended_at is not None
    # The same notification alone, later, is a copy of the one in the array.
    alone = client.post(
        integration.notify_path, data=json.dumps(bodies[0]), content_type="application/json"
    ).json()
    assert alone["duplicate"] is True and alone["id"] == answers[0]["id"]


def test_an_array_with_what_we_cannot_use_keeps_that_one_as_ignored(
    client: Client, integration: Integration
) -> None:
    good = load_fixture("notifications/01_incoming_trying.json")
    odd = {"event": "somethingNew", "result": {"x": 1}}
    response = client.post(
        integration.notify_path, data=json.dumps([good, odd, good]), content_type="application/json"
    )
    first, second, third = response.json()["notifications"]
    assert "ignored" not in first and second["ignored"] is True and "somethingNew" in second["reason"]
    assert third == {**first, "duplicate": True}
    assert NotificationEvent.objects.count() == 2


@pytest.mark.usefixtures("directory")
@pytest.mark.parametrize("odd", [None, "text", 7, True, [], ["nested"]], ids=repr)
def test_an_item_that_is_no_object_is_kept_apart_and_the_calls_beside_it_apply(
    client: Client, integration: Integration, apply_inbox: Any, odd: Any
) -> None:
    bodies = incoming_answered()
    response = client.post(
        integration.notify_path, data=json.dumps([odd, *bodies]), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    first, *rest = response.json()["notifications"]
    assert first["ignored"] is True and first["reason"] == "body is not a JSON object"
    assert all("ignored" not in answer for answer in rest)
    kept = NotificationEvent.objects.get(pk=first["id"])
    assert kept.body == odd and kept.status == NotificationEvent.Status.IGNORED
    apply_inbox()
    assert Call.objects.get().ended_at is not None
    assert NotificationEvent.objects.filter(status=NotificationEvent.Status.APPLIED).count() == len(bodies)


@pytest.mark.parametrize(
    "body",
    [
        [],
        [1, 2, 3],
        [None, "text", [{"event": "callNotifications"}]],
        [{"event": "x", "result": {}}] * (MAX_BATCH + 1),
    ],
    ids=["empty", "numbers", "no-object", "too-long"],
)
def test_any_other_array_is_one_body_kept_as_ignored(
    client: Client, integration: Integration, body: list[Any]
) -> None:
    response = client.post(integration.notify_path, data=json.dumps(body), content_type="application/json")
    answer = response.json()
    assert response.status_code == 200 and answer["ignored"] is True
    assert answer["reason"] == "body is not a JSON object"
    assert NotificationEvent.objects.get().body == body


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("directory")
def test_while_the_database_is_away_what_we_cannot_read_and_arrays_are_spooled_and_replayed(
    client: Client, integration: Integration, settings: Any
) -> None:
    bodies = incoming_answered()[:2]
    with database_down():
        assert post_raw(client, integration, b"not json").json()["spooled"] is True
        assert post_raw(client, integration, json.dumps(bodies).encode()).json()["spooled"] is True
    assert len(spooled_files(settings)) == 2
    result = spool.spool_replay()
    assert result.stored == 3 and result.rejected == 0
    assert spooled_files(settings) == []
    kept = NotificationEvent.objects.get(status=NotificationEvent.Status.IGNORED)
    assert kept.body == {"unreadable_body": "not json"}
    assert sorted(
        row.body["result"]["callInfo"]["state"]
        for row in NotificationEvent.objects.exclude(status=NotificationEvent.Status.IGNORED)
    ) == sorted(b["result"]["callInfo"]["state"] for b in bodies)
    # Replayed again (both spooled and delivered): stored once.
    post_raw(client, integration, json.dumps(bodies).encode())
    assert NotificationEvent.objects.count() == 3

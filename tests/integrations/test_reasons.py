"""Why a notification was kept as ignored, as the admin reads it: in Russian (integrations/reasons.py),
while the stored reason, the log and MTT's answer stay English."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.utils import translation

from integrations.models import Integration, NotificationEvent
from integrations.mtt.notifications import parse_envelope, parse_notifications
from integrations.reasons import reason_in_words

pytestmark = pytest.mark.django_db

CALL = "callNotifications"
CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)

# One body for each reason the parser writes, so that a reason added without words shows here.
BODIES: list[Any] = [
    b"\xff\xfe",
    b"",
    b"not json",
    b"[" * 40 + b"]" * 40,
    b'{"a": 1' + b"0" * 5000 + b"}",
    b'{"event": "x", "result": {"a": NaN}}',
    [1],
    {"result": {}},
    {"event": "e" * 65, "result": {}},
    {"event": CALL},
    {"event": "vpbxNotifications", "result": {}},
    {"event": "vpbxNotifications", "result": {"eventType": "galaxyChanged"}},
    {"event": "somethingNew", "result": {}},
    {"event": CALL, "result": {"callInfo": 5}},
    {"event": CALL, "result": {"callInfo": {"state": "trying"}}},
    {"event": CALL, "result": {"callInfo": {"call": {"id": "x" * 300}, "state": "trying"}}},
    {"event": CALL, "result": {"callInfo": {"call": {"id": "~1o"}, "state": "trying"}}},
    {"event": CALL, "result": {"callInfo": {"call": {"id": "a~1o"}}}},
    {"event": CALL, "result": {"callInfo": {"call": {"id": "a~1o"}, "state": "teleporting"}}},
    {"event": "somethingNew\x00", "result": {"x": "\x00"}},
    {"event": CALL, "result": {"callInfo": {"call": {"id": "a~1o"}, "state": "teleporting", "x": "\x00"}}},
    {
        "event": CALL,
        "result": {"callInfo": {"call": {"id": "a~1o"}, "state": "teleporting", "x": float("nan")}},
    },
]


def _reason(body: Any) -> str:
    envelope = parse_notifications(body)[0] if isinstance(body, bytes) else parse_envelope(body)
    assert envelope.ignored_because, body
    return envelope.ignored_because


@pytest.mark.parametrize("body", BODIES)
def test_every_reason_the_parser_writes_reads_in_russian(body: Any) -> None:
    reason = _reason(body)
    with translation.override("ru"):
        words = reason_in_words(reason)
    assert words != reason and CYRILLIC.search(words), (reason, words)
    # The values sent are carried over as they came.
    for value in re.findall(r"'([^']*)'", reason):
        if value not in ("event", "result", "~") and not value.startswith("result."):
            assert value in words


def test_a_text_that_is_no_reason_of_ours_is_shown_as_it_is() -> None:
    with translation.override("ru"):
        assert reason_in_words("OperationalError: the connection was lost") == (
            "OperationalError: the connection was lost"
        )
        assert reason_in_words("") == ""


def test_the_admin_shows_the_reason_in_russian(admin_client: Client, integration: Integration) -> None:
    answer = Client().post(integration.notify_path, data=b"not json", content_type="application/json").json()
    assert answer["reason"] == "body is not JSON"  # MTT's answer stays English
    row = NotificationEvent.objects.get(pk=answer["id"])
    assert row.error == "body is not JSON"
    listing = admin_client.get("/admin/integrations/notificationevent/", HTTP_ACCEPT_LANGUAGE="ru")
    assert "тело не в формате JSON" in listing.content.decode()
    page = admin_client.get(
        f"/admin/integrations/notificationevent/{row.pk}/change/", HTTP_ACCEPT_LANGUAGE="ru"
    )
    assert "тело не в формате JSON (сохранено как получено)" in page.content.decode()

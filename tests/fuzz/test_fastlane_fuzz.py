"""Fuzzing the notify URL's fast lane (integrations/fastlane.py) in front of a stand-in for Django.

Properties, whatever arrives: the lane never raises; it either answers 200 having stored the
notification — once: the answer's id is the row of that fingerprint, "duplicate" exactly when the row
was there before — or hands the request on with its body byte for byte. Junk never gets a 200 from it.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.db import connection
from hypothesis import example, given
from hypothesis import strategies as st

from integrations import fastlane
from integrations.models import Integration, NotificationEvent
from integrations.mtt.notifications import NotificationError, parse_body
from tests.conftest import load_fixture
from tests.fuzz.strategies import examples, fuzzed_call_notification, json_dumps_loosely, json_values
from tests.integrations.test_fastlane import Behind, call, lane_on, warm  # noqa: F401 - lane_on: autouse

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the fast lane needs PostgreSQL"),
]

bodies = st.one_of(
    st.binary(max_size=400),
    json_values.map(lambda v: json_dumps_loosely(v, ensure_ascii=False)),
    fuzzed_call_notification().map(lambda v: json_dumps_loosely(v, ensure_ascii=False)),
    fuzzed_call_notification().map(lambda v: json_dumps_loosely(v, ensure_ascii=True)),
)


# A notification the lane must store itself (an outgoing call's trying: not urgent).
ORDINARY = json.dumps(load_fixture("notifications/02_outgoing_trying.json"), ensure_ascii=False).encode()


@examples(0.4)
@given(body=bodies, chunk=st.sampled_from([0, 1, 7, 256]))
@example(body=ORDINARY, chunk=7)
@example(body=b"", chunk=0)
@example(body=b'{"event": "callNotifications", "result": {"callInfo": {}}}', chunk=0)
@example(body=b'{"event": "x", "result": {}, "n": NaN}', chunk=0)
@example(body=json.dumps({"event": "x", "result": {}, "s": "\u0000"}).encode(), chunk=3)
def test_the_lane_stores_once_or_hands_the_body_on(integration: Integration, body: bytes, chunk: int) -> None:
    warm(integration)
    behind = Behind()
    before = NotificationEvent.objects.count()
    status, content = call(fastlane.NotifyFastLane(behind), integration.notify_path, body, chunk=chunk)
    if status == 299:
        assert body != ORDINARY, "the lane handed an ordinary notification to the view"
        assert behind.bodies == [body]
        assert NotificationEvent.objects.count() == before
        return
    assert status == 200 and behind.bodies == []
    try:
        envelope = parse_body(body)
    except NotificationError:
        pytest.fail(f"the lane stored what the view refuses: {body!r}")
    answer = json.loads(content)
    stored = NotificationEvent.objects.get(integration=integration, fingerprint=envelope.fingerprint)
    assert answer == {"ok": True, "id": stored.pk, "duplicate": NotificationEvent.objects.count() == before}
    assert as_decimals(stored.body) == as_decimals(envelope.body)


def as_decimals(value: object) -> object:
    """Numbers as their exact values: PostgreSQL's jsonb keeps a number's value, not its spelling
    (7.961074225478066e+16 comes back as 79610742254780660), as for the notify view's rows."""
    return json.loads(json.dumps(value), parse_float=Decimal, parse_int=Decimal)

"""Fuzzing the notification parser (integrations/mtt/notifications.py) directly.

Any bytes are an envelope that can be stored (what is not JSON at all is kept as its text, ignored, with the
reason), never an exception; any JSON value is an envelope — understood, or kept as ignored with the reason — that can be
stored (strict JSON, UTF-8, bounded depth) and fingerprinted; the call fields the calls app reads come out
of ``parse_call_info`` with the documented types and bounds.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from integrations.mtt.callinfo import Party, parse_call_info
from integrations.mtt.fields import START_TIME_YEARS
from integrations.mtt.notifications import (
    CALL_EVENT,
    MAX_DEPTH,
    Envelope,
    fingerprint,
    parse_body,
    parse_envelope,
    parse_notifications,
)
from tests.fuzz.strategies import examples, fuzzed_call_notification, json_dumps_loosely, json_values


def _parse(data: Any) -> Envelope:
    envelope = parse_envelope(data)
    if not envelope.understood:
        assert envelope.ignored_because  # the reason, shown in the admin
    return envelope


def _reversed(value: Any) -> Any:
    """The same JSON with every object's keys in the opposite order."""
    if isinstance(value, dict):
        return {k: _reversed(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed(v) for v in value]
    return value


def _canonical_ascii(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=True, separators=(",", ":"))


def _assert_storable(envelope: Envelope) -> None:
    # Strict JSON (no NaN), valid UTF-8: what PostgreSQL's jsonb and SQLite's JSON_VALID accept.
    text = json.dumps(envelope.body, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")
    # No NUL character anywhere (jsonb cannot hold one); a kept text may show "\\u0000" spelled out.
    assert "\x00" not in json.dumps(envelope.body, ensure_ascii=False)
    assert isinstance(envelope.event, str) and len(envelope.event) <= 64
    assert isinstance(envelope.result, dict)
    if envelope.understood:
        assert envelope.event
    assert len(envelope.fingerprint) == 64
    # The same notification with its keys in another order is the same notification (§6.5). A cleaned copy
    # (NUL, lone surrogates → U+FFFD; NaN, Infinity → null) is fingerprinted as received, and keeps the text
    # as received (compared as canonical text: NaN is not equal to itself).
    if envelope.received_text:
        received = json.loads(envelope.received_canonical)
        assert parse_envelope(_reversed(received)).fingerprint == envelope.fingerprint
        assert _canonical_ascii(json.loads(envelope.received_text)) == envelope.received_canonical
        assert "\ufffd" in envelope.canonical or "null" in envelope.canonical
    else:
        assert fingerprint(_reversed(envelope.body)) == envelope.fingerprint


def _assert_call_info(envelope: Envelope) -> None:
    info = parse_call_info(envelope.body)
    assert info.call_id and isinstance(info.call_id, str) and len(info.call_id) <= 255
    assert info.call_key == info.call_id.split("~", 1)[0]
    assert isinstance(info.tag, str) and len(info.tag) <= 255
    assert info.state == info.state.strip().lower() and len(info.state) <= 255
    assert info.start_time is None or (
        isinstance(info.start_time, datetime) and info.start_time.year in START_TIME_YEARS
    )
    assert info.duration is None or 0 <= info.duration < 10**7
    assert len(info.url_record) <= 2000
    for text in (info.type, info.reason, info.reason_code, info.account_id, info.transport_id):
        assert isinstance(text, str)
    for party in (info.caller, info.callee):
        assert isinstance(party, Party)
        for value in (party.id, party.display_id, party.account_id, party.display_name, *party.forwarders):
            assert isinstance(value, str) and len(value) <= 255
        assert len(set(party.ids)) == len(party.ids)


@given(value=json_values)
@example(value={"event": "callNotifications", "result": {"callInfo": {"call": {"id": "x"}, "state": "a"}}})
@example(value={"event": "e", "result": {"x": float("nan")}})
@example(value={"event": "e", "result": {"x": "\ud800"}})
@example(value={"event": "e", "result": {"\x00": 1}})
def test_any_json_value(value: Any) -> None:
    envelope = _parse(value)
    _assert_storable(envelope)
    if envelope.understood and envelope.event == CALL_EVENT:
        _assert_call_info(envelope)


@given(
    event=st.sampled_from([CALL_EVENT, "vpbxNotifications", "vrbxNotifications", "other"]), result=json_values
)
def test_any_envelope(event: str, result: Any) -> None:
    envelope = _parse({"event": event, "result": result})
    _assert_storable(envelope)
    if envelope.understood and event == CALL_EVENT:
        _assert_call_info(envelope)


@examples(0.6)
@given(body=fuzzed_call_notification())
@example(
    body={
        "event": CALL_EVENT,
        "result": {
            "callInfo": {"call": {"id": "a~b"}, "state": "finished", "startTime": "0001-01-01 00:00:00"}
        },
    }
)
def test_guide_shaped_call_notifications(body: dict[str, Any]) -> None:
    envelope = _parse(body)
    _assert_storable(envelope)
    if envelope.understood:
        _assert_call_info(envelope)


@given(raw=st.one_of(st.binary(max_size=500), json_values.map(lambda v: json_dumps_loosely(v, True))))
@example(raw=b"[" * 100_000)
@example(raw=b'{"event": "e", "result": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
@example(raw=b'{"event": "e", "result": {"x": 1' + b"0" * 5000 + b"}}")  # past int's 4300 digits
def test_any_bytes(raw: bytes) -> None:
    for envelope in [parse_body(raw), *parse_notifications(raw)]:
        _assert_storable(envelope)
        if envelope.understood and envelope.event == CALL_EVENT:
            _assert_call_info(envelope)


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1])
def test_the_depth_limit(depth: int) -> None:
    # The envelope itself is level 1, "result" level 2.
    nested: Any = 1
    for _level in range(depth - 2):
        nested = [nested]
    body = {"event": "e", "result": {"deep": nested}}
    envelope = parse_envelope(body)
    if depth <= MAX_DEPTH:
        assert envelope.body == body
    else:
        assert "nested deeper" in envelope.ignored_because
        assert envelope.body == {"unreadable_body": json.dumps(body)}

"""Hypothesis strategies and helpers shared by the fuzz tests."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

from tests.conftest import FIXTURES


def examples(fraction: float) -> settings:
    """A share of the profile's max_examples (tests/fuzz/conftest.py), for properties whose examples
    are long sequences of requests: the fuzz tests together stay around a minute in CI."""
    return settings(max_examples=max(10, round(settings.default.max_examples * fraction)))


# --- text -----------------------------------------------------------------------------------------

# Every code point, lone surrogates and NUL included: what a JSON "\uXXXX" escape can produce.
any_char = st.characters(codec=None, categories=None)
any_text = st.text(any_char, max_size=40)
# Text a person or a PBX plausibly types into a number field: digits (ASCII and others), separators,
# URI decoration, letters.
phone_alphabet = st.sampled_from(
    [*"0123456789+-() .\u00a0\u2011/;@:,xtelsip#*", "٨", "९", "²", "\x00", "\u200b", "\n"]
)
phone_text = st.one_of(st.text(phone_alphabet, max_size=30), any_text)

# --- JSON -----------------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**60), max_value=10**60),
    st.floats(allow_nan=True, allow_infinity=True),
    any_text,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(any_text, children, max_size=5)
    ),
    max_leaves=25,
)


def json_dumps_loosely(value: Any, ensure_ascii: bool) -> bytes:
    """JSON as a careless sender writes it: NaN/Infinity allowed, lone surrogates passed through."""
    return json.dumps(value, ensure_ascii=ensure_ascii, allow_nan=True).encode("utf-8", "surrogatepass")


# --- notifications ----------------------------------------------------------------------------------


def guide_call_notifications() -> list[dict[str, Any]]:
    """The guide's callNotifications examples (tests/fixtures/mtt/notifications)."""
    bodies = [json.loads(p.read_text("utf-8")) for p in sorted((FIXTURES / "notifications").glob("*.json"))]
    return [b for b in bodies if b["event"] == "callNotifications"]


def guide_other_notifications() -> list[dict[str, Any]]:
    bodies = [json.loads(p.read_text("utf-8")) for p in sorted((FIXTURES / "notifications").glob("*.json"))]
    return [b for b in bodies if b["event"] != "callNotifications"]


def _pbx_time(moment: datetime) -> str:
    return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} {moment:%H:%M:%S}"


call_states = st.one_of(
    st.sampled_from(["trying", "showing", "connected", "hiding", "finished", "recorded"]),
    st.sampled_from(["FINISHED", " Connected ", "ringing", ""]),
    any_text,
)
call_types = st.one_of(
    st.sampled_from(["incoming", "outgoing", "Incoming", "OUTGOING", "internal"]), any_text
)
start_times = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)).map(_pbx_time),
    st.sampled_from(
        ["2020-06-02 11:18:16", "0001-01-01 00:00:00", "9999-12-31 23:59:59", "2020-02-30 25:61:61"]
    ),
    json_scalars,
)
durations = st.one_of(
    st.integers(min_value=-10, max_value=10**8),
    st.sampled_from([0, 9_999_999, "42", "4.2", True, None, -1]),
    json_scalars,
)
record_urls = st.one_of(
    st.sampled_from(
        [
            "https://openapi-stage.mtt.ru/records/1/x.mp3",
            "http://openapi.mtt.ru/r.mp3",
            "file:///etc/passwd",
            "https://127.0.0.1/r.mp3",
            "https://mtt.ru:99999/r.mp3",
            "https://[::1/r.mp3",
        ]
    ),
    st.text(any_char, max_size=2100).map(lambda t: "https://openapi.mtt.ru/" + t),
    json_scalars,
)
party_ids = st.one_of(
    st.sampled_from(
        [
            "78124241500",
            "78124241500@pstn",
            "+79219462761",
            "883140777828305",
            "883140582526566",
            "74996497803",
            "",
        ]
    ),
    phone_text,
    json_scalars,
)
call_ids = st.one_of(
    st.sampled_from(["c166e238a4c211ea9d373863bb43daf8_00015ED635780FC7~1o", "~", "x~", "~x", "a~b~c"]),
    st.text(any_char, min_size=1, max_size=300),
    json_scalars,
)

# Where a value may be replaced or removed: a path into a callNotifications body.
CALL_INFO_FIELDS: dict[tuple[str, ...], st.SearchStrategy[Any]] = {
    ("state",): call_states,
    ("type",): call_types,
    ("startTime",): start_times,
    ("duration",): durations,
    ("reason",): st.one_of(st.just("Normal call clearing"), json_scalars),
    ("reasonCode",): json_scalars,
    ("urlRecord",): record_urls,
    ("accountId",): party_ids,
    ("transportId",): json_values,
    ("call", "id"): call_ids,
    ("call", "tag"): st.one_of(st.text(any_char, max_size=300), json_scalars),
    ("call",): json_values,
    ("caller",): json_values,
    ("callee",): json_values,
    ("caller", "id"): party_ids,
    ("caller", "accountId"): party_ids,
    ("caller", "displayId"): party_ids,
    ("caller", "displayName"): json_scalars,
    ("caller", "forwarderList"): json_values,
    ("callee", "id"): party_ids,
    ("callee", "accountId"): party_ids,
    ("callee", "displayId"): party_ids,
    ("callee", "display_name"): json_scalars,
    ("callee", "forwarderList"): st.one_of(
        st.lists(st.fixed_dictionaries({"id": json_scalars}), max_size=3), json_values
    ),
}
_DELETE = object()


def _set_path(body: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node: Any = body["result"]["callInfo"]
    for key in path[:-1]:
        if not isinstance(node, dict):
            return
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    if not isinstance(node, dict):
        return
    if value is _DELETE:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value


@st.composite
def fuzzed_call_notification(draw: st.DrawFn, base_id: str | None = None) -> dict[str, Any]:
    """A guide-shaped callNotifications body with some of its fields replaced or removed."""
    body = copy.deepcopy(draw(st.sampled_from(guide_call_notifications())))
    if base_id is not None:
        # Legs of one conversation: the same part before '~'.
        body["result"]["callInfo"]["call"]["id"] = f"{base_id}~{draw(st.sampled_from(['1o', '2o', '3o']))}"
    paths = draw(st.lists(st.sampled_from(sorted(CALL_INFO_FIELDS)), max_size=6, unique=True))
    for path in paths:
        value = draw(st.one_of(st.just(_DELETE), CALL_INFO_FIELDS[path]))
        _set_path(body, path, value)
    if draw(st.booleans()):
        # Unknown keys anywhere are kept and ignored.
        body[draw(any_text)] = draw(json_values)
    return body

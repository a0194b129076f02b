"""MTT's values compared case-insensitively, with the guide's own spellings (guide §9.4, §9.5, §10.1).

The guide's examples write ``"type": "incoming"`` and ``"event": "vpbxNotifications"``; its tables write
``Incoming – входящий``, ``Outgoing - исходящий`` and ``vrbxNotifications``, and name parameters
``Event`` and ``display_name``. Each spelling must mean the same thing to us.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from calls.legs import pbx_time_to_utc
from integrations.mtt.callinfo import parse_call_info
from integrations.mtt.notifications import (
    CALL_EVENT,
    PRIORITY_BOOKKEEPING,
    PRIORITY_CALL_END,
    PRIORITY_CARD,
    VPBX_EVENT,
    canonical_event,
    canonical_event_type,
    canonical_value,
    directory_event_type,
    fingerprint,
    parse_body,
    parse_envelope,
)
from tests.conftest import load_fixture


def _call(name: str, **info: Any) -> dict[str, Any]:
    body = copy.deepcopy(load_fixture(f"notifications/{name}.json"))
    body["result"]["callInfo"].update(info)
    return dict(body)


@pytest.mark.parametrize(
    ("sent", "ours"),
    [
        ("callNotifications", CALL_EVENT),
        ("CallNotifications", CALL_EVENT),
        ("CALLNOTIFICATIONS", CALL_EVENT),
        (" callNotifications ", CALL_EVENT),
        ("vpbxNotifications", VPBX_EVENT),
        ("vrbxNotifications", VPBX_EVENT),  # the guide's table, §9.4
        ("VrbxNotifications", VPBX_EVENT),
        ("VPBXNOTIFICATIONS", VPBX_EVENT),
        ("somethingElse", "somethingElse"),  # unknown names are kept as sent
    ],
)
def test_event_names(sent: str, ours: str) -> None:
    assert canonical_event(sent) == ours


@pytest.mark.parametrize(
    ("sent", "ours"),
    [
        ("numbersChanged", "numbersChanged"),
        ("NumbersChanged", "numbersChanged"),
        ("numberschanged", "numbersChanged"),
        ("workplacesChanged", "workplacesChanged"),
        ("WorkplacesChanged", "workplacesChanged"),
        ("tariffChanged", "tariffChanged"),
        (None, ""),
    ],
)
def test_event_types(sent: Any, ours: str) -> None:
    assert canonical_event_type(sent) == ours


@pytest.mark.parametrize(
    ("sent", "ours"),
    [
        ("incoming", "incoming"),
        ("Incoming", "incoming"),  # the guide's table, §10.1
        ("Outgoing", "outgoing"),
        ("OUTGOING", "outgoing"),
        ("Trying", "trying"),
        (" finished ", "finished"),
        ("Recorded", "recorded"),
        (None, ""),
        (1, ""),
    ],
)
def test_state_and_type_values(sent: Any, ours: str) -> None:
    assert canonical_value(sent) == ours


def test_the_tables_event_spelling_is_a_vpbx_notification() -> None:
    body = {"event": "vrbxNotifications", "result": {"eventType": "numbersChanged"}}
    envelope = parse_envelope(body)
    assert envelope.event == VPBX_EVENT
    assert directory_event_type(envelope.body) == "numbersChanged"
    # The body is kept exactly as received: stored and fingerprinted as it came.
    assert envelope.body == body
    assert envelope.fingerprint == fingerprint(body)


@pytest.mark.parametrize(
    "body",
    [
        {"event": "vpbxNotifications", "result": {"eventType": "WorkplacesChanged"}},
        {"event": "VrbxNotifications", "result": {"eventType": "workplaceschanged"}},
        {"Event": "vpbxNotifications", "result": {"eventType": "workplacesChanged"}},  # the table's "Event"
    ],
)
def test_directory_changes_in_any_spelling(body: dict[str, Any]) -> None:
    envelope = parse_envelope(body)
    assert envelope.event == VPBX_EVENT
    assert envelope.result["eventType"] == "workplacesChanged"
    assert directory_event_type(body) == "workplacesChanged"


@pytest.mark.parametrize(
    "body",
    [
        {"event": "vpbxNotifications", "result": {"eventType": "tariffChanged"}},
        {"event": "callNotifications", "result": {"eventType": "numbersChanged"}},
        {"event": "vpbxNotifications", "result": []},
        {"event": 1},
        [],
    ],
)
def test_what_is_not_a_directory_change(body: Any) -> None:
    assert directory_event_type(body) is None


def test_a_vpbx_notification_without_event_type_is_kept_as_ignored_in_any_spelling() -> None:
    envelope = parse_envelope({"event": "VRBXNotifications", "result": {}})
    assert envelope.event == VPBX_EVENT
    assert not envelope.understood
    assert "eventType" in envelope.ignored_because


def test_capitalised_type_and_state_are_lower_case_after_parsing() -> None:
    body = _call("01_incoming_trying", type="Incoming", state="Trying")
    raw = json.dumps(body, ensure_ascii=False).encode()
    envelope = parse_body(raw)
    assert envelope.event == CALL_EVENT
    assert envelope.result["callInfo"]["type"] == "incoming"
    assert envelope.result["callInfo"]["state"] == "trying"
    assert envelope.body["result"]["callInfo"]["type"] == "Incoming"  # the stored body is untouched
    info = parse_call_info(envelope.body)
    assert (info.type, info.state) == ("incoming", "trying")


def test_outgoing_in_the_tables_spelling() -> None:
    info = parse_call_info(_call("02_outgoing_trying", type="Outgoing"))
    assert info.type == "outgoing"


def test_an_event_name_in_capitals_is_a_call_notification() -> None:
    body = _call("07_incoming_finished")
    body["event"] = "CallNotifications"
    envelope = parse_envelope(body)
    assert envelope.event == CALL_EVENT
    assert envelope.understood
    # The call checks apply to it as to the usual spelling.
    del body["result"]["callInfo"]["state"]
    missing_state = parse_envelope(body)
    assert (missing_state.event, missing_state.understood) == (CALL_EVENT, False)
    assert "state" in missing_state.ignored_because


def test_display_name_in_either_spelling() -> None:
    # §10.1 table: displayName; §10.1.7 example: display_name.
    finished = parse_call_info(load_fixture("notifications/07_incoming_finished.json"))
    assert finished.callee.display_name == "74996497803"
    trying = _call("01_incoming_trying")
    trying["result"]["callInfo"]["callee"]["displayName"] = "Линия продаж"
    assert parse_call_info(trying).callee.display_name == "Линия продаж"


@pytest.mark.parametrize(
    ("sent", "ids"),
    [
        ([{"id": "74996497803"}, {"id": "883140000000002"}], ("74996497803", "883140000000002")),
        (["74996497803", 883140000000002], ("74996497803", "883140000000002")),
        ("74996497803", ("74996497803",)),
        ([{"id": ""}, None, "", {"x": 1}, True, [1]], ()),
        (None, ()),
        ({"id": "74996497803"}, ("74996497803",)),
    ],
)
def test_forwarder_list_in_the_guides_shape_or_as_plain_ids(sent: Any, ids: tuple[str, ...]) -> None:
    body = _call("01_incoming_trying")
    body["result"]["callInfo"]["callee"]["forwarderList"] = sent
    assert parse_call_info(body).callee.forwarders == ids


def test_a_capitalised_trying_is_applied_first() -> None:
    """The issue's case: a parked "Incoming" call must be decided at once, not wait in the queue behind
    bookkeeping: its trying is in the applier's first class whatever the casing."""
    for type_, state in (("incoming", "trying"), ("Incoming", "trying"), ("INCOMING", "Trying")):
        envelope = parse_envelope(_call("01_incoming_trying", type=type_, state=state))
        assert envelope.priority == PRIORITY_CARD, (type_, state)
    finished = parse_envelope(_call("01_incoming_trying", type="Incoming", state="FINISHED"))
    assert finished.priority == PRIORITY_CALL_END
    recorded = parse_envelope(_call("01_incoming_trying", type="Incoming", state="Recorded"))
    assert recorded.priority == PRIORITY_BOOKKEEPING


# --- Values in other types and formats than the examples (§10.1 promises no format) ---------------------

# 2020-06-02 11:18:16 in Moscow (the fixture's startTime), written every way a PBX or its middleware writes
# a moment: the guide's form, ISO 8601 with a "T", a fraction or a zone, the Russian order, Unix seconds
# and milliseconds as JSON numbers or digits.
MOMENT_UTC = datetime(2020, 6, 2, 8, 18, 16, tzinfo=UTC)


@pytest.mark.parametrize(
    "start",
    [
        "2020-06-02 11:18:16",
        " 2020-06-02 11:18:16 ",
        "2020-06-02T11:18:16",
        "2020-06-02 11:18:16.000",
        "2020-06-02T11:18:16+03:00",
        "2020-06-02 11:18:16+0300",
        "2020-06-02T08:18:16Z",
        "2020-06-02T08:18:16+00:00",
        "2020-06-02T10:18:16+02:00",
        "02.06.2020 11:18:16",
        1591085896,
        1591085896.0,
        "1591085896",
        1591085896000,
        "1591085896000",
    ],
)
def test_start_time_in_any_format_names_the_same_moment(start: Any) -> None:
    info = parse_call_info(_call("01_incoming_trying", startTime=start))
    assert pbx_time_to_utc(info.start_time) == MOMENT_UTC


@pytest.mark.parametrize(
    "start",
    [None, "", "2020-06-02", "now", "11:18", "25:61:61", 0, 42, 10**10 * 5, -1591085896, True, [], {},
     "0001-01-01T00:00:00+05:00", 10**400, "9" * 5000],
)  # fmt: skip
def test_start_time_that_names_no_moment_is_missing(start: Any) -> None:
    assert parse_call_info(_call("01_incoming_trying", startTime=start)).start_time is None


@pytest.mark.parametrize(
    ("sent", "seconds"),
    [(4, 4), (4.0, 4), (4.7, 4), ("4", 4), (" 4 ", 4), ("4.0", 4), ("4.", 4), ("0:04", 4), ("00:00:04", 4),
     ("1:02:03", 3723), (0, 0), ("0", 0)],
)  # fmt: skip
def test_duration_as_a_number_or_text(sent: Any, seconds: int) -> None:
    assert parse_call_info(_call("07_incoming_finished", duration=sent)).duration == seconds


@pytest.mark.parametrize("sent", [None, "", "four", -1, "-1", True, "1e3", 10**8, "9" * 5000, "1:99:99", []])
def test_a_duration_that_is_none_is_missing(sent: Any) -> None:
    assert parse_call_info(_call("07_incoming_finished", duration=sent)).duration is None


@pytest.mark.parametrize(("sent", "text"), [(133609, "133609"), (0, "0"), ("133609", "133609")])
def test_a_call_id_or_tag_sent_as_a_json_number_keeps_its_digits(sent: Any, text: str) -> None:
    """§10.3.2's own tag is "133609": all digits, which a JSON writer may send as a number. The leg is kept
    (not ignored as having no Call-ID) and the tag echoed back in the routing command."""
    body = _call("01_incoming_trying")
    body["result"]["callInfo"]["call"] = {"id": sent, "tag": sent}
    envelope = parse_envelope(body)
    assert envelope.understood, envelope.ignored_because
    info = parse_call_info(body)
    assert (info.call_id, info.tag) == (text, text)


@pytest.mark.parametrize("sent", [True, 1.5, None, {"x": 1}, ["1"]])
def test_a_call_id_of_another_type_is_ignored_with_the_reason(sent: Any) -> None:
    body = _call("01_incoming_trying")
    body["result"]["callInfo"]["call"]["id"] = sent
    assert "call.id" in parse_envelope(body).ignored_because


@pytest.mark.parametrize(("sent", "code"), [(16, "16"), (16.0, "16"), ("16", "16"), (None, ""), ("", "")])
def test_reason_code_as_a_number_or_text(sent: Any, code: str) -> None:
    assert parse_call_info(_call("07_incoming_finished", reasonCode=sent)).reason_code == code


# Every field of a call notification read as text (fields.text_of), as a path into callInfo.
TEXT_FIELDS = [
    ("caller", "id"), ("caller", "displayId"), ("caller", "accountId"), ("caller", "displayName"),
    ("callee", "id"), ("callee", "displayId"), ("callee", "accountId"), ("callee", "displayName"),
    ("callee", "display_name"), ("reason",), ("reasonCode",), ("accountId",),
]  # fmt: skip


def _read(info: Any, path: tuple[str, ...]) -> Any:
    names = {"displayId": "display_id", "accountId": "account_id", "displayName": "display_name",
             "display_name": "display_name", "reasonCode": "reason_code"}  # fmt: skip
    for key in path:
        info = getattr(info, names.get(key, key))
    return info


@pytest.mark.parametrize("sent", [True, False])
@pytest.mark.parametrize("path", TEXT_FIELDS)
def test_a_json_boolean_in_a_text_field_names_nothing(path: tuple[str, ...], sent: bool) -> None:
    """A JSON true or false where the guide writes a number or a name was read as Python's "True"/"False":
    the operator saw "True" as the caller's number and name. It names nothing, as null does."""
    body = _call("07_incoming_finished")
    node = body["result"]["callInfo"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = sent
    if path[-1] == "displayName":
        node.pop("display_name", None)
    assert _read(parse_call_info(body), path) == ""

"""Guide-shaped call notifications for tests (the shapes of tests/fixtures/mtt/notifications)."""

from __future__ import annotations

from typing import Any

LINE = "74996497803"
CLIENT = "78124241500"
WP_INCOMING = "883140777828305"  # the workplace of fixture 07
WP_OUTGOING = "883140582526566"  # the workplace of fixtures 02-08
WP_RECORDED = "883140777446532"  # the accountId of fixture 03
BASE = "c166e238a4c211ea9d373863bb43daf8_00015ED635780FC7"
OUT_ID = "SDfe2n901-b510751695c9e53584301f0c0e8d98c9200@127.0.0.1"
OUT_TAG = "sdfе2n901-281028329"  # with a Cyrillic "е", as in the guide


def note(
    call_id: str,
    state: str,
    *,
    type: str,
    caller: dict[str, Any],
    callee: dict[str, Any],
    tag: str | None = "tag-1",
    start: str | None = "2020-06-02 11:18:16",
    duration: int | None = None,
    reason: str | None = None,
    transport: str = "10.133.33.136:5073",
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "call": {"id": call_id},
        "caller": caller,
        "callee": callee,
        "state": state,
        "type": type,
    }
    if tag is not None:
        info["call"]["tag"] = tag
    info["transportId"] = transport
    if state == "finished":
        info["duration"] = duration if duration is not None else 0
        info["reason"] = reason or "Normal call clearing"
        info["reasonCode"] = None
    elif start is not None:
        info["startTime"] = start
    return {"event": "callNotifications", "result": {"callInfo": info}}


def client_party(number: str = CLIENT) -> dict[str, Any]:
    return {"accountId": f"{number}@pstn", "displayId": number, "forwarderList": [], "id": number}


def line_party(number: str = LINE) -> dict[str, Any]:
    return {
        "accountId": number,
        "centrexId": "67821426",
        "displayId": number,
        "displayName": "",
        "forwarderList": [],
        "id": number,
    }


def workplace_party(sip_id: str = WP_INCOMING, line: str = LINE) -> dict[str, Any]:
    return {
        "accountId": sip_id,
        "centrexId": "67821426",
        "displayId": sip_id,
        "display_name": line,
        "extensionId": "",
        "forwarderList": [{"id": "an_prd100275045-3881851"}, {"id": "scheme_prd100275045-3885981"}],
        "id": sip_id,
    }


def incoming_answered(base: str = BASE, client: str = CLIENT, talk: int = 42) -> list[dict[str, Any]]:
    line_leg, staff_leg = f"{base}~1o", f"{base}~2o"
    inc = {"type": "incoming", "caller": client_party(client)}
    return [
        note(line_leg, "trying", callee=line_party(), tag="hswdfry52vmykfla____.o", start="2020-06-02 11:18:16", **inc),
        note(staff_leg, "trying", callee=workplace_party(), tag="hswddry52ykfcb2a____.o", start="2020-06-02 11:18:17", **inc),
        note(staff_leg, "showing", callee=workplace_party(), tag="hswddry52ykfcb2a____.o", start="2020-06-02 11:18:17", **inc),
        note(staff_leg, "connected", callee=workplace_party(), tag="hswddry52ykfcb2a____.o", start="2020-06-02 11:18:25", **inc),
        note(line_leg, "finished", callee=line_party(), tag="hswdfry52vmykfla____.o", duration=talk + 9, **inc),
        note(staff_leg, "finished", callee=workplace_party(), tag="hswddry52ykfcb2a____.o", duration=talk,
             reason="Answer leg disconnected", **inc),
    ]  # fmt: skip


def incoming_missed(base: str = BASE, client: str = CLIENT) -> list[dict[str, Any]]:
    line_leg, staff_leg = f"{base}~1o", f"{base}~2o"
    inc = {"type": "incoming", "caller": client_party(client)}
    return [
        note(line_leg, "trying", callee=line_party(), start="2020-06-02 11:18:16", **inc),
        note(staff_leg, "trying", callee=workplace_party(), start="2020-06-02 11:18:17", **inc),
        note(staff_leg, "showing", callee=workplace_party(), start="2020-06-02 11:18:17", **inc),
        note(staff_leg, "hiding", callee=workplace_party(), start="2020-06-02 11:18:37", **inc),
        note(staff_leg, "finished", callee=workplace_party(), duration=0, reason="No answer", **inc),
        note(line_leg, "finished", callee=line_party(), duration=0, reason="No answer", **inc),
    ]


def outgoing(answered: bool = True, call_id: str = OUT_ID) -> list[dict[str, Any]]:
    caller = {
        "accountId": WP_OUTGOING,
        "centrexId": "48212857",
        "displayId": "78005560251",
        "forwarderList": [],
        "id": "78005560251",
    }
    plus = {"displayId": "+79219462761", "forwarderList": [], "id": "+79219462761"}
    bare = {"displayId": "79219462761", "forwarderList": [], "id": "79219462761"}
    out = {"type": "outgoing", "caller": caller, "tag": OUT_TAG, "transport": "10.133.51.137:5070"}
    notes = [
        note(call_id, "trying", callee=plus, start="2020-06-24 15:01:45", **out),
        note(call_id, "showing", callee=plus, start="2020-06-24 15:01:45", **out),
    ]
    if answered:
        notes.append(note(call_id, "connected", callee=bare, start="2020-06-24 15:01:55", **out))
    notes += [
        note(call_id, "hiding", callee=plus, start="2020-06-24 15:01:45", **out),
        note(call_id, "finished", callee=bare, duration=3 if answered else 0, reason="Originate leg disconnected", **out),
    ]  # fmt: skip
    return notes

"""Parsing of the notifications MTT POSTs to the notify URL (API.md "Notifications").

Only the envelope is checked here; what a call notification means is the calls app's business.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

CALL_EVENT = "callNotifications"
VPBX_EVENT = "vpbxNotifications"
# The guide's table misspells the event (API.md §9.4): accept both spellings.
VPBX_EVENTS = frozenset({VPBX_EVENT, "vrbxNotifications"})
DIRECTORY_EVENT_TYPES = frozenset({"numbersChanged", "workplacesChanged"})


class NotificationError(ValueError):
    """The body is not a notification we can store: answered 400 with this message."""


@dataclass(frozen=True)
class Envelope:
    event: str
    result: dict[str, Any]
    body: dict[str, Any]

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.body)


def fingerprint(body: Any) -> str:
    """sha256 of the canonical JSON: equal notifications (resent, or doubled by the mobile app, §6.5)
    get the same fingerprint whatever their key order or white space."""
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def parse_body(raw: bytes) -> Envelope:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NotificationError("body is not UTF-8") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise NotificationError("body is not JSON") from None
    return parse_envelope(data)


def parse_envelope(data: Any) -> Envelope:
    if not isinstance(data, dict):
        raise NotificationError("body is not a JSON object")
    event = data.get("event")
    if not isinstance(event, str) or not event.strip():
        raise NotificationError("'event' is missing or not a string")
    if len(event) > 64:
        raise NotificationError("'event' is too long")
    result = data.get("result")
    if not isinstance(result, dict):
        raise NotificationError("'result' is missing or not an object")
    if event == CALL_EVENT:
        info = result.get("callInfo")
        if not isinstance(info, dict):
            raise NotificationError("'result.callInfo' is missing or not an object")
        call = info.get("call")
        if not isinstance(call, dict) or not isinstance(call.get("id"), str) or not call["id"]:
            raise NotificationError("'result.callInfo.call.id' is missing")
        if not isinstance(info.get("state"), str):
            raise NotificationError("'result.callInfo.state' is missing")
    elif event in VPBX_EVENTS and not isinstance(result.get("eventType"), str):
        raise NotificationError("'result.eventType' is missing")
    return Envelope(event=event, result=result, body=data)

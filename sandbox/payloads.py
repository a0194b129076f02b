"""The shapes of the guide's notifications (§9.4, §9.5, §10.1) and of MTT's identifiers, for the scenarios."""

from __future__ import annotations

import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

# The PBX runs on Moscow time and writes startTime without a zone; Moscow has had no DST since 2014.
MOSCOW = timezone(timedelta(hours=3), "MSK")
CENTREX_ID = "67821426"
INCOMING_TRANSPORT = "10.133.33.136:5073"
OUTGOING_TRANSPORT = "10.133.51.137:5070"
# forwarderList of a call that reached a workplace through the PBX's routing (guide §10.1.7 example).
DEFAULT_ROUTE = [{"id": "an_prd100275045-3881851"}, {"id": "scheme_prd100275045-3885981"}]
_ALNUM = string.ascii_letters + string.digits
_LOWER = string.ascii_lowercase + string.digits
CYRILLIC_E = "\u0435"  # looks like Latin "e"; the guide's own tag "sdfе2n901-…" holds one


def _rand(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def msk_now() -> str:
    return datetime.now(MOSCOW).strftime("%Y-%m-%d %H:%M:%S")


def new_incoming_base() -> str:
    # Shaped like the guide's "c166e238a4c211ea9d373863bb43daf8_00015ED635780FC7".
    return f"{uuid.uuid4().hex}_{secrets.token_hex(8).upper()}"


def new_outgoing_call_id() -> str:
    # Shaped like the guide's "SDfe2n901-b510751695c9e53584301f0c0e8d98c9200@127.0.0.1".
    return f"SD{_rand(_ALNUM, 7)}-{secrets.token_hex(20)}200@127.0.0.1"


def new_make_call_id() -> str:
    # Shaped like makeCall's answer "7NKe6!8fa1FMSlc6ypZdb1GSV6ZN@10.133.51.137".
    return f"{_rand(_ALNUM, 5)}!{_rand(_ALNUM, 22)}@10.133.51.137"


def incoming_tag(cyrillic: bool = False) -> str:
    # Shaped like "hswdfry52vmykfla____.o"; optionally with a Cyrillic letter so consumers must echo bytes.
    body = _rand(_LOWER, 16)
    if cyrillic:
        pos = 3 + secrets.randbelow(10)
        body = body[:pos] + CYRILLIC_E + body[pos + 1 :]
    return f"{body}____.o"


def outgoing_tag() -> str:
    # Shaped like the guide's "sdfе2n901-281028329", Cyrillic "е" included.
    return f"sdf{CYRILLIC_E}{_rand(_LOWER, 5)}-{secrets.randbelow(900_000_000) + 100_000_000}"


def without_plus(number: str) -> str:
    # Numbers arrive as the network gave them (§6.4): the guide's own legs alternate "+7921…" and "7921…".
    return number[1:] if number.startswith("+") else number


def party(**fields: Any) -> dict[str, Any]:
    return dict(sorted(fields.items()))


@dataclass
class Leg:
    call_id: str
    tag: str
    type: str
    transport_id: str
    caller: dict[str, Any]
    callee: dict[str, Any]
    start_time: str | None = None

    def payload(self, state: str, *, start_time: str | None = None, **finished: Any) -> dict[str, Any]:
        info: dict[str, Any] = {
            "call": {"id": self.call_id, "tag": self.tag},
            "callee": dict(self.callee),
            "caller": dict(self.caller),
            "state": state,
            "transportId": self.transport_id,
            "type": self.type,
        }
        if state == "finished":
            info.update(finished)  # duration, reason, reasonCode; the guide's finished has no startTime
        else:
            info["startTime"] = start_time or self.start_time or msk_now()
        return call_notification(info)


def call_notification(info: dict[str, Any]) -> dict[str, Any]:
    return {"event": "callNotifications", "result": {"callInfo": dict(sorted(info.items()))}}


def settings_notification(event_type: str) -> dict[str, Any]:
    return {"event": "vpbxNotifications", "result": {"eventType": event_type}}

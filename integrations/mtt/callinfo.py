"""What a call notification says (API.md "Calls", guide §10.1): its callInfo read into ``CallInfo``,
tolerant of missing or odd fields. Whether a body is a notification at all, and may be stored, is
integrations.mtt.notifications' business.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .fields import identifier, reason_code, seconds, start_time, text_of
from .notifications import call_key_of, canonical_value


@dataclass(frozen=True)
class Party:
    """A caller or callee. Any field may be missing (API.md): empty strings then."""

    id: str = ""
    display_id: str = ""
    account_id: str = ""
    display_name: str = ""
    forwarders: tuple[str, ...] = ()

    @property
    def ids(self) -> tuple[str, ...]:
        """Every identifier the party carries, most specific first, without duplicates."""
        seen: list[str] = []
        for value in (self.account_id, self.id, self.display_id):
            if value and value not in seen:
                seen.append(value)
        return tuple(seen)


@dataclass(frozen=True)
class CallInfo:
    call_id: str
    state: str
    tag: str = ""
    type: str = ""
    # Naive: the PBX's local time (MTT_TIMEZONE), as the guide writes it; aware when MTT named the zone
    # (an offset, "Z", or a Unix time).
    start_time: datetime | None = None
    transport_id: str = ""
    caller: Party = Party()
    callee: Party = Party()
    duration: int | None = None
    reason: str = ""
    reason_code: str = ""
    url_record: str = ""
    account_id: str = ""

    @property
    def call_key(self) -> str:
        return call_key_of(self.call_id)


def _party(value: Any) -> Party:
    if not isinstance(value, dict):
        return Party()
    forwarders = value.get("forwarderList")
    return Party(
        id=text_of(value.get("id")),
        display_id=text_of(value.get("displayId")),
        account_id=text_of(value.get("accountId")),
        # The guide once writes display_name (API.md).
        display_name=text_of(value.get("displayName") or value.get("display_name")),
        forwarders=_forwarders(forwarders),
    )


def _forwarders(value: Any) -> tuple[str, ...]:
    """What the call passed through: the guide's ``forwarderList: [{"id": …}]``, and also a list of plain
    ids (strings or numbers), or a single one, which the guide does not show but nothing rules out."""
    items = value if isinstance(value, list) else [value]
    ids = (
        text_of(item.get("id") if isinstance(item, dict) else item)
        for item in items
        if not isinstance(item, bool)
    )
    return tuple(one for one in ids if one.strip())


def parse_call_info(body: dict[str, Any]) -> CallInfo:
    """The callInfo of a stored callNotifications body; tolerant of missing or odd fields."""
    info = body["result"]["callInfo"]
    call = info["call"]
    return CallInfo(
        call_id=identifier(call["id"]),
        # Echoed back byte for byte in terminateCall/transferCall: never trimmed or truncated.
        tag=identifier(call.get("tag")),
        state=canonical_value(text_of(info.get("state"))),
        # Lower case in the examples, capitalised in the guide's table (§10.1).
        type=canonical_value(text_of(info.get("type"))),
        start_time=start_time(info.get("startTime")),
        transport_id=info["transportId"] if isinstance(info.get("transportId"), str) else "",
        caller=_party(info.get("caller")),
        callee=_party(info.get("callee")),
        duration=seconds(info.get("duration")),
        reason=text_of(info.get("reason")),
        reason_code=reason_code(info.get("reasonCode")),
        # Kept whole (up to 2000 characters): a cut link would download nothing.
        url_record=info["urlRecord"]
        if isinstance(info.get("urlRecord"), str) and len(info["urlRecord"]) <= 2000
        else "",
        account_id=text_of(info.get("accountId")),
    )

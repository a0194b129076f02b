"""What real MTT may do that the friendly sandbox never did: each behaviour the guide allows, one switch.

The friendly mode (no quirks; ``make run``'s demo) agrees with the CRM wherever the guide leaves room.
The realistic mode turns every switch on (``REALISTIC``), for end-to-end tests: the CRM must work with
what the guide promises, not with what our own stand-in happened to do. A test may also pick single
switches (``POST /_sandbox/mode {"quirks": [...]}`` or ``running_sandbox(quirks=...)``).

Per-call behaviours are scenario options in both modes, since a mode where every call had them would
test nothing else: ``incoming_ip_sip`` (only ``trying`` and ``finished``, guide §6.1), ``lose_finished``
(a call whose ``finished`` never comes: the guide promises no resend) and ``number_form``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

# name -> what it does, with the guide's section that allows it.
QUIRKS: dict[str, str] = {
    "foreign_call_ids": (
        "makeCall answers an id unlike the Call-ID of the call's notifications "
        "(§10.3.1's 7NKe6!…@10.133.51.137 vs §10.1.2's SDfe2n901-…@127.0.0.1)"
    ),
    "capitalised_values": 'type is "Incoming"/"Outgoing", as the table of §10.1 writes it',
    "vrbx_event": 'directory notifications name their event "vrbxNotifications", as the table of §9.4 does',
    "terminale_key": (
        'terminalsinfo lists "terminalsList" of {"terminale", "workplace"}, as the table of §9.3 does'
    ),
    "number_forms": (
        "numbers in notifications as 8… and 00… (§6.4), the client's and our own lines alike, "
        "alternating call by call (a scenario's number_form picks one)"
    ),
    "records_need_token": "record links answer 401 without a live Bearer access token (§7.6)",
    "refresh_revokes_tokens": "a refresh ends the access tokens issued before it (§8.3: old for new)",
    "records_rate_limited": "record downloads count against the integration's 5 requests/s (§6.7)",
    "octet_stream_records": "records are served as application/octet-stream (§10.1.3 says only *.mp3)",
    "refuse_gone_legs": (
        "transferCall/terminateCall for a leg that is not live (unknown, finished, or parked and already "
        'routed; §10.2, §10.3.2) is refused: {"result": {"success": 0}}'
    ),
    "copies": "every notification comes twice, the copy after the next one (§6.5; no order is promised)",
    "reorder": "after the first notification of a call, the rest come in swapped pairs (no order promised)",
}
REALISTIC = frozenset(QUIRKS)
FRIENDLY: frozenset[str] = frozenset()
MODES = {"friendly": FRIENDLY, "realistic": REALISTIC}
# How a number may be written (§6.4); "" = as the directory or the caller has it.
NUMBER_FORMS = ("", "8", "00")


def check_quirks(names: Iterable[Any]) -> frozenset[str]:
    """The set of quirk names, or ValueError naming the first unknown one."""
    chosen = frozenset(names)
    unknown = sorted(str(n) for n in chosen if n not in QUIRKS)
    if unknown:
        raise ValueError(f"unknown quirks: {', '.join(unknown)}; known: {', '.join(sorted(QUIRKS))}")
    return chosen


def mode_of(quirks: frozenset[str]) -> str:
    return next((name for name, preset in MODES.items() if preset == quirks), "custom")


def number_in_form(number: str, form: str) -> str:
    """``+79219462761`` as ``89219462761`` (form "8") or ``0079219462761`` (form "00"); a number that
    has no such form (not +7 for "8", not digits) comes back unchanged."""
    digits = number[1:] if number.startswith("+") else number
    if not digits.isdigit():
        return number
    if form == "8" and len(digits) == 11 and digits[0] == "7":
        return "8" + digits[1:]
    if form == "00" and not digits.startswith("00"):
        return "00" + digits
    return number


def dress(payload: dict[str, Any], quirks: frozenset[str]) -> dict[str, Any]:
    """The notification as it goes on the wire: our friendly spellings bent into the guide's others."""
    if not quirks & {"capitalised_values", "vrbx_event"}:
        return payload
    payload = copy.deepcopy(payload)
    if "vrbx_event" in quirks and payload.get("event") == "vpbxNotifications":
        payload["event"] = "vrbxNotifications"
    info = payload.get("result", {}).get("callInfo")
    if "capitalised_values" in quirks and isinstance(info, dict) and isinstance(info.get("type"), str):
        info["type"] = info["type"].capitalize()
    return payload


class Delivery:
    """The order notifications go out in: as built, or with ``copies`` and ``reorder``.

    ``reorder`` holds a notification back until the next one is built and sends that one first (the
    call's first notification goes at once: a parked call's ``trying`` starts its 5 s); ``copies``
    sends every notification again right after the following one (the last one's copy at the end).
    ``flush()`` before a pause of the plan (a parked call waiting for the CRM) and at the end.
    """

    def __init__(self, send: Callable[[dict[str, Any]], None], quirks: frozenset[str]) -> None:
        self._send = send
        self._reorder = "reorder" in quirks
        self._copies = "copies" in quirks
        self._held: dict[str, Any] | None = None
        self._echo: dict[str, Any] | None = None
        self._emitted = 0

    @staticmethod
    def factor(quirks: frozenset[str]) -> int:
        """How many POSTs one notification becomes."""
        return 2 if "copies" in quirks else 1

    def emit(self, payload: dict[str, Any]) -> None:
        first = self._emitted == 0
        self._emitted += 1
        if not self._reorder or first:
            self._out(payload)
        elif self._held is None:
            self._held = payload
        else:
            held, self._held = self._held, None
            self._out(payload)
            self._out(held)

    def flush(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._out(held)

    def finish(self) -> None:
        self.flush()
        if self._echo is not None:
            echo, self._echo = self._echo, None
            self._send(echo)

    def _out(self, payload: dict[str, Any]) -> None:
        self._send(payload)
        if self._copies:
            if self._echo is not None:
                self._send(self._echo)
            self._echo = payload

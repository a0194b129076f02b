"""MTT's raw values in the words the UI shows (issue 16): end reasons, leg states, and our click-to-call
codes. The raw values stay in the exports and the notifications' stored bodies; pages and the admin show
these."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

# API.md: `reason` on `finished` is free text from the PBX; these are the ones it sends (fixtures, seed).
END_REASONS = {
    "answer leg disconnected": _("the called side hung up"),
    "originate leg disconnected": _("the caller hung up"),
    "no answer": _("nobody answered"),
}
# `reasonCode`: the Q.850 cause the PBX passes through, for the reasons without a known text.
END_REASON_CODES = {
    "1": _("the number does not exist"),
    "16": _("the call ended normally"),
    "17": _("the line was busy"),
    "18": _("the phone did not respond"),
    "19": _("nobody answered"),
    "21": _("the call was rejected"),
    "27": _("the phone is out of order"),
    "28": _("the number is incomplete"),
    "31": _("the call ended"),
    "34": _("no free line"),
}
# API.md: a leg's states in the order they come.
LEG_STATES = {
    "trying": _("call placed"),
    "showing": _("ringing"),
    "connected": _("conversation"),
    "hiding": _("stopped ringing"),
    "finished": _("call over"),
    "recorded": _("recording ready"),
}


# A click-to-call request's outcome (calls/dial.py, calls/views_dial.py): our own codes.
DIAL_CODES = {
    "placed": _("call started"),
    "no_workplace": _("no workplace"),
    "not_connected": _("MTT not connected"),
    "needs_reconnect": _("MTT needs reconnecting"),
    "bad_number": _("number cannot be dialled"),
    "in_progress": _("already dialling"),
    "rate_limited": _("MTT busy (request limit)"),
    "unknown": _("outcome unknown"),
    "refused": _("refused by MTT"),
    "unreachable": _("MTT unreachable"),
    "login": _("not logged in"),
}


def end_reason_words(reason: str, code: str = "") -> str:
    """Why a call ended, in words; "" when the PBX said nothing."""
    if not reason and not code:
        return ""
    known = END_REASONS.get((reason or "").strip().lower()) or END_REASON_CODES.get((code or "").strip())
    return str(known) if known else str(_("other reason"))


def leg_state_words(state: str) -> str:
    return str(LEG_STATES.get(state, _("other event")))


def dial_code_words(code: str) -> str:
    return str(DIAL_CODES.get(code, _("other outcome")))

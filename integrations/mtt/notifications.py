"""Parsing of the notifications MTT POSTs to the notify URL (API.md "Notifications").

Only the envelope is checked here; what a call notification means is the calls app's business.

MTT's values are compared case-insensitively, once, here: the guide writes the event
``vpbxNotifications`` in its examples and ``vrbxNotifications`` in its table (§9.4), ``type`` as
``incoming`` in its examples and ``Incoming`` in its table (§10.1), and promises no case for the rest.
``Envelope.event`` and ``Envelope.result`` carry our canonical spellings; ``Envelope.body`` stays
exactly as received (stored and fingerprinted as it came).
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import json
import math
import re
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from .fields import identifier

CALL_EVENT = "callNotifications"
VPBX_EVENT = "vpbxNotifications"
# The guide's table misspells the event (guide §9.4): both spellings name one event. Rows stored
# before the parser canonicalised names may still say "vrbxNotifications".
VPBX_EVENTS = frozenset({VPBX_EVENT, "vrbxNotifications"})
DIRECTORY_EVENT_TYPES = frozenset({"numbersChanged", "workplacesChanged"})
CALL_STATES = frozenset({"trying", "showing", "connected", "hiding", "finished", "recorded"})
# Lower-cased name -> our spelling, for every event and eventType we act on.
_EVENT_NAMES = {CALL_EVENT.lower(): CALL_EVENT, **{name.lower(): VPBX_EVENT for name in VPBX_EVENTS}}
_EVENT_TYPE_NAMES = {name.lower(): name for name in DIRECTORY_EVENT_TYPES}
# Deepest nesting of a body we store (the guide's notifications are 5 levels deep).
MAX_DEPTH = 32


# How soon the applier should take a call notification (NotificationEvent.Priority): what pops, updates
# or hides an operator's card first (a parked call's trying among them: its routing command has 5 s),
# then the end of calls, then the rest (recordings, directory changes).
CARD_STATES = frozenset({"trying", "showing", "connected", "hiding"})
PRIORITY_CARD, PRIORITY_CALL_END, PRIORITY_BOOKKEEPING = 0, 1, 2


@dataclass(frozen=True)
class Envelope:
    """One notification as received: its event, its body, and whether we understand it.

    ``event``: our spelling of the event name (``canonical_event``); ``result``: the body's ``result``
    with MTT's values in our spelling (``callInfo.state``/``type`` lower case, a known ``eventType`` as
    we write it); ``body``: the notification exactly as received. A body that is JSON but not a
    notification we understand is kept all the same (stored as ignored, ``ignored_because`` says why)
    and acknowledged: MTT promises no resend (API.md).
    """

    event: str
    result: dict[str, Any]
    body: Any
    ignored_because: str = ""
    # Set when ``body`` is a cleaned copy of what came (NUL characters and lone surrogates, which the
    # database's JSON cannot hold, replaced by U+FFFD; NaN and Infinity by null): the text exactly as
    # received (stored beside the copy), and the canonical ASCII JSON of the body as received (what is
    # fingerprinted).
    received_text: str = ""
    received_canonical: str = ""

    @cached_property
    def canonical(self) -> str:
        """The body as canonical JSON text: what is stored (the same value as ``body``; serialised once), and
        what is fingerprinted unless ``body`` is a cleaned copy."""
        return canonical_json(self.body)

    @cached_property
    def fingerprint(self) -> str:
        # A cleaned copy is fingerprinted as received: two bodies that differ only in what was replaced stay
        # two notifications, and the same one sent twice is one.
        source = self.received_canonical or self.canonical
        return hashlib.sha256(source.encode("utf-8")).hexdigest()

    @property
    def understood(self) -> bool:
        return not self.ignored_because

    @property
    def priority(self) -> int:
        if self.event != CALL_EVENT:
            return PRIORITY_BOOKKEEPING
        info = self.result.get("callInfo") or {}
        state = info.get("state")
        if state in CARD_STATES:
            return PRIORITY_CARD
        return PRIORITY_CALL_END if state == "finished" else PRIORITY_BOOKKEEPING


def canonical_json(body: Any) -> str:
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def fingerprint(body: Any) -> str:
    """sha256 of the canonical JSON: equal notifications (resent, or doubled by the mobile app, §6.5)
    get the same fingerprint whatever their key order or white space."""
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


# Most notifications one POST may carry as a JSON array of objects (the guide shows one per POST; a batching
# proxy in front of us may send several). A longer array is kept whole, as one ignored body.
MAX_BATCH = 100


def parse_body(raw: bytes) -> Envelope:
    """The notification in a POSTed body: understood, or kept as ignored with the reason in words. Never
    raises: what MTT sends is kept even when it is not JSON, or not UTF-8 (MTT promises no resend).

    A UTF-8 byte-order mark before the JSON is read past (RFC 8259 §8.1 lets a reader ignore it; some HTTP
    stacks write one): the notification is the same with or without it (one fingerprint)."""
    read = _read(raw)
    if isinstance(read, Envelope):
        return read
    text, data = read
    return parse_envelope(data, text=text)


def parse_notifications(raw: bytes) -> list[Envelope]:
    """What a POSTed body holds: its one notification (``parse_body``), or each item of a JSON array (at most
    MAX_BATCH) holding at least one object, in order — an item that is no object is kept as its own ignored
    row, so a notification beside it is still applied. Any other array is one body, kept as ignored."""
    read = _read(raw)
    if isinstance(read, Envelope):
        return [read]
    text, data = read
    if isinstance(data, list) and 0 < len(data) <= MAX_BATCH and any(isinstance(item, dict) for item in data):
        return [parse_envelope(item) for item in data]
    return [parse_envelope(data, text=text)]


def _read(raw: bytes) -> tuple[str, Any] | Envelope:
    """(the body's text, its JSON value), or the body kept as text when it is not JSON we can read."""
    try:
        text = raw.removeprefix(codecs.BOM_UTF8).decode("utf-8")
    except UnicodeDecodeError:
        return _kept_as_text(raw, "body is not UTF-8")
    if not text.strip():
        return _kept_as_text(raw, "body is empty")
    try:
        return text, json.loads(text)
    except json.JSONDecodeError:
        return _kept_as_text(raw, "body is not JSON")
    except RecursionError:
        # JSON nested deeper than Python reads (where exactly depends on the stack in use): in words
        # the same as a body nested deeper than we store, whichever of the two limits it met.
        return _kept_as_text(raw, f"body is nested deeper than {MAX_DEPTH} levels")
    except ValueError:
        # JSON, but a number past int's 4,300 digits.
        return _kept_as_text(raw, "body holds a number too long to read")


def _kept_as_text(raw: bytes, reason: str) -> Envelope:
    """A body we cannot read as JSON, kept as its text. Where the text is not exactly the bytes (not UTF-8,
    or a NUL, which the database's JSON cannot hold: both replaced by U+FFFD), the bytes are kept too, in
    base64: nothing MTT sent is lost, and two different bodies are never one fingerprint."""
    text = _UNSTORABLE_CHARACTERS.sub(REPLACEMENT, raw.decode("utf-8", "replace"))
    if text.encode("utf-8") == raw:
        return _unstorable(text, reason)
    return Envelope(
        event="",
        result={},
        body={"unreadable_body": text, "base64": base64.b64encode(raw).decode("ascii")},
        ignored_because=reason,
    )


def _unstorable(text: str, reason: str, *, event: str = "") -> Envelope:
    # Kept as the text it came as: the database's JSON cannot hold it as a structure.
    return Envelope(event=event[:64], result={}, body={"unreadable_body": text}, ignored_because=reason)


def _as_text(data: Any) -> str:
    try:
        return json.dumps(data, ensure_ascii=True)
    except (RecursionError, ValueError):
        return "(too deeply nested to keep)"


def _storage_problem(data: Any) -> tuple[str, bool]:
    """Why a parsed body cannot be stored as JSON (or fingerprinted), or "", and whether the problem is only
    in its values (a cleaned copy can be stored, ``_cleaned``). Nesting deeper than MAX_DEPTH (MTT's are 5
    deep) comes first: no copy is made of it. Then the first of: a NUL character (jsonb cannot hold
    "\\u0000"), a lone surrogate (not UTF-8), NaN or Infinity (not JSON; PostgreSQL's jsonb and SQLite's
    JSON_VALID refuse them). Iterative, so that depth itself cannot overflow the stack here."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    in_values = ""
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                return f"body is nested deeper than {MAX_DEPTH} levels", False
            if isinstance(value, dict):
                for key, item in value.items():
                    in_values = in_values or _text_problem(key)
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            in_values = in_values or _text_problem(value)
        elif isinstance(value, float) and not math.isfinite(value):
            in_values = in_values or NOT_FINITE
    return in_values, bool(in_values)


NOT_FINITE = "body holds a number that is not finite (NaN or Infinity)"


# What replaces a NUL or a lone surrogate in the copy of a body that is stored and applied.
REPLACEMENT = "\ufffd"
_UNSTORABLE_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


def _cleaned(value: Any) -> Any:
    """A copy of a parsed body (nested at most MAX_DEPTH: checked first) with every NUL and lone surrogate in
    its strings and keys replaced by U+FFFD, and every NaN and Infinity by null (a ``duration: NaN`` is no
    duration, as null is). A JSON text's surrogate pairs are decoded into one character by json.loads, so a
    surrogate left in a string is a lone one."""
    if isinstance(value, str):
        return _UNSTORABLE_CHARACTERS.sub(REPLACEMENT, value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {_cleaned(key): _cleaned(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_cleaned(item) for item in value]
    return value


# What in a JSON text could decode into something we cannot store: a NUL or a surrogate escape, NaN or
# Infinity, a number that may overflow to infinity (a large exponent, or 300 digits and more). A text with
# none of these (and fewer brackets than MAX_DEPTH) is storable as it is, without walking the parsed body;
# any match only means "walk it".
_MAYBE_UNSTORABLE = re.compile(r"\\u0000|\\u[dD][89a-fA-F]|NaN|Infinity|[eE][+]?\d{3}|\d{300}")


def _plainly_storable(text: str) -> bool:
    return text.count("{") + text.count("[") <= MAX_DEPTH and _MAYBE_UNSTORABLE.search(text) is None


def _text_problem(value: str) -> str:
    if "\x00" in value:
        return "body holds a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "body holds a lone surrogate (not UTF-8)"
    return ""


def canonical_event(value: str) -> str:
    """An event name in our spelling: ``CallNotifications`` → ``callNotifications``, the guide's
    ``vrbxNotifications`` (§9.4 table) → ``vpbxNotifications``. Names we do not know come back as sent."""
    return _EVENT_NAMES.get(value.strip().lower(), value)


def canonical_event_type(value: Any) -> str:
    """A ``vpbxNotifications`` eventType in our spelling (``NumbersChanged`` → ``numbersChanged``);
    an unknown one as sent, anything not a string as ""."""
    if not isinstance(value, str):
        return ""
    return _EVENT_TYPE_NAMES.get(value.strip().lower(), value)


def canonical_value(value: Any) -> str:
    """``state`` and ``type`` of a call notification as we compare them: stripped, lower case
    (the guide's table writes ``Incoming`` and ``Outgoing``, §10.1)."""
    return value.strip().lower() if isinstance(value, str) else ""


def directory_event_type(body: Any) -> str | None:
    """``numbersChanged`` or ``workplacesChanged`` when ``body`` is a directory-change notification
    (guide §9.4, §9.5; any case, either spelling of the event), else None."""
    if not isinstance(body, dict):
        return None
    event = _field(body, "event")
    result = body.get("result")
    if not isinstance(event, str) or canonical_event(event) != VPBX_EVENT or not isinstance(result, dict):
        return None
    event_type = canonical_event_type(result.get("eventType"))
    return event_type if event_type in DIRECTORY_EVENT_TYPES else None


def _field(data: dict[str, Any], name: str) -> Any:
    """``data[name]``, or the value of a key equal to it but for case (the guide's tables write
    parameter names capitalised: "Event")."""
    if name in data:
        return data[name]
    for key, value in data.items():
        if isinstance(key, str) and key.lower() == name:
            return value
    return None


def _canonical_result(event: str, result: dict[str, Any]) -> dict[str, Any]:
    """``result`` with the values we compare in our spelling (copies: the body is never changed)."""
    if event == CALL_EVENT:
        info = dict(result["callInfo"])
        for key in ("state", "type"):
            if isinstance(info.get(key), str):
                info[key] = canonical_value(info[key])
        return {**result, "callInfo": info}
    if event == VPBX_EVENT and isinstance(result.get("eventType"), str):
        return {**result, "eventType": canonical_event_type(result["eventType"])}
    return result


def _ignored(data: Any, event: str, reason: str) -> Envelope:
    return Envelope(event=event[:64], result={}, body=data, ignored_because=reason)


def parse_envelope(data: Any, *, text: str | None = None) -> Envelope:
    """What a JSON body is: a notification we understand, or one kept as ignored (with the reason). A body
    the database cannot hold as JSON is kept as ``text`` (the body as it came)."""
    problem, in_values = (
        ("", False) if text is not None and _plainly_storable(text) else _storage_problem(data)
    )
    if in_values:
        # NUL characters or lone surrogates (a caller's displayName, say), NaN or Infinity (a duration): what
        # came is kept as its text, and a copy with U+FFFD (null) in their place is stored and applied, so the
        # call is not lost for a character or a number.
        envelope = parse_envelope(_cleaned(data))
        received = text if text is not None else _as_text(data)
        replacement = "null" if problem == NOT_FINITE else "U+FFFD"
        ignored = f"{envelope.ignored_because} ({problem}, stored with {replacement} in its place)"
        return replace(
            envelope,
            ignored_because=ignored if envelope.ignored_because else "",
            received_text=received,
            received_canonical=json.dumps(data, sort_keys=True, ensure_ascii=True, separators=(",", ":")),
        )
    if problem:
        event = _field(data, "event") if isinstance(data, dict) else None
        storable_event = canonical_event(event) if isinstance(event, str) and not _text_problem(event) else ""
        return _unstorable(text if text is not None else _as_text(data), problem, event=storable_event)
    event, reason = _structure_problem(data)
    if reason:
        return _ignored(data, event, reason)
    return Envelope(event=event, result=_canonical_result(event, data["result"]), body=data)


def notification_problem(body: Any) -> str:
    """Why a stored body is not a notification we apply, in words, or "" when it is one. The same checks as
    at the notify URL (``parse_envelope``), for the applier and an admin's "apply again": a row stored as
    ignored stays ignored, and a body without ``result`` is never applied (a row kept as text, written by
    hand, or stored before a check was added)."""
    return _structure_problem(body)[1]


def _structure_problem(data: Any) -> tuple[str, str]:
    """(the event in our spelling, why the body is not a notification we understand, or "")."""
    if not isinstance(data, dict):
        return "", "body is not a JSON object"
    sent = _field(data, "event")
    if not isinstance(sent, str) or not sent.strip():
        return (sent if isinstance(sent, str) else ""), "'event' is missing or not a string"
    if len(sent) > 64:
        return sent, "'event' is too long"
    event = canonical_event(sent)
    result = data.get("result")
    if not isinstance(result, dict):
        return event, "'result' is missing or not an object"
    if event == CALL_EVENT:
        return event, _call_problem(result)
    if event == VPBX_EVENT:
        event_type = result.get("eventType")
        if not isinstance(event_type, str):
            return event, "'result.eventType' is missing"
        if canonical_event_type(event_type) not in DIRECTORY_EVENT_TYPES:
            return event, f"eventType {event_type[:64]!r} is not one the guide describes (§9.4, §9.5)"
        return event, ""
    return event, f"event {event!r} is not one the guide describes"


def _call_problem(result: dict[str, Any]) -> str:
    info = result.get("callInfo")
    if not isinstance(info, dict):
        return "'result.callInfo' is missing or not an object"
    call = info.get("call")
    call_id = identifier(call.get("id")) if isinstance(call, dict) else ""
    if not isinstance(call, dict) or not call_id.strip():
        return "'result.callInfo.call.id' is missing"
    if len(call_id) > 255 or len(identifier(call.get("tag"))) > 255:
        return "'result.callInfo.call' id or tag longer than 255 characters"
    if not call_key_of(call_id).strip():
        # API.md: the legs of a call share the part of the Call-ID before '~'. Without it nothing says which
        # call this leg belongs to: grouped by '' it would join every other such leg into one call.
        return "'result.callInfo.call.id' has no Call-ID before '~' (nothing says which call it belongs to)"
    state = info.get("state")
    if not isinstance(state, str):
        return "'result.callInfo.state' is missing"
    if canonical_value(state) not in CALL_STATES:
        return f"call state {state[:64]!r} is not one the guide describes (§10.1)"
    return ""


def call_key_of(call_id: str) -> str:
    """The legs of one conversation share the part of the Call-ID before '~' (API.md)."""
    return call_id.split("~", 1)[0]

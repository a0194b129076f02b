"""Screen pop: what a card and a live-board row say, built from the rows inside the apply's transaction.

``screen_pop_messages`` (called by calls.services.call_apply_notification for every applied call
notification) reads the rows as they are about to commit and builds small JSON-serialisable messages: a
card for the operator whose workplace the notification's leg rings (``call.show`` / ``call.update`` /
``call.hide``) and a row for the supervisors' live board (``board.update`` / ``board.remove``). They are
sent after commit by ``realtime.push``. The resync views (calls/live.py) build the same cards from the ORM.
A saved wrap-up (calls/wrapup.py) sends ``call.wrapped_up`` to the same operators' groups
(``wrapped_up_messages``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.db import connection
from django.urls import reverse

from contacts.models import Contact
from contacts.phones import for_people

from ..models import Call, CallLeg, Recording
from ..visibility import call_ids_visible_to_user_id
from .groups import SUPERVISORS_GROUP, operator_group

logger = logging.getLogger(__name__)

RINGING, CONNECTED, ENDED = "ringing", "connected", "ended"
MESSAGE_TYPES = {RINGING: "call.show", CONNECTED: "call.update", ENDED: "call.hide"}
WRAPPED_UP = "call.wrapped_up"
RECENT_LIMIT = 5
NOTES_LIMIT = 1000
# A live call nobody has heard of for this long lost its last notifications: no card, no board row.
ACTIVE_MAX_AGE = timedelta(hours=12)


def leg_phase(leg: CallLeg) -> str:
    """Where one leg stands for the operator it rings: ringing, connected or ended (withdrawn/over)."""
    if leg.is_finished or "hiding" in leg.states:
        return ENDED
    if "connected" in leg.states:
        return CONNECTED
    return RINGING


@dataclass(frozen=True)
class LegView:
    """What the screen pop needs of one leg (from the ORM or from the hot path's plain SQL)."""

    pk: int
    phase: str
    connected_at: datetime | None
    user_id: int | None
    person: str  # the operator's name, else the workplace's; "" for a leg without a workplace


def full_name(first: str | None, last: str | None, username: str | None) -> str:
    return f"{first or ''} {last or ''}".strip() or (username or "")


def leg_view_of(leg: CallLeg, *, user_id: int | None, person: str) -> LegView:
    """From a leg and who works at its workplace (the hot path has both without the ORM's joins)."""
    return LegView(
        pk=leg.pk, phase=leg_phase(leg), connected_at=leg.connected_at, user_id=user_id, person=person
    )


def leg_view(leg: CallLeg) -> LegView:
    """From an ORM leg with workplace__user loaded."""
    workplace = leg.workplace
    user = workplace.user if workplace is not None else None
    person = ""
    if workplace is not None:
        person = (
            (full_name(user.first_name, user.last_name, user.get_username()) if user is not None else "")
            or workplace.name
            or workplace.sip_id
        )
    return LegView(
        pk=leg.pk,
        phase=leg_phase(leg),
        connected_at=leg.connected_at,
        user_id=workplace.user_id if workplace is not None else None,
        person=person,
    )


def operator_phase(legs: Iterable[LegView]) -> tuple[str, datetime | None]:
    """The phase of an operator's card over all their legs of one call, and when they connected."""
    legs = list(legs)
    if any(leg.phase == CONNECTED for leg in legs):
        times = [leg.connected_at for leg in legs if leg.phase == CONNECTED and leg.connected_at]
        return CONNECTED, min(times) if times else None
    if any(leg.phase == RINGING for leg in legs):
        return RINGING, None
    return ENDED, None


@dataclass(frozen=True)
class ContactView:
    pk: int
    name: str
    company: str
    notes: str
    manager: str
    manager_id: int | None = None  # who may watch the call in the "team" mode (calls/visibility.py)


def contact_view(contact: Contact | None) -> ContactView | None:
    """From an ORM contact with personal_manager loaded."""
    if contact is None:
        return None
    manager = contact.personal_manager
    return ContactView(
        pk=contact.pk,
        name=contact.name,
        company=contact.company,
        notes=contact.notes,
        manager=full_name(manager.first_name, manager.last_name, manager.get_username()) if manager else "",
        manager_id=manager.pk if manager else None,
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def call_version(call: Call) -> int:
    # Every applied notification saves the call under its row lock, so updated_at grows with each one (a
    # saved wrap-up sets it too): the page keeps the newest message of a call whatever order they arrive in.
    return int(call.updated_at.timestamp() * 1_000_000) if call.updated_at else 0


@functools.lru_cache(maxsize=4096)
def _url(name: str, pk: int | None = None) -> str:
    """``reverse`` for the card's links, remembered: every notification of a call builds the same ones."""
    return reverse(name, args=[pk]) if pk is not None else reverse(name)


# Remembered: the same client's and line's numbers are formatted for every notification of a call, and
# libphonenumber's parse is the costly part of building a card.
@functools.lru_cache(maxsize=4096)
def _number_for_people(value: str) -> str:
    return for_people(value)


def _recording_url(call: Call) -> str | None:
    """The call's own first stored recording, by creation: only an ended call can have one, so ringing
    cards skip it. One indexed query in plain SQL: the ORM's compilation of it cost more than the query,
    on every ended card."""
    if call.pk is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(_sql()["first_stored_recording"], [call.pk])
        row = cursor.fetchone()
    return _recording_url_by_pk(row[0] if row else None)


def _recording_url_by_pk(recording_id: int | None) -> str | None:
    return _url("calls:recording", recording_id) if recording_id else None


def _contact_part(contact: ContactView | None) -> dict[str, Any] | None:
    if contact is None:
        return None
    notes = contact.notes or ""
    if len(notes) > NOTES_LIMIT:
        # Notes grow at the end (the note field appends): keep the newest part.
        notes = "…" + notes[-NOTES_LIMIT:]
    return {
        "id": contact.pk,
        "name": contact.name,
        "company": contact.company,
        "manager": contact.manager,
        "notes": notes,
        "url": _url("contacts:detail", contact.pk),
    }


# The hot path (every call notification, inside its transaction) reads with plain SQL, like calls/rows.py:
# the ORM's query compilation costs more than the query. Identifiers come from the models' metadata,
# values are always bound parameters.
@functools.cache
def _sql() -> dict[str, str]:
    def table(model: Any) -> str:
        return f'"{model._meta.db_table}"'

    def col(model: Any, name: str) -> str:
        return f'"{model._meta.get_field(name).column}"'

    call, recording = table(Call), table(Recording)

    def first_stored_of(call_id: str) -> str:
        return (
            f'SELECT r."id" FROM {recording} r WHERE r.{col(Recording, "call")} = {call_id} '  # noqa: S608
            f"AND r.{col(Recording, 'status')} = '{Recording.Status.STORED.value}' "
            f'ORDER BY r.{col(Recording, "created_at")}, r."id" LIMIT 1'
        )

    call_id = call + '."id"'
    first_stored_recording = f"({first_stored_of(call_id)}) AS rec_id"
    columns = (
        f'"id", {col(Call, "started_at")}, {col(Call, "direction")}, {col(Call, "status")}, '
        f"{col(Call, 'talk_seconds')}, {col(Call, 'updated_at')}, {first_stored_recording}"
    )
    order = f'ORDER BY {col(Call, "started_at")} DESC, "id" DESC LIMIT {RECENT_LIMIT}'
    return {
        "first_stored_recording": first_stored_of("%s"),
        "recent_by_contact": (
            f'SELECT {columns} FROM {call} WHERE {col(Call, "contact")} = %s AND "id" <> %s {order}'  # noqa: S608
        ),
        "recent_by_number": (
            f'SELECT {columns} FROM {call} WHERE {col(Call, "client_number")} = %s AND "id" <> %s {order}'  # noqa: S608
        ),
    }


def _recent_calls(call: Call) -> list[dict[str, Any]]:
    """The client's last calls before this one (their contact's, else their number's)."""
    if call.contact_id:
        rows = Call.objects.raw(_sql()["recent_by_contact"], [call.contact_id, call.pk])
    elif call.client_number:
        rows = Call.objects.raw(_sql()["recent_by_number"], [call.client_number, call.pk])
    else:
        return []
    return [
        {
            "id": old.pk,
            "started_at": _iso(old.started_at),
            "direction": old.direction,
            "status": old.status,
            "talk_seconds": old.talk_seconds,
            "url": _url("calls:detail", old.pk),
            # The first stored recording comes with the row (a correlated subquery): no query per call.
            "recording_url": _recording_url_by_pk(getattr(old, "rec_id", None)),
        }
        for old in rows
    ]


def card(
    call: Call, *, contact: ContactView | None, phase: str, connected_at: datetime | None, recent: bool = True
) -> dict[str, Any]:
    """One operator's card of one call (JSON-serialisable; codes, not labels: the page translates)."""
    number = call.client_number or call.client_number_raw
    known = contact is not None and bool(contact.name)
    return {
        "id": call.pk,
        "version": call_version(call),
        "phase": phase,
        "direction": call.direction,
        "status": call.status,
        "number": number,
        "number_display": _number_for_people(number),
        "line_display": _number_for_people(call.line_number),
        "started_at": _iso(call.started_at),
        "connected_at": _iso(connected_at),
        "talk_seconds": call.talk_seconds,
        "contact": _contact_part(contact),
        # No contact yet: a link to create one. An auto-created one (a number, no name): named in place.
        "create_contact_url": (
            None
            if contact is not None or not number
            else _url("contacts:create") + "?" + urlencode({"number": number})
        ),
        "name_contact_url": _url("contacts:name", contact.pk) if contact is not None and not known else None,
        "recent": _recent_calls(call) if recent and phase != ENDED else [],
        "url": _url("calls:detail", call.pk),
        "note_url": _url("calls:note", call.pk),
        "recording_url": _recording_url(call) if phase == ENDED else None,
        # The wrap-up (issue 16): the card stays after hang-up for the operator who took the call.
        "operator_id": call.operator_id,
        "wrap_up_url": _url("calls:wrap_up", call.pk),
        "wrapped_up": call.wrapped_up_at is not None,
        "result_id": call.result_id,
        "comment": call.comment,
    }


def board_row(call: Call, legs: Iterable[LegView], contact: ContactView | None) -> dict[str, Any]:
    """One active call on the supervisors' live board."""
    return {
        "id": call.pk,
        "version": call_version(call),
        "direction": call.direction,
        "status": call.status,
        "number_display": _number_for_people(call.client_number or call.client_number_raw),
        "line_display": _number_for_people(call.line_number),
        "contact": (
            {
                "name": contact.name or _number_for_people(call.client_number or call.client_number_raw),
                "url": _url("contacts:detail", contact.pk),
            }
            if contact
            else None
        ),
        "operators": [{"name": leg.person, "phase": leg.phase} for leg in legs if leg.person],
        "started_at": _iso(call.started_at),
        "answered_at": _iso(call.answered_at),
        "url": _url("calls:detail", call.pk),
    }


# --- what one applied notification pushes -----------------------------------------------------------

Message = tuple[str, dict[str, Any]]


def board_people(call: Call, legs: Iterable[LegView], contact: ContactView | None) -> list[int]:
    """Whose call it is (``calls.visibility.call_people``, from what the push has at hand): the live board's
    socket forwards a row only to a supervisor who may see one of them. Never forwarded to the page."""
    people = {call.operator_id, call.initiated_by_id, contact.manager_id if contact else None}
    people.update(leg.user_id for leg in legs)
    return sorted(p for p in people if p is not None)


def screen_pop_messages(
    *, call: Call, leg: CallLeg, legs: list[LegView], contact: ContactView | None
) -> list[Message]:
    """The pushes one applied notification on ``leg`` causes: its operator's card and the board row.
    ``legs``: every leg of the call as the card sees it (``leg_view_of``), ``contact``: the client's."""
    messages: list[Message] = []
    owner = next((x.user_id for x in legs if x.pk == leg.pk), None)
    if owner is not None:
        phase, connected_at = operator_phase(x for x in legs if x.user_id == owner)
        payload = card(call, contact=contact, phase=phase, connected_at=connected_at)
        if payload["recent"]:
            # The client's last calls as the owner may see them (team mode: not another team's), as the
            # page's resync shows them (calls.live.cards_for_user).
            visible = call_ids_visible_to_user_id(owner, (old["id"] for old in payload["recent"]))
            payload["recent"] = [old for old in payload["recent"] if old["id"] in visible]
        messages.append((operator_group(owner), {"type": MESSAGE_TYPES[phase], "call": payload}))
    if call.status not in Call.LIVE_STATUSES:
        # The call's outcome is known now (missed, answered elsewhere): every other operator it rang gets
        # the final status, so their desk shows a missed call as missed without a reload.
        ended = None
        for other in sorted({x.user_id for x in legs if x.user_id is not None and x.user_id != owner}):
            ended = ended or card(call, contact=contact, phase=ENDED, connected_at=None, recent=False)
            messages.append((operator_group(other), {"type": MESSAGE_TYPES[ENDED], "call": ended}))
    people = board_people(call, legs, contact)
    if call.status in Call.LIVE_STATUSES:
        row = board_row(call, legs, contact)
        messages.append((SUPERVISORS_GROUP, {"type": "board.update", "call": row, "people": people}))
    else:
        gone = {"id": call.pk, "version": call_version(call), "status": call.status}
        messages.append((SUPERVISORS_GROUP, {"type": "board.remove", "call": gone, "people": people}))
    return messages


def call_closed_messages(call: Call, *, legs: list[LegView], contact: ContactView | None) -> list[Message]:
    """A call closed without its last notifications (calls/reconcile.py): every operator it rang loses
    its card, the live board its row."""
    payload = card(call, contact=contact, phase=ENDED, connected_at=None, recent=False)
    owners = sorted({leg.user_id for leg in legs if leg.user_id is not None})
    messages: list[Message] = [
        (operator_group(owner), {"type": MESSAGE_TYPES[ENDED], "call": payload}) for owner in owners
    ]
    gone = {"id": call.pk, "version": call_version(call), "status": call.status}
    people = board_people(call, legs, contact)
    messages.append((SUPERVISORS_GROUP, {"type": "board.remove", "call": gone, "people": people}))
    return messages


def wrapped_up_messages(call: Call) -> list[Message]:
    """A wrap-up saved (calls.wrapup.call_wrap_up, inside its transaction, ``call`` as saved): the call's id
    and its version after the save (``call.wrapped_up``) to every user who has the call's card — its operator
    (whose wrap-up card it is) and the users its legs rang, the groups ``screen_pop_messages`` sends the
    card to — so that every tab of every device closes the wrap-up card and lets no older card of the call
    bring it back. Only to active users who may see the call (team mode: ``calls.visibility``)."""
    rung = CallLeg.objects.filter(call_id=call.pk, workplace__user__isnull=False).values_list(
        "workplace__user_id", flat=True
    )
    owners = {pk for pk in (call.operator_id, *rung) if pk is not None}
    users = get_user_model()._default_manager
    active = users.filter(pk__in=owners, is_active=True).values_list("pk", flat=True)
    payload = {"id": call.pk, "version": call_version(call)}
    return [
        (operator_group(user_id), {"type": WRAPPED_UP, "call": payload})
        for user_id in sorted(active)
        if call.pk in call_ids_visible_to_user_id(user_id, [call.pk])
    ]

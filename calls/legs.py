"""What call notifications say, merged into the rows: a leg's facts from each notification (in any order,
any number of times), and the call summarised from all its legs. Used by calls.services."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings

from contacts.phones import is_hidden, line_key, normalize, sip_id_key
from integrations.models import ExternalNumber, Terminal, Workplace
from integrations.mtt.callinfo import CallInfo, Party

from .models import Call, CallLeg, Direction


def pbx_time_to_utc(moment: datetime | None) -> datetime | None:
    """startTime as the guide writes it has no zone: the PBX's local time (MTT_TIMEZONE, Moscow by default).
    One that names its zone (an offset, "Z", a Unix time: ``parse_call_info``) is taken as it says."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(settings.MTT_TIMEZONE))
    return moment.astimezone(UTC)


# How far after a notification's arrival its startTime may lie and still be the moment of the event: the
# PBX's clock and ours differ by seconds, a wrong MTT_TIMEZONE shifts it by hours. Further ahead is a broken
# clock: a call "in 2099" headed every list, and once a sane startTime had started the call, its wait (2099
# minus now, in seconds) overflowed the database's integer, so the notification failed ten times.
START_TIME_AHEAD = timedelta(days=1)


def occurred_at(start_time: datetime | None, *, received_at: datetime) -> datetime:
    """When a notification's event happened: its startTime (``pbx_time_to_utc``), or its arrival when it has
    none, or one more than START_TIME_AHEAD after the arrival (``START_TIME_YEARS`` bounds the past)."""
    moment = pbx_time_to_utc(start_time)
    if moment is None or moment > received_at + START_TIME_AHEAD:
        return received_at
    return moment


@dataclass(frozen=True)
class Directory:
    """One integration's SIP IDs (workplaces and their terminals) and external numbers, as ids.

    Loaded in two queries and kept per process; the key includes the integration's last sync, so a
    sync anywhere in the deployment makes every process reload on its next notification. Operators
    are not cached (an admin assigns them without a sync): the legs are read with them (calls/rows.py).
    Our lines are keyed by ``line_key``: MTT names a line in whatever form it received it (guide §6.4).
    """

    workplace_ids: dict[str, int]
    # line_key -> (ExternalNumber id, the number as the directory lists it)
    lines: dict[str, tuple[int, str]]
    # sip_id_key -> workplace id: a SIP ID named in another form (``sip:…@host``, ``…@domain``, ``+…``).
    workplace_keys: dict[str, int] = field(default_factory=dict)

    def _workplace_of(self, identifier: str) -> int | None:
        found = self.workplace_ids.get(identifier)
        if found is None and identifier:
            found = self.workplace_keys.get(_sip_id_key(identifier))
        return found

    def workplace_id(self, party: Party) -> int | None:
        for sip_id in party.ids:
            found = self._workplace_of(sip_id)
            if found is not None:
                return found
        return None

    def is_staff(self, identifier: str) -> bool:
        return self._workplace_of(identifier) is not None

    def external_number_id(self, *candidates: str) -> tuple[int | None, str]:
        """The first candidate that names one of our lines: (its id, the number as listed)."""
        for raw in candidates:
            found = self.lines.get(_line_key(raw)) if raw else None
            if found is not None:
                return found
        return None, ""


# A pure function of the text, asked for the same few lines and numbers over and over: libphonenumber's
# parse is the costly part of summarising a call.
_line_key = functools.lru_cache(maxsize=4096)(line_key)
_normalize = functools.lru_cache(maxsize=4096)(normalize)
_sip_id_key = functools.lru_cache(maxsize=4096)(sip_id_key)
_is_hidden = functools.lru_cache(maxsize=4096)(is_hidden)


_DIRECTORIES: dict[tuple[int, object], Directory] = {}


def directory_for(integration_id: int, synced_at: object) -> Directory:
    """``synced_at``: the integration's ``last_sync_at`` as the caller read it (the cache's version)."""
    key = (integration_id, synced_at)
    cached = _DIRECTORIES.get(key)
    if cached is None:
        workplace_ids = dict(
            Workplace.objects.filter(integration_id=integration_id).values_list("sip_id", "pk")
        )
        for sip_id, wp_id in Terminal.objects.filter(
            integration_id=integration_id, workplace__isnull=False
        ).values_list("sip_id", "workplace_id"):
            workplace_ids.setdefault(sip_id, wp_id)
        lines: dict[str, tuple[int, str]] = {}
        # Inactive first, so that an active row with the same key wins.
        for pk, number, key_ in (
            ExternalNumber.objects.filter(integration_id=integration_id)
            .order_by("is_active", "-pk")
            .values_list("pk", "number", "normalized")
        ):
            line = key_ or _line_key(number)
            if line:
                lines[line] = (pk, number)
        workplace_keys: dict[str, int] = {}
        for sip_id, wp_id in workplace_ids.items():
            key_ = _sip_id_key(sip_id)
            if key_:
                workplace_keys.setdefault(key_, wp_id)
        cached = Directory(workplace_ids=workplace_ids, lines=lines, workplace_keys=workplace_keys)
        # Keep only the newest version per integration.
        for old in [k for k in _DIRECTORIES if k[0] == integration_id]:
            del _DIRECTORIES[old]
        _DIRECTORIES[key] = cached
    return cached


def directory_forget() -> None:
    """Drop every cached directory (tests; after editing the directory outside a sync)."""
    _DIRECTORIES.clear()


def _earliest(current: datetime | None, new: datetime | None) -> datetime | None:
    if new is None:
        return current
    return new if current is None or new < current else current


STATE_RANK = {"trying": 0, "showing": 1, "connected": 2, "hiding": 3, "finished": 4, "recorded": 5}


def _fill(leg: CallLeg, attr: str, value: Any, rank: int) -> None:
    """Keep the value of the earliest state that carried one, so any arrival order gives the same leg."""
    if not value:
        return
    current = leg.field_ranks.get(attr)
    if current is None or rank < current:
        setattr(leg, attr, value)
        leg.field_ranks = {**leg.field_ranks, attr: rank}


def leg_merge(leg: CallLeg, info: CallInfo, *, at: datetime, directory: Directory) -> None:
    """Add what one notification says to the leg's facts (order-independent, idempotent)."""
    rank = STATE_RANK[info.state]
    _fill(leg, "tag", info.tag, rank)
    _fill(leg, "transport_id", info.transport_id, rank)
    if info.type in (Direction.INCOMING, Direction.OUTGOING):
        _fill(leg, "direction", info.type, rank)
    _fill(leg, "caller_id", info.caller.id or info.caller.display_id, rank)
    _fill(leg, "caller_account", info.caller.account_id, rank)
    _fill(leg, "callee_id", info.callee.id or info.callee.display_id, rank)
    _fill(leg, "callee_account", info.callee.account_id, rank)
    _fill(leg, "callee_display_name", info.callee.display_name, rank)
    _fill(leg, "forwarders", list(info.callee.forwarders), rank)

    if leg.workplace_id is None:
        # The employee side of the leg: callee for incoming, caller for outgoing; recorded names it
        # in a top-level accountId.
        parties = (
            [info.callee, info.caller] if leg.direction != Direction.OUTGOING else [info.caller, info.callee]
        )
        for party in [*parties, Party(account_id=info.account_id)]:
            wp_id = directory.workplace_id(party)
            if wp_id is not None:
                leg.workplace_id = wp_id
                break
    if leg.direction == Direction.INCOMING and leg.workplace_id is None and info.state != "recorded":
        # No employee on this leg: it rings the company's number (the parked leg, API.md).
        leg.is_line_leg = True
    elif leg.workplace_id is not None:
        leg.is_line_leg = False

    if info.state not in leg.states:
        leg.states = sorted([*leg.states, info.state])
    leg.last_state = info.state
    if info.state == "finished":
        leg.finished_at = _earliest(leg.finished_at, at)
        if info.duration is not None:
            leg.duration = info.duration
        leg.reason = info.reason or leg.reason
        leg.reason_code = info.reason_code[:32] or leg.reason_code  # a code, short in the guide
        # No start of the leg from finished: "the arrival minus the duration" is only as right as the
        # duration (call_summarise uses it for a call seen through nothing else).
    elif info.state != "recorded":
        leg.started_at = _earliest(leg.started_at, at)
    if info.state == "showing":
        leg.offered_at = _earliest(leg.offered_at, at)
    elif info.state == "connected":
        leg.connected_at = _earliest(leg.connected_at, at)
    elif info.state == "hiding":
        leg.hidden_at = _earliest(leg.hidden_at, at)


# How much longer than the time from the answer to the arrival of its finished MTT's talk may be and still
# stand: MTT's startTime is in whole seconds and its clock is not ours, so an honest figure can exceed the
# time we measured by a second or two. Trimming those would make every talk a second short.
TALK_SLACK_SECONDS = 5


def _talk_heard(talk: int | None, *, answered: datetime | None, heard: datetime | None) -> int | None:
    """MTT's talk duration, but no longer than from the answer to the arrival of the leg's finished: the PBX
    cannot have talked past the moment it told us the call was over (a "90 s" talk whose finished came 2 s
    after the answer is a 2 s talk). Within TALK_SLACK_SECONDS of that time MTT's figure stands, and so it
    does when the answer is after that arrival (a PBX clock ahead of ours: the two cannot be compared)."""
    if talk is None or answered is None or heard is None or heard < answered:
        return talk
    window = (heard - answered).total_seconds()
    if talk <= window + TALK_SLACK_SECONDS:
        return talk
    return int(window)


def _client_party_numbers(leg: CallLeg) -> list[str]:
    if leg.direction == Direction.OUTGOING:
        return [leg.callee_id, leg.callee_account]
    return [leg.caller_account, leg.caller_id]


def call_summarise(
    call: Call, legs: list[CallLeg], *, operators: Mapping[int, int | None], directory: Directory
) -> None:
    """Recompute the call from all its legs' facts (ordered by Call-ID): the same facts give the same call.
    ``operators``: workplace id → the user working there (None: nobody)."""
    directions = {leg.direction for leg in legs} - {Direction.UNKNOWN}
    call.direction = (
        Direction.OUTGOING
        if Direction.OUTGOING in directions
        else Direction.INCOMING
        if directions
        else Direction.UNKNOWN
    )
    # The start: the earliest notification of the call (startTime, else its arrival). Only a call seen through
    # nothing but finished is placed by a duration: the finished's arrival minus it (README "Call times").
    starts = [leg.started_at for leg in legs if leg.started_at] or [
        leg.finished_at - timedelta(seconds=leg.duration or 0) for leg in legs if leg.finished_at
    ]
    call.started_at = min(starts) if starts else call.started_at

    connected = sorted((leg for leg in legs if leg.connected_at), key=lambda leg: leg.connected_at)  # type: ignore[arg-type,return-value]
    # Guide §6.1: with forwarding outside or IP SIP terminals only trying and finished arrive; a
    # finished leg with a talk duration was answered even though no "connected" came.
    talked = [leg for leg in legs if not leg.connected_at and leg.is_finished and (leg.duration or 0) > 0]
    answered_leg = next((leg for leg in connected if leg.workplace_id), connected[0] if connected else None)
    if answered_leg is None and talked:
        answered_leg = max(talked, key=lambda leg: leg.duration or 0)

    ended = bool(legs) and all(leg.is_finished for leg in legs)
    talk: int | None = None
    if answered_leg is not None:
        talk = answered_leg.duration if answered_leg.is_finished else None
        if answered_leg.connected_at:
            call.answered_at = answered_leg.connected_at
        elif answered_leg.finished_at and answered_leg.duration is not None:
            call.answered_at = answered_leg.finished_at - timedelta(seconds=answered_leg.duration)
            if call.started_at and call.answered_at < call.started_at:
                call.answered_at = call.started_at  # never answered before it began
        talk = _talk_heard(talk, answered=call.answered_at, heard=answered_leg.finished_at)
    else:
        call.answered_at = None

    finishes = [leg.finished_at for leg in legs if leg.finished_at]
    if ended:
        if call.answered_at and talk is not None:
            call.ended_at = call.answered_at + timedelta(seconds=talk)
        else:
            call.ended_at = max(finishes) if finishes else None
        if call.ended_at and call.started_at and call.ended_at < call.started_at:
            # The finished's arrival "before" the startTimes: the PBX's clock runs ahead of ours.
            call.ended_at = call.started_at
        if call.answered_at:
            call.status = Call.Status.ANSWERED
        elif call.direction == Direction.INCOMING:
            call.status = Call.Status.MISSED
        elif call.direction == Direction.OUTGOING:
            call.status = Call.Status.NOT_ANSWERED
        else:
            call.status = Call.Status.FINISHED
    else:
        call.ended_at = None
        call.status = Call.Status.IN_PROGRESS if call.answered_at else Call.Status.RINGING

    call.talk_seconds = talk if call.answered_at else (0 if ended else None)
    reference = call.answered_at or (call.ended_at if ended else None)
    if reference and call.started_at:
        call.wait_seconds = max(0, int((reference - call.started_at).total_seconds()))
    else:
        call.wait_seconds = None

    finished_legs = sorted(
        (leg for leg in legs if leg.is_finished), key=lambda leg: leg.finished_at or leg.first_seen_at
    )
    reason_leg = answered_leg if answered_leg is not None and answered_leg.reason else None
    if reason_leg is None:
        reason_leg = next((leg for leg in reversed(finished_legs) if leg.reason), None)
    call.end_reason = reason_leg.reason if reason_leg else ""
    call.end_reason_code = reason_leg.reason_code if reason_leg else ""

    # Who took it: the answering employee leg; for outgoing calls the employee who called.
    staff_leg = answered_leg if answered_leg is not None and answered_leg.workplace_id else None
    if staff_leg is None and call.direction == Direction.OUTGOING:
        staff_leg = next((leg for leg in legs if leg.workplace_id), None)
    call.workplace_id = staff_leg.workplace_id if staff_leg else None
    call.operator_id = operators.get(staff_leg.workplace_id) if staff_leg and staff_leg.workplace_id else None

    # The client's number: the line leg's caller first (it is the one the client dialled from). A hidden
    # caller id ("anonymous", kept on the leg as received) is no number: the call has none.
    call.client_number_raw = next(
        (
            candidate
            for leg in sorted(legs, key=lambda leg: (not leg.is_line_leg, leg.leg_id))
            for candidate in _client_party_numbers(leg)
            if candidate and not directory.is_staff(candidate) and not _is_hidden(candidate)
        ),
        "",
    )
    call.client_number = _normalize(call.client_number_raw) or "" if call.client_number_raw else ""

    line_candidates: list[str] = []
    for leg in legs:
        if leg.direction == Direction.OUTGOING:
            line_candidates += [leg.caller_id]
        elif leg.is_line_leg:
            line_candidates += [leg.callee_id, leg.callee_account]
        else:
            # An employee leg names the dialled company number in the callee's display name (fixture 07).
            line_candidates += [leg.callee_display_name]
    call.line_id, call.line_number = directory.external_number_id(*line_candidates)
    if call.line_id is None:
        # Not one of our lines as far as the directory knows: the number as MTT wrote it (what fits).
        call.line_number = next((c for c in line_candidates if c and c.lstrip("+").isdigit()), "")[:64]

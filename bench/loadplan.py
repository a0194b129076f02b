"""The pure parts of bench/load.py: which calls, what each sends and when, the duplicate schedule, and
the exactly-once accounting. No Django, no I/O (tests/bench/test_loadplan.py covers them).

Shapes follow the sandbox's scenarios (sandbox/scenarios.py) and the guide's examples (API.md): an
incoming call is a parked leg `<base>~1o` (callee = the external number) and the employee's leg
`<base>~2o` (callee = the workplace). Answered: line trying, trying, showing, connected, line finished,
finished, recorded (no `hiding` on an answered incoming leg: the guide's and the sandbox's sequences have
none; `hiding` is the missed call's and the click-to-call's). Missed: line trying, trying, showing,
hiding, finished, line finished.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from integrations.mtt.notifications import fingerprint

MOSCOW = timezone(timedelta(hours=3))
LINE = "74996497803"  # an external number without parking
PARK_LINE = "74996497804"  # an external number with parking on: its calls wait for the CRM's command
CENTREX_ID = "67821426"
TRANSPORT = "10.133.33.136:5073"
ROUTE = [{"id": "an_prd100275045-3881851"}, {"id": "scheme_prd100275045-3885981"}]
# Irrational steps of two low-discrepancy sequences: the chosen indexes are spread evenly over the run,
# and "missed" and "parked" pick independently of each other.
_STEPS = {"missed": 0.6180339887498949, "parked": 0.7548776662466927}


def picked(index: int, share: float, what: str) -> bool:
    """Whether call `index` is one of the `share` of calls that are `what` ("missed" / "parked")."""
    if share <= 0:
        return False
    if share >= 1:
        return True
    return ((index + 1) * _STEPS[what]) % 1.0 < share


def is_duplicate(seq: int, every: int) -> bool:
    """Whether the notification with global sequence number `seq` (from 0) is sent twice."""
    return every > 0 and (seq + 1) % every == 0


def operator_sip(operator: int) -> str:
    return f"88314090{operator:07d}"


def known_client(operator: int) -> str:
    """The number of the client whose personal manager is operator `operator`."""
    return f"+7903{operator:07d}"


@dataclass(frozen=True)
class CallSpec:
    index: int
    operator: int
    client: str
    answered: bool
    parked: bool
    base: str

    @property
    def line_leg(self) -> str:
        return f"{self.base}~1o"

    @property
    def staff_leg(self) -> str:
        return f"{self.base}~2o"


def call_spec(
    index: int, *, operators: int, missed_share: float, parked_share: float, prefix: str = "load"
) -> CallSpec:
    """Call `index`: round-robin over operators; half the parked calls come from the operator's own
    known client (routing transfers them to that operator when free), the others from new numbers."""
    operator = index % operators
    parked = picked(index, parked_share, "parked")
    known = parked and index % 2 == 0
    number_prefix = "+7921" if prefix == "load" else "+7922"
    client = known_client(operator) if known else f"{number_prefix}{index:07d}"
    return CallSpec(
        index=index,
        operator=operator,
        client=client,
        answered=not picked(index, missed_share, "missed"),
        parked=parked,
        base=f"{prefix}{index:07d}",
    )


@dataclass(frozen=True)
class Note:
    """One notification of a call: sent `at` seconds after the call starts."""

    # line-trying, trying, showing, connected, hiding, finished, line-finished, recorded
    kind: str
    at: float
    body: bytes
    seq: int
    duplicate: bool
    call: str = ""  # the call's key (all its legs share it)

    @property
    def fingerprint(self) -> str:
        """The inbox's key for it (integrations/mtt/notifications.py): how the check finds its row."""
        return fingerprint(json.loads(self.body))


@dataclass(frozen=True)
class Timing:
    park_wait: float = 0.5  # parked leg's trying -> the employee's leg rings (the PBX waits for the CRM)
    show_after: float = 0.2  # trying -> showing
    answer_after: float = 1.0  # trying -> connected
    talk: float = 3.0  # connected -> finished
    ring: float = 3.0  # trying -> hiding of a missed call
    record_after: float = 0.5  # finished -> recorded


NO_WAIT = Timing(park_wait=0, show_after=0, answer_after=0, talk=0, ring=0, record_after=0)


def _msk(moment: datetime) -> str:
    return moment.astimezone(MOSCOW).strftime("%Y-%m-%d %H:%M:%S")


def _client_party(number: str) -> dict[str, Any]:
    bare = number.lstrip("+")
    return {"accountId": f"{bare}@pstn", "displayId": number, "forwarderList": [], "id": number}


def _line_party(line: str) -> dict[str, Any]:
    return {"accountId": line, "centrexId": CENTREX_ID, "displayId": line, "displayName": "",
            "forwarderList": [], "id": line}  # fmt: skip


def _staff_party(sip: str, line: str) -> dict[str, Any]:
    return {"accountId": sip, "centrexId": CENTREX_ID, "displayId": sip, "display_name": line,
            "extensionId": "", "forwarderList": [dict(r) for r in ROUTE], "id": sip}  # fmt: skip


def _note(
    leg: str, tag: str, state: str, caller: dict[str, Any], callee: dict[str, Any], **more: Any
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "call": {"id": leg, "tag": tag},
        "callee": callee,
        "caller": caller,
        "state": state,
        "transportId": TRANSPORT,
        "type": "incoming",
        **more,
    }
    return {"event": "callNotifications", "result": {"callInfo": info}}


def build_call(
    spec: CallSpec,
    *,
    start: datetime,
    first_seq: int,
    duplicate_every: int,
    timing: Timing = Timing(),
    record_base: str | None = None,
) -> list[Note]:
    """The notifications of one incoming call in the order they are sent, with their global sequence
    numbers from `first_seq` and which of them go twice. `record_base` (the sandbox's URL): answered
    calls end with `recorded`, its urlRecord pointing there; None sends no `recorded`."""
    line = PARK_LINE if spec.parked else LINE
    sip = operator_sip(spec.operator)
    caller = _client_party(spec.client)
    line_tag, staff_tag = f"l{spec.base}____.o", f"s{spec.base}____.o"
    ring_at = timing.park_wait if spec.parked else 0.0

    def line_note(state: str, **more: Any) -> dict[str, Any]:
        return _note(spec.line_leg, line_tag, state, caller, _line_party(line), **more)

    def staff_note(state: str, **more: Any) -> dict[str, Any]:
        return _note(spec.staff_leg, staff_tag, state, caller, _staff_party(sip, line), **more)

    def at(seconds: float) -> str:
        return _msk(start + timedelta(seconds=seconds))

    plan: list[tuple[str, float, dict[str, Any]]] = [
        ("line-trying", 0.0, line_note("trying", startTime=at(0))),
        ("trying", ring_at, staff_note("trying", startTime=at(ring_at))),
        ("showing", ring_at + timing.show_after, staff_note("showing", startTime=at(ring_at))),
    ]
    if spec.answered:
        connected = ring_at + timing.answer_after
        ended = connected + timing.talk
        talk = int(timing.talk)
        plan += [
            ("connected", connected, staff_note("connected", startTime=at(connected))),
            ("line-finished", ended, line_note("finished", duration=talk + 1, reason="Normal call clearing",
                                               reasonCode="16")),
            ("finished", ended, staff_note("finished", duration=talk, reason="Answer leg disconnected",
                                           reasonCode=None)),
        ]  # fmt: skip
        if record_base is not None:
            day = start.astimezone(MOSCOW)
            url = f"{record_base.rstrip('/')}/records/{day:%Y/%m/%d}/{spec.base}.mp3"
            recorded = {
                "accountId": sip,
                "call": {"id": spec.staff_leg},
                "state": "recorded",
                "urlRecord": url,
            }
            plan.append(
                ("recorded", ended + timing.record_after,
                 {"event": "callNotifications", "result": {"callInfo": recorded}}),
            )  # fmt: skip
    else:
        hidden = ring_at + timing.ring
        plan += [
            ("hiding", hidden, staff_note("hiding", startTime=at(ring_at))),
            ("finished", hidden, staff_note("finished", duration=0, reason="No answer", reasonCode="19")),
            ("line-finished", hidden, line_note("finished", duration=0, reason="Originate leg disconnected",
                                                reasonCode=None)),
        ]  # fmt: skip
    return [
        Note(
            kind=kind,
            at=offset,
            body=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
            seq=first_seq + n,
            duplicate=is_duplicate(first_seq + n, duplicate_every),
            call=spec.base,
        )
        for n, (kind, offset, body) in enumerate(plan)
    ]


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- exactly-once accounting --------------------------------------------------------------------------


@dataclass
class Ledger:
    """What the load generator sent and what the notify URL answered, notification by notification.

    A notification is *acknowledged* when one of its copies got a 200: from then on it must be stored and
    applied exactly once. One that never got a 200 (a timeout, a refused connection, an error status) is
    *unanswered*: MTT would send it again, so the CRM may have stored it or not — but at most once, and if
    stored, applied once.
    """

    calls: int = 0  # incoming calls started
    copies: int = 0  # second copies answered 200 after their first was acknowledged
    copies_recognized: int = 0  # of those, answered {"duplicate": true}
    firsts_called_duplicate: int = 0  # first copies answered {"duplicate": true}: a collision, wrong
    errors: dict[str, int] = field(default_factory=dict)
    # fingerprint -> (acknowledged, kind, call); kind "parked" for a parked call's line trying
    outcomes: dict[str, tuple[bool, str, str]] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def answer(
        self, note: Note, *, copy: bool, status: int, duplicate: bool | None, parked: bool = False
    ) -> None:
        """Count one answer of the notify URL (status 0: no answer at all)."""
        fp = note.fingerprint
        was_acknowledged = self.outcomes.get(fp, (False,))[0]
        kind = "parked" if parked else note.kind
        if status != 200:
            self.error(f"notify HTTP {status}" if status else "notify no answer")
            self.outcomes.setdefault(fp, (False, kind, note.call))
            return
        self.outcomes[fp] = (True, kind, note.call)
        if copy:
            # A copy whose first went unanswered may be the one that stored it: nothing to recognize.
            if was_acknowledged:
                self.copies += 1
                self.copies_recognized += bool(duplicate)
            return
        self.firsts_called_duplicate += bool(duplicate)

    def count(self, *, acknowledged: bool | None = None, kind: str | None = None) -> int:
        return sum(
            1
            for ack, k, _call in self.outcomes.values()
            if (acknowledged is None or ack == acknowledged) and (kind is None or k == kind)
        )

    @property
    def distinct(self) -> int:
        return self.count(acknowledged=True)

    @property
    def unacknowledged(self) -> int:
        return self.count(acknowledged=False)

    def fingerprints(self, *, acknowledged: bool) -> list[str]:
        return [fp for fp, (ack, _kind, _call) in self.outcomes.items() if ack == acknowledged]

    def calls_acknowledged(self) -> int:
        """Calls at least one of whose notifications was acknowledged: each must have its Call row."""
        return len({call for ack, _kind, call in self.outcomes.values() if ack})


Range = tuple[int, int]  # (at least, at most)


@dataclass(frozen=True)
class Expected:
    notifications: Range  # distinct notifications stored: the load generator's and the sandbox's
    calls: Range  # incoming calls + click-to-calls placed
    recordings: Range
    copies: int
    parked: Range


def expected_from(ledger: Ledger, *, sandbox: list[dict[str, Any]], placed: int) -> Expected:
    """What the database must hold after the run, from what was acknowledged (at least) and what was
    sent at all (at most). ``sandbox``: the notifications the sandbox sent (click-to-call), with the
    status the notify URL answered each."""
    delivered = [n for n in sandbox if n.get("status") == 200]
    recorded = [n for n in sandbox if n.get("state") == "recorded"]
    return Expected(
        notifications=(ledger.distinct + len(delivered), len(ledger.outcomes) + len(sandbox)),
        calls=(ledger.calls_acknowledged() + placed, ledger.calls + placed),
        recordings=(
            ledger.count(acknowledged=True, kind="recorded")
            + sum(1 for n in delivered if n.get("state") == "recorded"),
            ledger.count(kind="recorded") + len(recorded),
        ),
        copies=ledger.copies,
        parked=(ledger.count(acknowledged=True, kind="parked"), ledger.count(kind="parked")),
    )


@dataclass(frozen=True)
class Observed:
    stored: int  # NotificationEvent rows
    applied: int  # of which applied
    call_events: int  # CallEvent rows (one per applied call notification, unique per notification)
    calls: int  # Call rows
    recordings: int  # Recording rows
    recordings_stored: int  # of which stored
    record_downloads: int  # GETs of recordings the sandbox served (a retried download counts twice)
    copies_recognized: int  # second copies the notify URL called duplicates
    decisions: int  # RoutingDecision rows
    acknowledged_missing: int = 0  # acknowledged notifications (by fingerprint) with no row
    unanswered_stored: int = 0  # unanswered notifications that were stored all the same


def exactly_once_problems(expected: Expected, observed: Observed) -> list[str]:
    """Every way the run broke "each acknowledged notification applied exactly once, each unanswered one
    at most once"; empty when it held."""
    problems = []

    def within(what: str, want: Range, got: int) -> None:
        low, high = want
        if not low <= got <= high:
            problems.append(
                f"{what}: expected {low}, found {got}"
                if low == high
                else f"{what}: expected {low}..{high}, found {got}"
            )

    if observed.acknowledged_missing:
        problems.append(f"acknowledged notifications not stored: {observed.acknowledged_missing}")
    within("notifications stored", expected.notifications, observed.stored)
    within("notifications applied (all stored)", (observed.stored, observed.stored), observed.applied)
    within("call events (one per notification)", (observed.stored, observed.stored), observed.call_events)
    within("calls", expected.calls, observed.calls)
    within("duplicates recognized", (expected.copies, expected.copies), observed.copies_recognized)
    within("recordings", expected.recordings, observed.recordings)
    within("recordings stored (all)", (observed.recordings, observed.recordings), observed.recordings_stored)
    within("routing decisions", expected.parked, observed.decisions)
    return problems

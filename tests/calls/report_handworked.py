"""The reports' hand-worked data set (the `data` fixture, tests/calls/conftest.py): a small fixed set of
calls, legs, routing decisions and callbacks whose every aggregate was worked out by hand.


The data set (times are Moscow time, UTC+3; the period is Mon 2 – Wed 4 March 2026, Tuesday has no
calls). Lines L1, L2 (L3 active without calls, L4 inactive without calls); operators Иванова (wp1) and
Петров (wp2), wp3 has no operator.

    call  day  time   line  direction  outcome      operator  wait  talk  legs offered, not taken
    C1    Mon  00:30  L1    in         answered     ivanova     10    60  -            (UTC: Sunday 21:30)
    C2    Mon  10:15  L1    in         answered     ivanova     20   120  -
    C3    Mon  10:40  L1    in         missed       -           30     0  wp1, wp2
    C14   Mon  11:00  L1    in         missed       -           25     0  -
    C4    Wed  10:05  L2    in         answered     petrov      40   300  wp1
    C9    Wed  10:30  -     in         answered     petrov       4    10  (wp2 talked without "connected")
    C8    Wed  11:00  L2    in         answered     ivanova     60    30  wp2
    C13   Wed  13:00  L2    in         missed       -           20     0  -
    C5    Wed  14:00  L2    in         missed       -           35     0  wp2, wp3 (no operator)
    C6    Wed  15:00  L1    out        answered     ivanova      5    90  -
    C7    Wed  16:00  L2    out        not answered petrov      15     0  -
    C12   Wed  17:00  L1    in         ringing      -            -     -  -
    C11   Sun  23:30  L1    in         answered     ivanova  (before the period)
    C10   Thu  00:30  L1    in         missed       -        (after the period; UTC: Wednesday 21:30)

Callbacks: T1 (C3) closed by ivanova Wed 15:00, first miss Mon 10:40 → 52 h 20 min = 188,400 s;
T2 (C13, C5) closed by ivanova Wed 17:00, first miss Wed 13:00 → 14,400 s (from the last miss 10,800);
T3 (C14) closed by petrov Mon 11:30 → 1,800 s; not counted: T4 open, T5 closed Thursday, T6 closed by
nobody. Routing decisions: transfer C1 (L1) and C4 (L2), release C2 (L1), too late C3 (L1); a transfer
decided Thursday does not count.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.test import Client

from calls.models import Call, CallbackTask, CallLeg, Direction, RoutingDecision
from calls.reports.selectors import ReportScope
from integrations.models import ExternalNumber, Integration, Workplace

MSK = ZoneInfo("Europe/Moscow")
MON, TUE, WED = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)
PERIOD = ReportScope(first_day=MON, last_day=WED)
URL = "/reports/"
CUSTOM = {"period": "custom", "date_from": "2026-03-02", "date_to": "2026-03-04"}


def msk(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=MSK)


def handworked_data(integration: Integration) -> dict[str, Any]:
    """The data set above, created; its calls by key, the two operators and the lines L1-L3."""
    users = get_user_model().objects
    ivanova = users.create_user("ivanova", password="x-pass-123", first_name="Мария", last_name="Иванова")
    petrov = users.create_user("petrov", password="x-pass-123", first_name="Алексей", last_name="Петров")
    wp1 = Workplace.objects.create(integration=integration, sip_id="wp1", user=ivanova)
    wp2 = Workplace.objects.create(integration=integration, sip_id="wp2", user=petrov)
    wp3 = Workplace.objects.create(integration=integration, sip_id="wp3")
    l1 = ExternalNumber.objects.create(integration=integration, number="74951110000")
    l2 = ExternalNumber.objects.create(integration=integration, number="78002220000")
    l3 = ExternalNumber.objects.create(integration=integration, number="78123330000")
    ExternalNumber.objects.create(integration=integration, number="78124440000", is_active=False)
    lines = {"L1": l1, "L2": l2, None: None}
    ops = {"ivanova": ivanova, "petrov": petrov, None: None}
    statuses = {
        "answered": Call.Status.ANSWERED,
        "missed": Call.Status.MISSED,
        "not_answered": Call.Status.NOT_ANSWERED,
        "ringing": Call.Status.RINGING,
    }
    calls: dict[str, Call] = {}

    def call(key: str, start: datetime, line: str | None, direction: str, status: str, op: str | None,
             wait: int | None, talk: int | None) -> Call:  # fmt: skip
        answered = start + timedelta(seconds=wait or 0) if status == "answered" else None
        ended = None if status == "ringing" else start + timedelta(seconds=(wait or 0) + (talk or 0))
        calls[key] = Call.objects.create(
            integration=integration,
            call_key=key,
            direction=direction,
            status=statuses[status],
            client_number=f"+7921000{len(calls):04d}",
            line=lines[line],
            line_number=lines[line].number if lines[line] else "",
            operator=ops[op],
            workplace=ops[op].workplace if ops[op] else None,
            started_at=start,
            answered_at=answered,
            ended_at=ended,
            wait_seconds=wait,
            talk_seconds=talk,
        )
        return calls[key]

    IN, OUT = Direction.INCOMING, Direction.OUTGOING
    call("C1", msk(MON, 0, 30), "L1", IN, "answered", "ivanova", 10, 60)
    call("C2", msk(MON, 10, 15), "L1", IN, "answered", "ivanova", 20, 120)
    call("C3", msk(MON, 10, 40), "L1", IN, "missed", None, 30, 0)
    call("C14", msk(MON, 11, 0), "L1", IN, "missed", None, 25, 0)
    call("C4", msk(WED, 10, 5), "L2", IN, "answered", "petrov", 40, 300)
    call("C9", msk(WED, 10, 30), None, IN, "answered", "petrov", 4, 10)
    call("C8", msk(WED, 11, 0), "L2", IN, "answered", "ivanova", 60, 30)
    call("C13", msk(WED, 13, 0), "L2", IN, "missed", None, 20, 0)
    call("C5", msk(WED, 14, 0), "L2", IN, "missed", None, 35, 0)
    call("C6", msk(WED, 15, 0), "L1", OUT, "answered", "ivanova", 5, 90)
    call("C7", msk(WED, 16, 0), "L2", OUT, "not_answered", "petrov", 15, 0)
    call("C12", msk(WED, 17, 0), "L1", IN, "ringing", None, None, None)
    call("C11", msk(MON, 0, 0) - timedelta(minutes=30), "L1", IN, "answered", "ivanova", 10, 10)
    call("C10", msk(WED + timedelta(days=1), 0, 30), "L1", IN, "missed", None, 30, 0)

    leg_no = iter(range(1, 1000))

    def leg(key: str, workplace: Workplace | None, *, taken: bool, duration: int | None = None,
            line_leg: bool = False) -> CallLeg:  # fmt: skip
        c = calls[key]
        assert c.started_at is not None
        offered = c.started_at + timedelta(seconds=2)
        return CallLeg.objects.create(
            call=c,
            integration=integration,
            leg_id=f"{key}-{next(leg_no)}",
            direction=c.direction,
            is_line_leg=line_leg,
            workplace=workplace,
            started_at=c.started_at,
            offered_at=None if line_leg else offered,
            connected_at=c.answered_at if taken else None,
            duration=duration,
        )

    # Every answered call's operator leg (connected): not a missed offer.
    for key, wp in [("C1", wp1), ("C2", wp1), ("C4", wp2), ("C8", wp1), ("C11", wp1)]:
        leg(key, wp, taken=True)
    # Offered and not taken.
    leg("C3", wp1, taken=False)
    leg("C3", wp2, taken=False)
    leg("C4", wp1, taken=False)
    leg("C8", wp2, taken=False)
    leg("C5", wp2, taken=False)
    leg("C5", wp3, taken=False)  # a workplace without an operator: nobody's miss
    leg("C10", wp1, taken=False)  # offered after the period
    # Forwarding outside: finished with a talk duration and no "connected" — answered, not missed.
    leg("C9", wp2, taken=False, duration=10)

    # Routing decisions, each on its call's parked (line) leg.
    def decide(key: str, decision: str, at: datetime) -> None:
        parked = leg(key, None, taken=False, line_leg=True)
        RoutingDecision.objects.create(
            call=calls[key], leg=parked, decision=decision, reason=RoutingDecision.Reason.NO_MANAGER,
            received_at=at, decided_at=at,
        )  # fmt: skip

    decide("C1", RoutingDecision.Decision.TRANSFER, msk(MON, 0, 30))
    decide("C4", RoutingDecision.Decision.TRANSFER, msk(WED, 10, 5))
    decide("C2", RoutingDecision.Decision.RELEASE, msk(MON, 10, 15))
    decide("C3", RoutingDecision.Decision.TOO_LATE, msk(MON, 10, 40))
    decide("C10", RoutingDecision.Decision.TRANSFER, msk(WED + timedelta(days=1), 0, 30))

    def task(number: str, missed: list[str], first: datetime, last: datetime, closed: datetime | None,
             by: str | None) -> None:  # fmt: skip
        t = CallbackTask.objects.create(
            client_number=number, missed_count=len(missed), first_missed_at=first, last_missed_at=last,
            closed_at=closed, closed_by=ops[by],
        )  # fmt: skip
        t.missed_calls.set([calls[k] for k in missed])

    task("+79210000001", ["C3"], msk(MON, 10, 40), msk(MON, 10, 40), msk(WED, 15, 0), "ivanova")  # T1
    task("+79210000002", ["C13", "C5"], msk(WED, 13, 0), msk(WED, 14, 0), msk(WED, 17, 0), "ivanova")  # T2
    task("+79210000003", ["C14"], msk(MON, 11, 0), msk(MON, 11, 0), msk(MON, 11, 30), "petrov")  # T3
    task("+79210000004", ["C10"], msk(WED, 23, 0), msk(WED, 23, 0), None, None)  # T4: open
    task(
        "+79210000005", ["C3"], msk(MON, 9, 0), msk(MON, 9, 0), msk(WED + timedelta(days=1), 10, 0), "petrov"
    )
    task("+79210000006", ["C14"], msk(MON, 9, 0), msk(MON, 9, 0), msk(MON, 12, 0), None)  # T6: nobody

    return {"calls": calls, "ivanova": ivanova, "petrov": petrov, "l1": l1, "l2": l2, "l3": l3}


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client

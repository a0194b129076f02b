"""Generated call data for the report tests: a fixed pseudo-random sequence (the same on every run)
placed on the edges that matter — Moscow midnights (21:00 UTC), hour boundaries, Sunday → Monday."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model

from calls.models import Call, CallbackTask, CallLeg, Direction, RoutingDecision
from integrations.models import ExternalNumber, Integration, Workplace

MSK = ZoneInfo("Europe/Moscow")
FIRST_DAY = date(2026, 3, 6)  # a Friday: the data runs over two weekends
DAYS = 10

# Seconds after a local midnight or hour that a call may start at: the edges and some ordinary times.
OFFSETS = [0, 1, 59, 3599, 1800, 7 * 3600 + 3599, 21 * 3600, 23 * 3600 + 3599, 23 * 3600 + 59 * 60]
WAITS = [
    0,
    1,
    4,
    9,
    10,
    11,
    19,
    20,
    33,
    59,
    60,
    61,
    95,
    119,
    120,
    200,
    299,
    300,
    450,
    599,
    600,
    1700,
    1800,
    2500,
]


def generate(integration: Integration, *, calls: int = 400, seed: int = 20261203) -> dict[str, Any]:
    rng = random.Random(seed)
    users = get_user_model().objects
    operators = [users.create_user(f"gen{i}", first_name=f"Опер{i}", last_name="Тест") for i in range(3)]
    workplaces = [
        Workplace.objects.create(integration=integration, sip_id=f"gen-wp{i}", user=user)
        for i, user in enumerate(operators)
    ]
    workplaces.append(Workplace.objects.create(integration=integration, sip_id="gen-wp-free"))
    lines = [
        ExternalNumber.objects.create(integration=integration, number=f"7495777000{i}") for i in range(2)
    ]
    made: list[Call] = []
    for n in range(calls):
        day = FIRST_DAY + timedelta(days=rng.randrange(-1, DAYS + 1))
        local = datetime(day.year, day.month, day.day, tzinfo=MSK) + timedelta(seconds=rng.choice(OFFSETS))
        if rng.random() < 0.5:
            local += timedelta(seconds=rng.randrange(86400))
        direction = rng.choice([Direction.INCOMING] * 3 + [Direction.OUTGOING] * 2 + [Direction.UNKNOWN])
        outcome = rng.choice(["answered"] * 5 + ["missed"] * 2 + ["ringing", "in_progress"])
        operator = rng.choice([*operators, None])
        wait = rng.choice(WAITS) if rng.random() < 0.9 else None
        talk = rng.randrange(1, 900)
        answered = outcome in ("answered", "in_progress")
        if direction == Direction.INCOMING:
            status = {"answered": Call.Status.ANSWERED, "missed": Call.Status.MISSED}.get(outcome, outcome)
        elif direction == Direction.OUTGOING:
            status = {"answered": Call.Status.ANSWERED, "missed": Call.Status.NOT_ANSWERED}.get(
                outcome, outcome
            )
        else:
            status = Call.Status.ANSWERED if outcome == "answered" else Call.Status.FINISHED
        started = local.astimezone(ZoneInfo("UTC"))
        call = Call.objects.create(
            integration=integration,
            call_key=f"gen-{n}",
            direction=direction,
            status=status,
            client_number=f"+7921555{n:04d}",
            line=rng.choice([*lines, None]),
            operator=operator if answered or direction == Direction.OUTGOING else None,
            started_at=started,
            answered_at=started + timedelta(seconds=wait or 0) if answered else None,
            wait_seconds=wait,
            talk_seconds=(talk if outcome == "answered" else None)
            if answered
            else (0 if rng.random() < 0.5 else None),
        )
        made.append(call)
        for k in range(rng.randrange(0, 3)):
            CallLeg.objects.create(
                call=call,
                integration=integration,
                leg_id=f"gen-{n}-{k}",
                direction=direction,
                workplace=rng.choice(workplaces),
                started_at=started,
                offered_at=started + timedelta(seconds=rng.choice([1, 30, 3600])),
                connected_at=None,
                duration=rng.choice([None, 0, 0, 5]),
            )
        if call.line_id and direction == Direction.INCOMING and rng.random() < 0.5:
            leg = CallLeg.objects.create(
                call=call,
                integration=integration,
                leg_id=f"gen-{n}-line",
                direction=direction,
                is_line_leg=True,
            )
            RoutingDecision.objects.create(
                call=call,
                leg=leg,
                decision=rng.choice(RoutingDecision.Decision.values),
                reason=RoutingDecision.Reason.NO_MANAGER,
                received_at=started,
                decided_at=started + timedelta(seconds=rng.choice([0, 1, 2])),
            )
    missed = [c for c in made if c.status == Call.Status.MISSED]
    for i, call in enumerate(missed[:60]):
        assert call.started_at is not None
        task = CallbackTask.objects.create(
            client_number=call.client_number,
            missed_count=1,
            first_missed_at=call.started_at,
            last_missed_at=call.started_at,
            closed_at=call.started_at + timedelta(minutes=7 * i + 1) if i % 4 else None,
            closed_by=operators[i % 3] if i % 4 else None,
        )
        task.missed_calls.set([call])
    return {"operators": operators, "lines": lines, "calls": made}

"""The end of a bench/load.py run: waiting for the queues to drain, counting what the database holds,
the exactly-once check (loadplan.py) and the printed report."""

from __future__ import annotations

import argparse
import asyncio
import bisect
import os
import time
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from _common import Stack
from _measure import percentiles
from loadplan import Ledger, Observed, exactly_once_problems, expected_from

# --- drain and counts -----------------------------------------------------------------------------------


def backlog(redis_url: str) -> dict[str, int]:
    import redis

    from calls.models import Recording
    from integrations.models import NotificationEvent

    client = redis.Redis.from_url(redis_url)
    try:
        queued = int(client.llen("celery"))
    finally:
        client.close()
    return {
        "pending notifications": NotificationEvent.objects.filter(
            status=NotificationEvent.Status.PENDING
        ).count(),
        "recordings waiting": Recording.objects.filter(
            status__in=[Recording.Status.PENDING, Recording.Status.DOWNLOADING]
        ).count(),
        "tasks queued": queued,
    }


async def drain(stack: Stack, timeout: float) -> tuple[float, dict[str, int]]:
    from asgiref.sync import sync_to_async

    started = time.perf_counter()
    await asyncio.sleep(3.0)  # the sandbox's click-to-call scenarios and routing threads finish
    left: dict[str, int] = {}
    while time.perf_counter() - started < timeout:
        left = await sync_to_async(backlog)(stack.redis_url)
        if not any(left.values()):
            break
        await asyncio.sleep(0.5)
    return time.perf_counter() - started, left


def _stored_among(fingerprints: list[str]) -> int:
    from integrations.models import NotificationEvent

    found = 0
    for start in range(0, len(fingerprints), 2000):
        found += NotificationEvent.objects.filter(fingerprint__in=fingerprints[start : start + 2000]).count()
    return found


def observe(ledger: Ledger, record_downloads: int) -> tuple[Observed, Counter[str]]:
    from calls.models import Call, CallEvent, Recording, RoutingDecision
    from integrations.models import NotificationEvent

    decisions = Counter(RoutingDecision.objects.values_list("decision", flat=True))
    acknowledged = ledger.fingerprints(acknowledged=True)
    return Observed(
        acknowledged_missing=len(acknowledged) - _stored_among(acknowledged),
        unanswered_stored=_stored_among(ledger.fingerprints(acknowledged=False)),
        stored=NotificationEvent.objects.count(),
        applied=NotificationEvent.objects.filter(status=NotificationEvent.Status.APPLIED).count(),
        call_events=CallEvent.objects.count(),
        calls=Call.objects.count(),
        recordings=Recording.objects.count(),
        recordings_stored=Recording.objects.filter(status=Recording.Status.STORED).count(),
        record_downloads=record_downloads,
        copies_recognized=ledger.copies_recognized,
        decisions=sum(decisions.values()),
    ), decisions


# --- report ---------------------------------------------------------------------------------------------


def show(label: str, samples: list[float]) -> None:
    text = percentiles(samples) if len(samples) >= 2 else f"{len(samples)} sample(s)"
    print(f"  {label:<34} {text}")


def screen_pops(gen: Any) -> tuple[list[float], int, int]:
    """(ms from the staff trying to the first card, cards lost, cards on another operator's socket)."""
    owners: dict[str, set[int]] = defaultdict(set)
    for spec, _sent in gen.calls:
        owners[spec.client].add(spec.operator)
    pops, lost = [], 0
    for spec, sent in gen.calls:
        shows = gen.sockets[spec.operator].shows.get(spec.client, [])
        at = bisect.bisect_left(shows, sent)
        if at == len(shows):
            lost += 1
        else:
            pops.append((shows[at] - sent) * 1000)
    # Cards of our incoming calls on a socket whose operator none of the calls of that number rang.
    wrong = sum(
        len(times)
        for operator, arrivals in enumerate(gen.sockets)
        for number, times in arrivals.shows.items()
        if number in owners and operator not in owners[number]
    )
    return pops, lost, wrong


def span(expected: tuple[int, int]) -> str:
    low, high = expected
    return str(low) if low == high else f"{low}..{high}"


def fmt_cpu(cpu: dict[str, float]) -> str:
    return ", ".join(f"{role} {value:.0f}" for role, value in cpu.items())


def report(
    args: argparse.Namespace,
    gen: Any,
    load_counts: dict[str, int],
    drains: dict[str, tuple[float, dict[str, int]]],
    state: dict[str, Any],
    sandbox_notes: list[dict[str, Any]],
    observed: Observed,
    decisions: Counter[str],
) -> bool:
    """Print the run's figures and the exactly-once check; True when everything held."""
    drained, left = drains["load"]
    final_drain, final_left = drains["final"]
    delivered = [n for n in sandbox_notes if n.get("status") == 200]
    undelivered = len(sandbox_notes) - len(delivered)
    placed = gen.clicks["placed"]
    expected = expected_from(gen.ledger, sandbox=sandbox_notes, placed=placed)
    problems = exactly_once_problems(expected, observed)

    load = gen.phases["load"]
    print()
    print(
        f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)"
    )
    print(
        f"== load: {load.seconds:.1f} s, {args.calls_per_second:g} calls/s, {args.operators} operators, "
        f"{args.web_processes} web process(es) ({args.ws_processes} ws, {args.balance}), "
        f"worker concurrency {args.worker_concurrency}, "
        + f"{args.appliers} applier(s)"
        + (f" at nice {args.applier_nice}" if args.applier_nice else "")
    )
    print(
        f"  calls                             {load_counts['calls']} incoming ({load_counts['parked']} "
        f"parked), {sum(gen.clicks.values())} click-to-calls"
    )
    load_rate = load.answers / load.seconds if load.seconds else 0.0
    print(
        f"  notifications answered           {load.answers} ({load_rate:.1f}/s), "
        f"{load_counts['copies']} of them second copies"
    )
    show("notify answer", load.answer_ms)
    show("sends behind their time by", gen.lateness_ms)
    pops, lost, wrong = screen_pops(gen)
    show("screen pop: trying -> card", pops)
    print(f"  cards lost / on a wrong socket    {lost} / {wrong}")
    routing = []
    commands: Counter[str] = Counter()
    for command in state["commands"]:
        leg = command["call"]["id"]
        if leg in gen.parked_sent:
            commands[command["command"]] += 1
            routing.append(
                (datetime.fromisoformat(command["time"]).timestamp() - gen.parked_sent[leg]) * 1000
            )
    show("routing: parked trying -> command", routing)
    print(
        f"  commands at the sandbox           {dict(commands)} for {len(gen.parked_sent)} parked calls; "
        f"decisions {dict(decisions)}"
    )
    show("click-to-call answer", gen.click_ms)
    print(f"  clicks                            {dict(gen.clicks)}")
    print(f"  CPU (% of one core)               {fmt_cpu(load.cpu)}")
    per_call = gen.cpu_per_call
    print(
        f"  CPU per call, all processes       {per_call.get('total', 0.0):.3f} core-seconds ("
        + ", ".join(f"{role} {value:.3f}" for role, value in per_call.items() if role != "total")
        + "; the load and its drain, the sandbox and this generator excluded)"
    )
    print(f"== drain: {drained:.1f} s after the load{'' if not any(left.values()) else f', LEFT {left}'}")
    trivial, saturation = gen.phases["trivial"], gen.phases["saturation"]
    t_rate = trivial.answers / trivial.seconds if trivial.seconds else 0.0
    s_rate = saturation.answers / saturation.seconds if saturation.seconds else 0.0
    print(
        f"== trivial GET /ping: {trivial.answers} in {trivial.seconds:.1f} s = {t_rate:.0f}/s, "
        f"{args.saturation_connections} connections"
    )
    show("answer", trivial.answer_ms)
    print(f"  CPU (% of one core)               {fmt_cpu(trivial.cpu)}")
    paused = " (appliers paused: applying waits for the end)" if args.saturation_appliers == "pause" else ""
    print(
        f"== saturation, notify URL{paused}: {saturation.answers} in {saturation.seconds:.1f} s = "
        f"{s_rate:.0f}/s"
    )
    show("answer", saturation.answer_ms)
    print(f"  CPU (% of one core)               {fmt_cpu(saturation.cpu)}")
    ratio = s_rate / t_rate if t_rate else 0.0
    verdict = "met" if ratio >= 0.5 else "NOT met"
    print(f"  notify / trivial throughput       {ratio:.2f} (goal >= 0.5: {verdict})")
    print(
        f"== final drain {final_drain:.1f} s{'' if not any(final_left.values()) else f', LEFT {final_left}'}"
    )
    print("== exactly once")
    print(
        f"  notifications: {gen.ledger.distinct} distinct from here acknowledged, "
        f"{observed.acknowledged_missing} of them not stored; {gen.ledger.unacknowledged} never "
        f"answered 200, {observed.unanswered_stored} of them stored all the same; {len(delivered)} from "
        f"the sandbox (click-to-call; {undelivered} not delivered); stored {observed.stored} (expected "
        f"{span(expected.notifications)}), applied {observed.applied}, "
        f"call events {observed.call_events}"
    )
    print(
        f"  second copies {gen.ledger.copies}, recognized as duplicates {gen.ledger.copies_recognized}; "
        f"first copies wrongly called duplicates {gen.ledger.firsts_called_duplicate}"
    )
    print(
        f"  calls {observed.calls} (expected {span(expected.calls)}); recordings {observed.recordings}, "
        f"stored {observed.recordings_stored} (expected {span(expected.recordings)}), downloads served by "
        f"the sandbox {observed.record_downloads}"
    )
    errors = dict(gen.ledger.errors)
    errors.update({f"click-to-call {kind}": n for kind, n in gen.clicks.items() if kind != "placed"})
    closed = Counter(a.closed for a in gen.sockets if a.closed)
    print(f"  errors by kind: {errors or 'none'}; sockets closed during the run: {dict(closed) or 'none'}")
    for problem in problems:
        print(f"  FAILED {problem}")
    print("EXACTLY-ONCE", "ok" if not problems else "FAILED")
    ok = (
        not problems
        and not errors
        and not closed
        and not lost
        and not wrong
        and gen.ledger.unacknowledged == 0
        and not any(left.values())
        and not any(final_left.values())
    )
    print(
        "CHECK",
        "ok" if ok else "FAILED",
        f"(ratio {ratio:.2f}; errors, unanswered notifications, lost cards and a backlog left fail it too)",
    )
    return ok

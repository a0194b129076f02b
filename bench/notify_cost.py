"""What one request costs the web process, in CPU: the notify URL against a trivial view (GET /ping).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mttcrm REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python bench/notify_cost.py --requests 300 --rounds 5

The throughput ratio of bench/load.py (notify URL ÷ trivial view, both at full speed) is a ratio of costs
on a saturated machine, and on a shared 2-core machine it moves with whatever else runs. This measures
the costs themselves: one Daphne process of the production stack (bench/_common.py `bench_stack`,
`DEBUG=false`, Redis channel layer, access log on), one keep-alive connection, requests one after the
other, and the process's own CPU time (user + system, /proc) per request — so other load on the machine
hardly matters. Rounds alternate ping and notify blocks; the median of the rounds is reported.

PostgreSQL's CPU per notification (its server and backends, storing and applying, read from /proc) is
reported too: the machine's PostgreSQL, so nothing else may use it meanwhile.

Both places a notification can be applied are measured, each on its own server: `--apply-in applier`
(the web process stores and wakes the applier; the applier's CPU is reported apart; by the fast lane
unless `--fast-lane off`) and `request` (the web process applies before answering). Each notification
is a new one (the six of an answered incoming call, in order), as MTT sends them. At the end every
notification must be stored and applied once.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import bench_stack, cpu_seconds, service_cpu, service_cpu_used  # noqa: E402


def measure(apply_in: str, count: int, rounds: int, fast_lane: str = "on") -> dict[str, float]:
    env = {"LOG_LEVEL": "INFO", "NOTIFY_APPLY_IN": apply_in, "NOTIFY_FAST_LANE": str(fast_lane == "on")}
    with bench_stack(suffix=f"_bench_cost_{apply_in}", env=env, metrics=True) as stack:
        from django.db.models import Count

        from calls.models import CallEvent
        from integrations.models import ExternalNumber, Integration, NotificationEvent, Workplace
        from tests.calls import payloads

        integration = Integration.objects.create(
            name="bench", client_id="c", client_secret="s", status=Integration.Status.CONNECTED
        )
        Workplace.objects.create(integration=integration, sip_id=payloads.WP_INCOMING, name="Оператор")
        ExternalNumber.objects.create(integration=integration, number=payloads.LINE)
        if apply_in == "applier":
            stack.start_applier(1)  # first: the web process's /healthz asks for it
        web = stack.start_web(1, verbosity=0)
        server = web.procs[0].pid
        appliers = [p.pid for p in stack.appliers]
        url = web.url + integration.notify_path
        bodies = iter(
            json.dumps(body, ensure_ascii=False).encode()
            for _ in range(count * (rounds + 1))
            for body in payloads.incoming_answered(base=uuid.uuid4().hex + "_00015ED635780FC7")
        )
        session = requests.Session()
        headers = {"Content-Type": "application/json"}

        def notify_block(n: int) -> None:
            for _ in range(n):
                answer = session.post(url, data=next(bodies), headers=headers, timeout=30)
                assert answer.status_code == 200, answer.text

        def ping_block(n: int) -> None:
            for _ in range(n):
                assert session.get(web.url + "/ping", timeout=30).status_code == 200

        ping_block(count)  # warm up both paths
        notify_block(count)
        pings, notes, applier_cpu, wall, database = [], [], [], [], []
        for _ in range(rounds):
            before = cpu_seconds(server)
            ping_block(count)
            middle = cpu_seconds(server)
            applier_before = sum(cpu_seconds(pid) for pid in appliers)
            postgres_before = service_cpu("postgres")
            started = time.perf_counter()
            notify_block(count)
            wall.append((time.perf_counter() - started) / count * 1000)
            after = cpu_seconds(server)
            pings.append((middle - before) / count * 1000)
            notes.append((after - middle) / count * 1000)
            if appliers:
                # Let it finish this block, then count what applying it cost.
                deadline = time.monotonic() + 60
                while (
                    NotificationEvent.objects.filter(status=NotificationEvent.Status.PENDING).exists()
                    and time.monotonic() < deadline
                ):
                    time.sleep(0.1)
                applier_cpu.append(
                    (sum(cpu_seconds(pid) for pid in appliers) - applier_before) / count * 1000
                )
            # Storing and applying, whichever process did it: PostgreSQL's own share of a notification.
            database.append(service_cpu_used(postgres_before, service_cpu("postgres")) / count * 1000)
        deadline = time.monotonic() + 60
        while NotificationEvent.objects.filter(status="pending").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        stored = NotificationEvent.objects.count()
        applied = NotificationEvent.objects.filter(status="applied").count()
        doubled = CallEvent.objects.values("notification_id").annotate(n=Count("pk")).filter(n__gt=1).count()
        events = CallEvent.objects.count()
        ok = stored == applied == events == count * (rounds + 1) and doubled == 0
        print(
            f"  {apply_in:8}: stored {stored}, applied {applied}, call events {events}, doubled {doubled}"
            f" -> {'ok' if ok else 'FAILED'}"
        )
        if not ok:
            stack.keep_logs = True
        return {
            "ok": float(ok),
            "ping": statistics.median(pings),
            "notify": statistics.median(notes),
            "notify_wall": statistics.median(wall),
            "applier": statistics.median(applier_cpu) if applier_cpu else 0.0,
            "postgres": statistics.median(database),
            "spread": max(notes) - min(notes),
        }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300, help="requests per block")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--apply-in", choices=["applier", "request", "both"], default="both")
    parser.add_argument(
        "--fast-lane",
        choices=["on", "off"],
        default="on",
        help="NOTIFY_FAST_LANE (applier mode): off sends every notification through the notify view",
    )
    args = parser.parse_args()
    if args.apply_in == "both":
        # One process per mode: Django's settings (the bench database among them) are set up once a process.
        codes = [
            subprocess.run(
                [sys.executable, __file__, "--requests", str(args.requests), "--rounds", str(args.rounds),
                 "--apply-in", mode, "--fast-lane", args.fast_lane],
                check=False,
            ).returncode
            for mode in ("applier", "request")
        ]  # fmt: skip
        return max(codes)
    r = measure(args.apply_in, args.requests, args.rounds, args.fast_lane)
    extra = f"; the applier {r['applier']:.2f} ms per notification" if args.apply_in == "applier" else ""
    lane = f", NOTIFY_FAST_LANE={args.fast_lane}" if args.apply_in == "applier" else ""
    print(
        f"CPU of the web process per request (median of {args.rounds} rounds of {args.requests}): "
        f"NOTIFY_APPLY_IN={args.apply_in}{lane}: GET /ping {r['ping']:.2f} ms, notify {r['notify']:.2f} ms "
        f"(spread {r['spread']:.2f}), answered in {r['notify_wall']:.2f} ms{extra}; PostgreSQL "
        f"{r['postgres']:.2f} ms per notification; "
        f"ping/notify = {r['ping'] / r['notify']:.2f}",
        flush=True,
    )
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""What one request costs the web process, in CPU: the notify URL against a trivial view (GET /ping).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mttcrm REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python bench/notify_cost.py --requests 300 --rounds 5

This measures what a request costs the web server on the same stock server (gunicorn, mttcrm/gunicorn.py,
one worker, production settings: bench/_common.py `bench_stack`, `DEBUG=false`, Redis, access log on): one
keep-alive connection, requests one after the other, and the server's own CPU time (master and worker, user
+ system, /proc) per request — so other load on the machine hardly matters. Rounds alternate ping and
notify blocks; the median of the rounds is reported.

The web process only stores a notification and answers; the applier process applies it (its CPU is
reported apart, per notification), and PostgreSQL's CPU per notification (its server and backends, storing
and applying, read from /proc) too: the machine's PostgreSQL, so nothing else may use it meanwhile. Each
notification is a new one (the six of an answered incoming call, in order), as MTT sends them. At the end
every notification must be stored and applied once.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import bench_stack  # noqa: E402
from _measure import cpu_seconds, service_cpu, service_cpu_used  # noqa: E402


def measure(count: int, rounds: int) -> dict[str, float]:
    env = {"LOG_LEVEL": "INFO"}
    with bench_stack(suffix="_bench_cost", env=env, metrics=True) as stack:
        from django.db.models import Count

        from calls.models import CallEvent
        from integrations.models import ExternalNumber, Integration, NotificationEvent, Workplace
        from tests.calls import payloads

        integration = Integration.objects.create(
            name="bench", client_id="c", client_secret="s", status=Integration.Status.CONNECTED
        )
        Workplace.objects.create(integration=integration, sip_id=payloads.WP_INCOMING, name="Оператор")
        ExternalNumber.objects.create(integration=integration, number=payloads.LINE)
        stack.start_applier(1)
        web = stack.start_web(1)
        servers = stack.processes()["web"]  # gunicorn's master and its worker
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
            before = sum(cpu_seconds(pid) for pid in servers)
            ping_block(count)
            middle = sum(cpu_seconds(pid) for pid in servers)
            applier_before = sum(cpu_seconds(pid) for pid in appliers)
            postgres_before = service_cpu("postgres")
            started = time.perf_counter()
            notify_block(count)
            wall.append((time.perf_counter() - started) / count * 1000)
            after = sum(cpu_seconds(pid) for pid in servers)
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
            f"  stored {stored}, applied {applied}, call events {events}, doubled {doubled}"
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
    args = parser.parse_args()
    r = measure(args.requests, args.rounds)
    print(
        f"CPU of the web server per request (gunicorn, median of {args.rounds} rounds of {args.requests}): "
        f"GET /ping {r['ping']:.2f} ms, notify {r['notify']:.2f} ms (spread {r['spread']:.2f}), answered in "
        f"{r['notify_wall']:.2f} ms; the applier {r['applier']:.2f} ms per notification; PostgreSQL "
        f"{r['postgres']:.2f} ms per notification; notify / ping = {r['notify'] / r['ping']:.2f} (goal <= 2)",
        flush=True,
    )
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

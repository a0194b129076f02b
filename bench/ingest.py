"""Ingest benchmark: notifications per second through the real notify URL, and its answer times.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mttcrm \\
        .venv/bin/python bench/ingest.py --calls 500 --concurrency 8

It creates `<that name>_bench_ingest` (dropped afterwards), starts Daphne on it in a separate process
(bench/_common.py `bench_stack`: `DEBUG=false`, production settings),
and POSTs each call's six guide-shaped notifications (incoming answered: the parked leg and the
employee's leg) from `--concurrency` threads, each call's notifications in order, as MTT would. Every
answer is timed from before the request leaves to the last byte received. At the end it checks that
every notification was stored once and applied, and that each call came out answered.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import bench_stack  # noqa: E402
from _measure import percentiles  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    with bench_stack(suffix="_bench_ingest", needs_redis=False, keep=args.keep) as stack:
        from calls.models import Call
        from integrations.models import ExternalNumber, Integration, NotificationEvent, Workplace
        from tests.calls import payloads

        integration = Integration.objects.create(
            name="bench", client_id="c", client_secret="s", status=Integration.Status.CONNECTED
        )
        Workplace.objects.create(integration=integration, sip_id=payloads.WP_INCOMING, name="Оператор")
        ExternalNumber.objects.create(integration=integration, number=payloads.LINE)

        stack.start_applier(1)  # the one process that applies what the notify URL stores
        web = stack.start_web(1)
        notify_url = web.url + integration.notify_path
        calls = [
            [
                json.dumps(b, ensure_ascii=False).encode()
                for b in payloads.incoming_answered(base=f"bench{i:06d}", client=f"+7921{i:07d}")
            ]
            for i in range(args.calls)
        ]
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        local = threading.local()

        def post_call(bodies: list[bytes]) -> None:
            import requests

            session = getattr(local, "session", None) or requests.Session()
            local.session = session
            for body in bodies:
                started = time.perf_counter()
                response = session.post(
                    notify_url, data=body, headers={"Content-Type": "application/json"}, timeout=30
                )
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(elapsed)
                    if response.status_code != 200:
                        errors.append(f"{response.status_code} {response.text[:100]}")

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            list(pool.map(post_call, calls))
        wall = time.perf_counter() - started
        sent = sum(len(c) for c in calls)

        stored = NotificationEvent.objects.filter(integration=integration).count()
        applied = NotificationEvent.objects.filter(integration=integration, status="applied").count()
        answered = Call.objects.filter(integration=integration, status=Call.Status.ANSWERED).count()
        print(f"notifications sent     {sent} ({args.calls} calls x 6), concurrency {args.concurrency}")
        print(f"wall time              {wall:.1f} s")
        print(f"throughput             {sent / wall:.0f} notifications/s")
        print(f"answer time            {percentiles(latencies)}")
        print(f"errors                 {len(errors)} {errors[:3]}")
        print(f"stored / applied       {stored} / {applied}")
        print(f"calls answered         {answered} of {args.calls}")
        ok = not errors and stored == sent and applied == sent and answered == args.calls
        print("CHECK", "ok" if ok else "FAILED")
        stack.keep_logs = not ok
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""What applying one notification costs, in CPU: the applier's own Python and PostgreSQL's share.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mttcrm REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python bench/apply_cost.py --calls 300 [--profile 40]

No servers: this process stores the notifications of ``--calls`` answered incoming calls (six each, the
guide's shapes, a new client number per call, an operator at the workplace), then applies them all as the
applier process does (``integrations.applier.applier_drain``, production settings, pushes through Redis).
It prints the applier's CPU (user + system of this process) and PostgreSQL's (its processes, /proc) per
notification, and the queries per notification. ``--profile N`` adds the N functions with most CPU of
their own (cProfile timed by process time). Nothing else may use the machine's PostgreSQL meanwhile.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import bench_stack  # noqa: E402
from _measure import service_cpu, service_cpu_used  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--profile", type=int, default=0, help="print the N costliest functions")
    parser.add_argument("--spy-pause", type=float, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    with bench_stack(suffix="_bench_apply", env={"LOG_LEVEL": "WARNING"}):
        from django.contrib.auth import get_user_model
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from calls.models import CallEvent
        from integrations.applier import applier_drain
        from integrations.inbox import notification_store
        from integrations.models import ExternalNumber, Integration, NotificationEvent, Workplace
        from integrations.mtt.notifications import parse_body
        from tests.calls import payloads

        integration = Integration.objects.create(
            name="bench", client_id="c", client_secret="s", status=Integration.Status.CONNECTED
        )
        operator = get_user_model().objects.create_user("operator", first_name="Анна", last_name="Иванова")
        Workplace.objects.create(
            integration=integration, sip_id=payloads.WP_INCOMING, name="Оператор", user=operator
        )
        ExternalNumber.objects.create(integration=integration, number=payloads.LINE)

        def store(calls: int, first: int) -> int:
            count = 0
            for i in range(first, first + calls):
                base = uuid.uuid4().hex + "_00015ED635780FC7"
                for body in payloads.incoming_answered(base=base, client=f"7812{i:07d}"):
                    envelope = parse_body(json.dumps(body, ensure_ascii=False).encode())
                    notification_store(integration_id=integration.pk, envelope=envelope)
                    count += 1
            return count

        store(20, 0)  # warm up: caches, prepared statements
        applier_drain()
        count = store(min(args.calls, 200), 1000)
        with CaptureQueriesContext(connection) as queries:
            applier_drain()
        queries_per = (len(queries) - 2) / count
        if args.spy_pause:
            time.sleep(args.spy_pause)
        count = store(args.calls, 100_000)
        profile = cProfile.Profile(time.process_time) if args.profile else None
        postgres = service_cpu("postgres")
        started = time.process_time()
        if profile:
            profile.enable()
        result = applier_drain()
        if profile:
            profile.disable()
        applier = (time.process_time() - started) / count * 1000
        database = service_cpu_used(postgres, service_cpu("postgres")) / count * 1000
        events = CallEvent.objects.count()
        ok = result.applied == count and events == NotificationEvent.objects.count()
        print(
            f"applied {result.applied} of {count} notifications ({'ok' if ok else 'FAILED'}): the applier "
            f"{applier:.2f} ms CPU per notification, PostgreSQL {database:.2f} ms, "
            f"{queries_per:.2f} queries per notification",
            flush=True,
        )
        if profile:
            text = io.StringIO()
            stats = pstats.Stats(profile, stream=text)
            stats.sort_stats("tottime").print_stats(args.profile)
            stats.sort_stats("cumulative").print_stats(
                r"/work/main/(calls|integrations|contacts|webhooks)/", args.profile
            )
            print(text.getvalue())
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

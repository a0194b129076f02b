"""Faults (issue 8): Redis and PostgreSQL stopped for 30 s, the Celery worker SIGKILLed, MTT failing for 60 s.

    .venv/bin/python bench/faults.py [--only redis,postgres,worker,mtt] [--outage 30] [--mtt-fault 60]

Everything runs on PRIVATE servers this script starts and stops (tests/faults/servers.py): its own
PostgreSQL cluster and Redis on free ports, never the machine's shared 5432/6379. Each scenario gets a
fresh database, the real processes (gunicorn, Daphne, an applier, a Celery worker and beat — `make run`'s
processes, mttcrm/devrun.py, on PostgreSQL + Redis like production), the MTT sandbox playing calls at a
small steady rate, and the demo data (`mtt demo`: a real OAuth round trip with the sandbox, the directory,
three operators).

1. redis — calls for 10 s, Redis stopped for --outage s, calls on for 20 s more. An operator's workspace
   is played by a WebSocket client behaving like static/js/live/connection.js (reconnect with backoff and
   jitter; on every (re)connect GET /calls/active.json).
2. postgres — the same timeline with PostgreSQL stopped; a logged-in page is requested every second.
3. worker — a worker with slow downloads: its pool SIGKILLed mid-download, then the whole worker SIGKILLed
   mid-download and started again. (The applier killed mid-apply: tests/faults/test_applier_killed.py.)
4. mtt — parked calls routed to personal managers, directory syncs, token refresh and recordings while
   the sandbox answers 500s, then 429s (Retry-After 5), then hangs past MTT_READ_TIMEOUT, for --mtt-fault s.

It prints one report per scenario: sent / stored / applied / lost / duplicated / late and recovery times.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faultdown import scenario_postgres, scenario_redis  # noqa: E402
from faultmtt import scenario_mtt  # noqa: E402
from faultstack import BENCH_ENV, log, servers  # noqa: E402
from faultworker import scenario_worker  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="redis,postgres,worker,mtt")
    parser.add_argument("--outage", type=float, default=30.0, help="seconds Redis / PostgreSQL stay down")
    parser.add_argument("--mtt-fault", type=float, default=60.0, help="seconds MTT fails")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs) afterwards")
    parser.add_argument(
        "--apply-in",
        choices=["request", "applier"],
        default="applier",
        help="kept for old command lines: the appliers are the one way to apply (request is refused)",
    )
    args = parser.parse_args()
    if args.apply_in != "applier":
        sys.exit("--apply-in request no longer exists: the applier processes are the one way to apply")
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    work = Path(tempfile.mkdtemp(prefix="mttcrm-faults-"))
    log(f"work folder {work}; bench settings {json.dumps(BENCH_ENV)}")
    results: dict[str, Any] = {}
    load_before = os.getloadavg()[0]
    with servers() as (pg, redis):
        for name in chosen:
            log(f"== {name}")
            started = time.monotonic()
            if name == "redis":
                results[name] = scenario_redis(work, pg, redis, args.outage)
            elif name == "postgres":
                results[name] = scenario_postgres(work, pg, redis, args.outage)
            elif name == "worker":
                results[name] = scenario_worker(work, pg, redis)
            elif name == "mtt":
                results[name] = scenario_mtt(work, pg, redis, args.mtt_fault)
            else:
                sys.exit(f"unknown scenario {name!r}")
            results[name]["scenario_took_s"] = round(time.monotonic() - started, 1)
            print(json.dumps({name: results[name]}, indent=2, default=str), flush=True)
    print(f"\n== report (load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f})")
    print(json.dumps(results, indent=2, default=str))
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    else:
        log(f"logs kept in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

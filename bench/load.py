"""Full-stack load: the production stack driven from another process, as MTT and 200 operators would.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mttcrm REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python bench/load.py --duration 300 --calls-per-second 20 --operators 200 --web-processes 3

The stack (bench/_common.py, `bench_stack`): the same kinds of process as `make run` and docker compose —
a fresh PostgreSQL database and Redis database, gunicorn with `--web-processes` workers (`DEBUG=false`,
production settings: Django's pool, Redis channel layer, limiter and broker, Prometheus multiprocess
counters, INFO logs to a file), `--ws-processes` Daphne processes for the sockets (one port, see
`--balance`), `--appliers` applier processes, a Celery worker with beat on the Redis broker, and the MTT
sandbox in its own process (the API for routing commands and makeCall, the recordings). This process is the
load generator (asyncio + aiohttp: a pooled HTTP client and one WebSocket per operator); it creates the
data first with the ORM.

Phases, all on the same server processes:

1. load (`--duration`): incoming calls at `--calls-per-second`, each its full notification sequence in
   order and in time (loadplan.py: answered, or missed for `--missed-share`; `--parked-share` to a parked
   number, decided by the CRM and commanded to the sandbox), every `--duplicate-every`-th notification
   sent twice; click-to-calls at `--click-to-call-per-second` (POST /calls/dial/ as the operator's page
   does; the sandbox then plays the call's notifications and its recording); every operator's
   WebSocket open and acknowledging its cards like the page. Answered calls end with `recorded`: the
   worker downloads each recording from the sandbox.
2. drain: until no notification is pending, no recording waits and the Celery queue is empty.
3. trivial: GET /ping (no database, no Redis) from `--saturation-connections` connections at full speed
   for `--saturation-seconds`.
4. saturation: the notify URL at full speed from as many connections for as long (answered calls
   without recordings, duplicates included): its maximum throughput, and its ratio to the trivial one.
   The appliers apply meanwhile, on the same cores; `--saturation-appliers pause` stops them for the
   phase (they apply the backlog after it): the URL's own throughput.
5. exactly-once, by fingerprint: every notification acknowledged (a 200 to one of its copies) stored once
   and applied once (one CallEvent each); one that never got a 200 (overload: MTT would send it again)
   stored at most once; one Call per call, every duplicate recognized, every recording stored once,
   one routing decision per parked call. Exit status 1 when that fails.

Measured: notify answer time (request written -> last byte read) and throughput; screen pop (the staff
leg's `trying` leaves -> the operator's socket receives the card); routing (the parked leg's `trying`
leaves -> the sandbox receives transferCall/terminateCall: wall clocks of two processes on one machine);
click-to-call answer time; recordings stored; errors by kind; CPU of every process and of the box; CPU per
call: every process of the stack (web, ws, appliers, worker, PostgreSQL, Redis; not the sandbox, which
stands for MTT, nor this generator) from the start of the load until its backlog is applied, per call.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections import Counter
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import SandboxProcess, Stack, WebGroup, bench_stack  # noqa: E402
from _measure import CpuMeter  # noqa: E402
from loadcheck import drain, observe, report  # noqa: E402
from loaddata import World, setup_data  # noqa: E402
from loadgen import Generator, http_session  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--duration", type=float, default=300.0, help="seconds of the load phase")
    add("--calls-per-second", type=float, default=20.0, help="incoming calls started per second")
    add("--operators", type=int, default=200, help="operators, each with a workplace and a WebSocket")
    add("--web-processes", type=int, default=3, help="gunicorn workers (pages, the notify URL)")
    add("--ws-processes", type=int, default=1, help="Daphne processes (the operators' sockets)")
    add(
        "--balance",
        choices=["reuseport", "shared", "ports"],
        default="reuseport",
        help="how the Daphne processes share the sockets (bench/_common.py)",
    )
    add("--worker-concurrency", type=int, default=2, help="Celery worker processes (prefork)")
    add(
        "--apply-in",
        choices=["applier", "request"],
        default="applier",
        help="kept for old command lines: the appliers are the one way to apply (request is refused)",
    )
    add("--appliers", type=int, default=2, help="applier processes")
    add(
        "--applier-nice",
        type=int,
        default=0,
        help="run the appliers at this nice level (0: as the web processes; 10: the web processes first)",
    )
    add("--missed-share", type=float, default=0.2, help="share of incoming calls nobody answers")
    add("--parked-share", type=float, default=0.05, help="share of incoming calls to a parked number")
    add("--duplicate-every", type=int, default=10, help="every N-th notification is sent twice (0: none)")
    add("--click-to-call-per-second", type=float, default=1.0)
    add("--talk", type=float, default=3.0, help="seconds from connected to finished")
    add("--ring", type=float, default=3.0, help="seconds a missed call rings")
    add("--park-wait", type=float, default=0.5, help="seconds between a parked leg and the staff leg")
    add(
        "--step-delay",
        type=float,
        default=0.3,
        help="the sandbox's pause between click-to-call notifications",
    )
    add("--connections", type=int, default=100, help="HTTP connections of the load phase at most")
    add("--saturation-seconds", type=float, default=20.0, help="length of the trivial and saturation phases")
    add("--saturation-connections", type=int, default=16, help="concurrent requests in those phases")
    add(
        "--saturation-appliers",
        choices=["run", "pause"],
        default="run",
        help="during the saturation phase the appliers apply as usual (run), or are stopped (SIGSTOP) and "
        "apply the backlog after it (pause): the notify URL's own throughput, apart from applying",
    )
    add("--drain-timeout", type=float, default=300.0)
    add("--seed", type=int, default=1)
    add("--keep", action="store_true", help="keep the database and the server logs")
    return parser.parse_args()


async def run(
    args: argparse.Namespace, stack: Stack, web: WebGroup, ws: WebGroup, world: World, sandbox: SandboxProcess
) -> int:
    gen = Generator(args, web, ws, world, sandbox.url)
    meter = CpuMeter(stack)
    wsession = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar()
    )
    readers = []
    for start in range(0, len(world.sessions), 50):
        events = []
        for operator in range(start, min(start + 50, len(world.sessions))):
            opened = asyncio.Event()
            events.append(opened)
            readers.append(asyncio.create_task(gen.socket(wsession, operator, opened)))
        await asyncio.gather(*(e.wait() for e in events))
    await asyncio.sleep(1.0)
    refused = [a.closed for a in gen.sockets if a.closed]
    print(f"sockets open: {len(gen.sockets) - len(refused)} of {len(gen.sockets)}", flush=True)
    if refused:
        print(f"  refused: {Counter(refused)}")
        return 1

    async with http_session(args.connections) as http:
        for _ in range(20 * len(gen.urls)):  # warm-up: every process has served a request
            async with http.get(gen.url() + "/ping") as response:
                await response.read()
        print(f"load: {args.duration:.0f} s ...", flush=True)
        meter.start()
        whole = CpuMeter(stack)  # the load and the drain of its backlog: what the calls cost in all
        whole.start()
        await gen.load(http)
        gen.phases["load"].cpu = meter.stop()
    load_counts = {
        "calls": gen.ledger.calls,
        "parked": gen.ledger.count(kind="parked"),
        "copies": gen.ledger.copies,
    }
    print("drain ...", flush=True)
    drained, left = await drain(stack, args.drain_timeout)
    gen.cpu_per_call = whole.per_call(load_counts["calls"] + sum(gen.clicks.values()))
    for name in ("trivial", "saturation"):
        print(f"{name}: {args.saturation_seconds:.0f} s ...", flush=True)
        paused = name == "saturation" and args.saturation_appliers == "pause"
        async with http_session(args.saturation_connections) as http:
            meter.start()
            if paused:
                stack.signal_appliers(signal.SIGSTOP)
            try:
                await getattr(gen, name)(http)
            finally:
                if paused:
                    stack.signal_appliers(signal.SIGCONT)
            gen.phases[name].cpu = meter.stop()
    final_drain, final_left = await drain(stack, args.drain_timeout)
    await asyncio.sleep(1.0)
    for task in readers:
        task.cancel()
    await wsession.close()

    from asgiref.sync import sync_to_async

    state = sandbox.control("GET", "state")
    sandbox_notes = sandbox.control("GET", "notifications")
    observed, decisions = await sync_to_async(observe)(gen.ledger, len(state["record_downloads"]))
    drains = {"load": (drained, left), "final": (final_drain, final_left)}
    ok = report(args, gen, load_counts, drains, state, sandbox_notes, observed, decisions)
    return 0 if ok else 1


def main() -> int:
    args = parse_args()
    if args.apply_in != "applier":
        sys.exit("--apply-in request no longer exists: the applier processes are the one way to apply")
    env = {
        "LOG_LEVEL": "INFO",  # production's default: the access log and the app's lines, to files
        "MTT_ALLOW_INSECURE_OAUTH": "true",  # the sandbox speaks plain http
        "RECORDINGS_ALLOW_SANDBOX": "true",
        "RECORDINGS_ALLOW_HTTP": "true",
    }
    with bench_stack(suffix="_bench_load", env=env, metrics=True, keep=args.keep) as stack:
        sandbox = stack.start_sandbox(step_delay=args.step_delay)
        world = setup_data(sandbox, args.operators)
        from django.db import connections

        connections.close_all()
        stack.start_applier(args.appliers, nice=args.applier_nice)
        web = stack.start_web(args.web_processes)
        ws = stack.start_ws(args.ws_processes, balance=args.balance)
        sandbox.control(
            "POST", "config", {"notify_url": web.url + world.notify_path, "auto_click_to_call": True}
        )
        stack.start_worker(args.worker_concurrency)
        code = asyncio.run(run(args, stack, web, ws, world, sandbox))
        stack.keep_logs = code != 0
        return code


if __name__ == "__main__":
    sys.exit(main())

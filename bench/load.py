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
import json
import random
import secrets
import signal
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import SandboxProcess, Stack, WebGroup, bench_stack  # noqa: E402
from _measure import CpuMeter  # noqa: E402
from loadcheck import drain, observe, report  # noqa: E402
from loadplan import (  # noqa: E402
    LINE,
    NO_WAIT,
    PARK_LINE,
    CallSpec,
    Ledger,
    Note,
    Timing,
    build_call,
    call_spec,
    known_client,
    operator_sip,
    utc_now,
)

CSRF = secrets.token_hex(16)  # 32 characters: a valid CSRF secret, sent as cookie and header alike


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


# --- data ----------------------------------------------------------------------------------------------


@dataclass
class World:
    notify_path: str
    sessions: list[str]  # session key of each operator


def setup_data(sandbox: SandboxProcess, operators: int) -> World:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils import timezone

    from contacts.models import Contact
    from contacts.services import contact_add_number
    from integrations.models import ExternalNumber, Integration, Workplace

    # The sandbox's directory: makeCall accepts only workplaces it knows.
    sandbox.control(
        "POST",
        "directory",
        {
            "workplaces": [{"workplace": operator_sip(i), "name": f"Оператор {i}"} for i in range(operators)],
            "terminals": [],
            "numbers": [{"number": LINE, "type": None}, {"number": PARK_LINE, "type": None}],
        },
    )
    integration = Integration.objects.create(
        name="bench",
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        oauth_url=sandbox.url,
        api_url=sandbox.url,
        status=Integration.Status.CONNECTED,
        last_sync_at=timezone.now(),
    )
    tokens = sandbox.tokens(redirect_uri=f"http://127.0.0.1{integration.notify_path}")
    now = timezone.now()
    integration.access_token = tokens["access_token"]
    integration.access_token_expires_at = now + timezone.timedelta(seconds=tokens["expires_in"])
    integration.refresh_token = tokens["refresh_token"]
    integration.refresh_token_expires_at = now + timezone.timedelta(days=3)
    integration.save()
    ExternalNumber.objects.create(integration=integration, number=LINE)
    ExternalNumber.objects.create(integration=integration, number=PARK_LINE, is_parking=True)
    users = get_user_model().objects
    sessions = []
    for i in range(operators):
        user = users.create_user(f"op{i:04d}", first_name="Оператор", last_name=str(i))
        Workplace.objects.create(
            integration=integration, sip_id=operator_sip(i), name=f"Оператор {i}", user=user
        )
        # The operator's own client: a parked call from this number is transferred to them when free.
        contact = Contact.objects.create(name=f"Клиент {i}", personal_manager=user)
        contact_add_number(contact=contact, number=known_client(i))
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        sessions.append(session.session_key or "")
    return World(notify_path=integration.notify_path, sessions=sessions)


# --- the load generator ---------------------------------------------------------------------------------


@dataclass
class Arrivals:
    """call.show arrivals on one operator's socket: number -> perf_counter times, in order."""

    shows: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    closed: str = ""


@dataclass
class Phase:
    answer_ms: list[float] = field(default_factory=list)
    answers: int = 0
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)


class Generator:
    def __init__(
        self, args: argparse.Namespace, web: WebGroup, ws: WebGroup, world: World, sandbox_url: str
    ) -> None:
        self.args = args
        self.urls = web.urls
        self.ws_urls = ws.ws_urls
        self.turn = 0
        self.world = world
        self.sandbox_url = sandbox_url
        self.ledger = Ledger()
        self.seq = 0
        self.sockets: list[Arrivals] = [Arrivals() for _ in world.sessions]
        self.calls: list[tuple[CallSpec, float]] = []  # load-phase calls, with when the staff trying left
        self.parked_sent: dict[str, float] = {}  # parked leg -> wall time its trying left
        self.lateness_ms: list[float] = []
        self.click_ms: list[float] = []
        self.clicks: Counter[str] = Counter()
        self.phases: dict[str, Phase] = defaultdict(Phase)
        self.cpu_per_call: dict[str, float] = {}

    def url(self) -> str:
        self.turn += 1
        return self.urls[self.turn % len(self.urls)]

    # --- notify URL ---

    async def post(self, http: aiohttp.ClientSession, body: bytes) -> tuple[int, bool | None, float]:
        """(status, the answer's "duplicate", ms); status 0 when no answer came."""
        started = time.perf_counter()
        try:
            async with http.post(
                self.url() + self.world.notify_path, data=body, headers={"Content-Type": "application/json"}
            ) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.ledger.error(f"notify {type(exc).__name__}")
            return 0, None, (time.perf_counter() - started) * 1000
        elapsed = (time.perf_counter() - started) * 1000
        duplicate = None
        if status == 200:
            try:
                duplicate = bool(json.loads(raw).get("duplicate"))
            except ValueError:
                self.ledger.error("notify answer not JSON")
        return status, duplicate, elapsed

    async def send(
        self, http: aiohttp.ClientSession, note: Note, phase: str, *, parked: bool = False
    ) -> None:
        for copy in (False, True) if note.duplicate else (False,):
            status, duplicate, ms = await self.post(http, note.body)
            self.ledger.answer(note, copy=copy, status=status, duplicate=duplicate, parked=parked)
            stats = self.phases[phase]
            stats.answer_ms.append(ms)
            stats.answers += 1

    async def play(
        self, http: aiohttp.ClientSession, spec: CallSpec, notes: list[Note], started: float
    ) -> None:
        for note in notes:
            due = started + note.at
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            # Behind its time: the previous notifications of the call took long to be answered.
            self.lateness_ms.append(max(0.0, time.perf_counter() - due) * 1000)
            if note.kind == "trying":
                self.calls.append((spec, time.perf_counter()))
            if note.kind == "line-trying" and spec.parked:
                self.parked_sent[spec.line_leg] = time.time()
            await self.send(http, note, "load", parked=note.kind == "line-trying" and spec.parked)

    def next_call(
        self, index: int, *, prefix: str, timing: Timing, parked_share: float, record: bool
    ) -> tuple[CallSpec, list[Note]]:
        spec = call_spec(
            index,
            operators=len(self.world.sessions),
            missed_share=self.args.missed_share,
            parked_share=parked_share,
            prefix=prefix,
        )
        notes = build_call(
            spec,
            start=utc_now(),
            first_seq=self.seq,
            duplicate_every=self.args.duplicate_every,
            timing=timing,
            record_base=self.sandbox_url if record else None,
        )
        self.seq += len(notes)
        self.ledger.calls += 1
        return spec, notes

    # --- click-to-call ---

    async def click(self, http: aiohttp.ClientSession, k: int, operator: int) -> None:
        base = self.url()
        headers = {
            "Cookie": f"sessionid={self.world.sessions[operator]}; csrftoken={CSRF}",
            "X-CSRFToken": CSRF,
            "Origin": base,
            "Content-Type": "application/json",
        }
        body = json.dumps({"number": f"+7925{k:07d}"}).encode()
        started = time.perf_counter()
        try:
            async with http.post(base + "/calls/dial/", data=body, headers=headers) as response:
                answer = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self.clicks[f"error {type(exc).__name__}"] += 1
            return
        self.click_ms.append((time.perf_counter() - started) * 1000)
        self.clicks["placed" if answer.get("ok") else f"HTTP {status} {answer.get('code')}"] += 1

    # --- WebSockets ---

    async def socket(self, wsession: aiohttp.ClientSession, operator: int, opened: asyncio.Event) -> None:
        base = self.ws_urls[operator % len(self.ws_urls)]
        arrivals = self.sockets[operator]
        # The page's origin: the site (gunicorn's address here, SITE_URL), not Daphne's.
        headers = {"Origin": self.urls[0], "Cookie": f"sessionid={self.world.sessions[operator]}"}
        try:
            async with wsession.ws_connect(
                base + "/ws/workspace/", headers=headers, autoping=True, heartbeat=None
            ) as ws:
                opened.set()
                async for message in ws:
                    arrived = time.perf_counter()
                    if message.type != aiohttp.WSMsgType.TEXT:
                        continue
                    data = json.loads(message.data)
                    call = data.get("call") or {}
                    number = str(call.get("number") or "")
                    if data.get("type") == "call.show":
                        arrivals.shows[number].append(arrived)
                        # What the page does once the card is on screen (the server's screen-pop metric).
                        await ws.send_json(
                            {"type": "ack", "id": call.get("id"), "version": call.get("version")}
                        )
                arrivals.closed = f"closed {ws.close_code}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            arrivals.closed = type(exc).__name__
        finally:
            opened.set()

    # --- phases ---

    async def load(self, http: aiohttp.ClientSession) -> None:
        args = self.args
        timing = Timing(park_wait=args.park_wait, talk=args.talk, ring=args.ring)
        rng = random.Random(args.seed)
        total = int(args.duration * args.calls_per_second)
        clicks = int(args.duration * args.click_to_call_per_second)
        events = sorted(
            [(i / args.calls_per_second, "call", i) for i in range(total)]
            + [((k + 0.5) / args.click_to_call_per_second, "click", k) for k in range(clicks)]
        )
        tasks: list[asyncio.Task[None]] = []
        started = time.perf_counter()
        for offset, what, n in events:
            delay = started + offset - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if what == "call":
                spec, notes = self.next_call(
                    n, prefix="load", timing=timing, parked_share=args.parked_share, record=True
                )
                tasks.append(asyncio.create_task(self.play(http, spec, notes, time.perf_counter())))
            else:
                operator = rng.randrange(len(self.world.sessions))
                tasks.append(asyncio.create_task(self.click(http, n, operator)))
        await asyncio.gather(*tasks)
        self.phases["load"].seconds = time.perf_counter() - started

    async def trivial(self, http: aiohttp.ClientSession) -> None:
        stats = self.phases["trivial"]
        errors: Counter[str] = Counter()

        async def hammer(end: float) -> None:
            while time.perf_counter() < end:
                started = time.perf_counter()
                try:
                    async with http.get(self.url() + "/ping") as response:
                        ok = response.status == 200 and await response.read() == b"ok"
                except (aiohttp.ClientError, TimeoutError) as exc:
                    errors[type(exc).__name__] += 1
                    continue
                if not ok:
                    errors[f"HTTP {response.status}"] += 1
                    continue
                stats.answer_ms.append((time.perf_counter() - started) * 1000)
                stats.answers += 1

        await self._saturate(hammer, stats)
        for kind, count in errors.items():
            self.ledger.errors[f"ping {kind}"] = count

    async def saturation(self, http: aiohttp.ClientSession) -> None:
        stats = self.phases["saturation"]
        counter = iter(range(10**7))

        async def hammer(end: float) -> None:
            while time.perf_counter() < end:
                _spec, notes = self.next_call(
                    next(counter), prefix="sat", timing=NO_WAIT, parked_share=0, record=False
                )
                for note in notes:
                    await self.send(http, note, "saturation")

        await self._saturate(hammer, stats)

    async def _saturate(self, hammer: Any, stats: Phase) -> None:
        started = time.perf_counter()
        end = started + self.args.saturation_seconds
        await asyncio.gather(*(hammer(end) for _ in range(self.args.saturation_connections)))
        stats.seconds = time.perf_counter() - started


def http_session(limit: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, keepalive_timeout=60)
    return aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), timeout=aiohttp.ClientTimeout(total=60)
    )


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

"""bench/load.py's load generator (asyncio + aiohttp), as MTT and the operators' pages would drive the
stack: notifications to the notify URL, click-to-calls, one WebSocket per operator acknowledging its cards,
and the phases (load, trivial, saturation) with what each measured."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from _common import WebGroup
from loaddata import World
from loadplan import NO_WAIT, CallSpec, Ledger, Note, Timing, build_call, call_spec, utc_now

CSRF = secrets.token_hex(16)  # 32 characters: a valid CSRF secret, sent as cookie and header alike


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

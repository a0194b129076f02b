"""Screen-pop benchmark: from a notification POST leaving the sender to the card on the operator's socket.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mttcrm REDIS_URL=redis://127.0.0.1:6379/13 \\
        .venv/bin/python bench/screenpop.py --operators 200 --rate 20 --seconds 30

It creates `<that name>_bench_screenpop` (dropped afterwards), N operators each with a workplace and a
logged-in session (made with Django's SessionStore, passed as the session cookie with an allowed
Origin), starts the stack on it in separate processes (bench/_common.py `bench_stack`: gunicorn for the
notify URL, Daphne for the sockets, the appliers), opens one WebSocket per operator on /ws/workspace/ and
plays calls at a steady rate, each call to one operator:

- `--notifications full` (default): the six notifications of an answered incoming call (the parked
  leg's trying, the operator leg's trying and showing, connected after 1 s, both legs' finished after
  `--talk` s), i.e. 6 x rate notifications per second; four of them push to the operator's socket.
- `--notifications pop`: only the operator leg's showing: one notification and one push per call.

Measured on one clock (this process): each operator-leg POST from before the request is written to
the arrival of its message (call.show / call.update / call.hide) on that operator's socket; "first card"
is the call's first push. In the same run a bare `group_send` from this process to a random operator's
group, at the same rate, is timed to its arrival on the socket: the floor (Redis + Daphne + WebSocket,
no notify URL, no database). Any message on a socket other than the call's operator's is counted.
The HTTP client and the WebSocket client are plain asyncio (no extra packages).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import struct
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import bench_stack  # noqa: E402
from _measure import box_busy, cpu_seconds, percentiles  # noqa: E402

MOSCOW = timezone(timedelta(hours=3))
STAFF_KINDS = ("trying", "showing", "connected", "finished")


# --- a minimal HTTP/1.1 keep-alive client ---------------------------------------------------------------


class HttpPool:
    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port = host, port
        self.free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        self.opened = 0
        self.size = size

    async def _conn(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.free.empty() and self.opened < self.size:
            self.opened += 1
            return await asyncio.open_connection(self.host, self.port)
        return await self.free.get()

    async def post(self, path: str, body: bytes) -> tuple[int, float, float]:
        """(status, time the request was written, time the answer was read), perf_counter seconds."""
        reader, writer = await self._conn()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        sent = time.perf_counter()
        writer.write(head + body)
        status_line = await reader.readline()
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length:
            await reader.readexactly(length)
        answered = time.perf_counter()
        self.free.put_nowait((reader, writer))
        return int(status_line.split()[1]), sent, answered


# --- a minimal WebSocket client -------------------------------------------------------------------------


@dataclass
class Socket:
    operator: int  # index of the operator
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    closed: str = ""


async def ws_open(
    host: str, port: int, path: str, cookie: str, operator: int, origin: str | None = None
) -> Socket:
    """A WebSocket to Daphne; ``origin``: the page's (the site's address, not Daphne's)."""
    reader, writer = await asyncio.open_connection(host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    origin = origin or f"http://{host}:{port}"
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n"
            f"Cookie: sessionid={cookie}\r\n\r\n"
        ).encode()
    )
    status = await reader.readline()
    if b" 101 " not in status:
        raise RuntimeError(f"WebSocket handshake refused: {status!r}")
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    return Socket(operator=operator, reader=reader, writer=writer)


def _client_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


async def ws_read(sock: Socket) -> None:
    reader = sock.reader
    buffer = b""
    try:
        while True:
            b1, b2 = await reader.readexactly(2)
            opcode, length = b1 & 0x0F, b2 & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await reader.readexactly(8))
            data = await reader.readexactly(length)
            if opcode == 0x8:
                sock.closed = f"closed by server {data[:2].hex()}"
                return
            if opcode == 0x9:  # ping: Daphne drops sockets that do not answer
                sock.writer.write(_client_frame(0xA, data))
                continue
            if opcode in (0x1, 0x0):
                buffer += data
                if b1 & 0x80:
                    arrived = time.perf_counter()
                    sock.received.append((arrived, json.loads(buffer)))
                    buffer = b""
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        sock.closed = sock.closed or type(exc).__name__


# --- the calls ---------------------------------------------------------------------------------------------


def msk(offset: float = 0.0) -> str:
    return (datetime.now(MOSCOW) + timedelta(seconds=offset)).strftime("%Y-%m-%d %H:%M:%S")


def call_notifications(index: int, sip_id: str, talk: float) -> list[tuple[str, float, bytes]]:
    """(kind, seconds after the call starts, body) of one answered incoming call."""
    from tests.calls import payloads as p

    base = f"bench{index:07d}"
    number = f"+7921{index:07d}"
    line_leg, staff_leg = f"{base}~1o", f"{base}~2o"
    inc = {"type": "incoming", "caller": p.client_party(number)}
    staff = p.workplace_party(sip_id=sip_id)
    plan = [
        ("line", 0.0, p.note(line_leg, "trying", callee=p.line_party(), start=msk(), **inc)),
        ("trying", 0.0, p.note(staff_leg, "trying", callee=staff, start=msk(), **inc)),
        ("showing", 0.2, p.note(staff_leg, "showing", callee=staff, start=msk(), **inc)),
        ("connected", 1.0, p.note(staff_leg, "connected", callee=staff, start=msk(1), **inc)),
        ("line", 1.0 + talk, p.note(line_leg, "finished", callee=p.line_party(), duration=int(talk), **inc)),
        ("finished", 1.0 + talk, p.note(staff_leg, "finished", callee=staff, duration=int(talk), **inc)),
    ]
    return [(kind, at, json.dumps(body, ensure_ascii=False).encode()) for kind, at, body in plan]


def pop_notification(index: int, sip_id: str) -> list[tuple[str, float, bytes]]:
    from tests.calls import payloads as p

    number = f"+7921{index:07d}"
    body = p.note(
        f"bench{index:07d}~2o",
        "showing",
        type="incoming",
        caller=p.client_party(number),
        callee=p.workplace_party(sip_id=sip_id),
        start=msk(),
    )
    return [("showing", 0.0, json.dumps(body, ensure_ascii=False).encode())]


@dataclass
class Results:
    posts: dict[int, list[tuple[str, float]]] = field(default_factory=lambda: defaultdict(list))
    answer_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    floor_sent: dict[str, float] = field(default_factory=dict)


async def play_call(
    index: int, plan: list[tuple[str, float, bytes]], pool: HttpPool, notify_path: str, results: Results
) -> None:
    started = time.perf_counter()
    for kind, at, body in plan:
        delay = started + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            status, sent, answered = await pool.post(notify_path, body)
        except (OSError, asyncio.IncompleteReadError) as exc:
            results.errors.append(f"{kind}: {type(exc).__name__}")
            continue
        results.answer_ms.append((answered - sent) * 1000)
        if status != 200:
            results.errors.append(f"{kind}: HTTP {status}")
        if kind in STAFF_KINDS:
            results.posts[index].append((kind, sent))


async def floor_probe(layer: Any, group: str, number: str, results: Results) -> None:
    message = {
        "type": "call.show",
        "call": {"id": -1, "version": 0, "phase": "ringing", "number": number},
        "sent_at": time.time() * 1000,
    }
    results.floor_sent[number] = time.perf_counter()
    await layer.group_send(group, message)


# --- main -----------------------------------------------------------------------------------------------


def setup_database(operators: int) -> tuple[str, list[int], list[str], list[str]]:
    """(notify path, user ids, workplace SIP IDs, session keys) in the bench database."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    from integrations.models import ExternalNumber, Integration, Workplace
    from tests.calls import payloads as p

    integration = Integration.objects.create(
        name="bench", client_id="c", client_secret="s", status=Integration.Status.CONNECTED
    )
    ExternalNumber.objects.create(integration=integration, number=p.LINE)
    users, sips, sessions = [], [], []
    user_model = get_user_model()
    for i in range(operators):
        user = user_model.objects.create_user(f"op{i:04d}", first_name="Оператор", last_name=str(i))
        sip = f"88314090{i:07d}"
        Workplace.objects.create(integration=integration, sip_id=sip, name=f"Оператор {i}", user=user)
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        users.append(user.pk)
        sips.append(sip)
        sessions.append(session.session_key or "")
    return integration.notify_path, users, sips, sessions


async def run(
    args: argparse.Namespace,
    notify_port: int,
    ws_port: int,
    notify_path: str,
    users: list[int],
    sips: list[str],
    sessions: list[str],
    servers: list[int],
) -> int:
    from channels.layers import get_channel_layer

    from calls.realtime import operator_group

    host = "127.0.0.1"
    sockets: list[Socket] = []
    for start in range(0, len(users), 50):
        batch = range(start, min(start + 50, len(users)))
        sockets += await asyncio.gather(
            *(
                ws_open(host, ws_port, "/ws/workspace/", sessions[i], i, f"http://{host}:{notify_port}")
                for i in batch
            )
        )
    readers = [asyncio.create_task(ws_read(s)) for s in sockets]
    await asyncio.sleep(1.0)
    refused = [s for s in sockets if s.closed]
    layout = f"{args.web_processes} web process(es), {args.ws_processes} Daphne for the sockets"
    print(f"sockets open           {len(sockets) - len(refused)} of {len(users)} ({layout})")
    if refused:
        print(f"  refused: {refused[0].closed}")
        return 1

    layer = get_channel_layer()
    pool = HttpPool(host, notify_port, args.http_connections)
    results = Results()
    number_to_call: dict[str, int] = {}
    call_operator: dict[int, int] = {}
    tasks: list[asyncio.Task[None]] = []
    total = int(args.rate * args.seconds)
    interval = 1.0 / args.rate
    cpu_before = [cpu_seconds(pid) for pid in servers]
    client_cpu = time.process_time()
    box_before = box_busy()
    wall_start = time.perf_counter()
    for i in range(total):
        due = wall_start + i * interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        operator = i % len(users)
        number_to_call[f"+7921{i:07d}"] = i
        call_operator[i] = operator
        plan = (
            call_notifications(i, sips[operator], args.talk)
            if args.notifications == "full"
            else pop_notification(i, sips[operator])
        )
        tasks.append(asyncio.create_task(play_call(i, plan, pool, notify_path, results)))
        # The floor, interleaved at the same rate, to a random operator.
        target = random.randrange(len(users))
        tasks.append(
            asyncio.create_task(floor_probe(layer, operator_group(users[target]), f"floor{i}", results))
        )
    await asyncio.gather(*tasks)
    load_seconds = time.perf_counter() - wall_start
    cpu_after = [cpu_seconds(pid) for pid in servers]
    client_cpu = time.process_time() - client_cpu
    box_after = box_busy()
    await asyncio.sleep(3.0)  # stragglers

    arrivals: dict[int, list[tuple[int, float]]] = defaultdict(list)
    floor_ms: list[float] = []
    misdelivered = 0
    for sock in sockets:
        for arrived, message in sock.received:
            number = (message.get("call") or {}).get("number", "")
            if number.startswith("floor"):
                floor_ms.append((arrived - results.floor_sent[number]) * 1000)
                continue
            index = number_to_call.get(number)
            if index is None or call_operator[index] != sock.operator:
                misdelivered += 1
                continue
            arrivals[index].append((message["call"]["version"], arrived))

    first_ms: list[float] = []
    all_ms: list[float] = []
    lost = 0
    for index, posts in results.posts.items():
        got = [arrived for _version, arrived in sorted(arrivals.get(index, []))]
        lost += max(0, len(posts) - len(got))
        for n, ((_kind, sent), arrived) in enumerate(zip(posts, got, strict=False)):
            all_ms.append((arrived - sent) * 1000)
            if n == 0:
                first_ms.append((arrived - sent) * 1000)

    notifications = len(results.answer_ms)
    print(f"calls                  {total} at {args.rate}/s for {args.seconds} s, {args.notifications} "
          f"({notifications} notifications, {notifications / load_seconds:.0f}/s achieved)")  # fmt: skip
    print(f"notify URL answer      {percentiles(results.answer_ms)}")
    print(f"card, first push       {percentiles(first_ms) if len(first_ms) > 1 else first_ms}")
    print(f"card, every push       {percentiles(all_ms) if len(all_ms) > 1 else all_ms}")
    print(f"floor: group_send      {percentiles(floor_ms) if len(floor_ms) > 1 else floor_ms}")
    used = [
        (after - before) / load_seconds * 100 for before, after in zip(cpu_before, cpu_after, strict=True)
    ]
    print(f"server CPU             {', '.join(f'{u:.0f}%' for u in used)} of one core each")
    client_share = client_cpu / load_seconds * 100
    box_share = (box_after[0] - box_before[0]) / max(1.0, box_after[1] - box_before[1]) * 100
    print(f"whole box CPU busy     {box_share:.0f}% (PostgreSQL, Redis, Daphne, this client)")
    print(f"bench client CPU       {client_share:.0f}% of one core ({os.cpu_count()} cores in the box)")
    print(f"errors                 {len(results.errors)} {results.errors[:3]}")
    print(f"lost / misdelivered    {lost} / {misdelivered}")
    for task in readers:
        task.cancel()
    for sock in sockets:
        sock.writer.close()
    ok = not results.errors and lost == 0 and misdelivered == 0 and len(floor_ms) == total
    print("CHECK", "ok" if ok else "FAILED")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--operators", type=int, default=50)
    parser.add_argument("--rate", type=float, default=20.0, help="calls per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--notifications", choices=["full", "pop"], default="full")
    parser.add_argument("--talk", type=float, default=3.0, help="seconds from connected to finished")
    parser.add_argument("--web-processes", type=int, default=1, help="gunicorn workers (the notify URL)")
    parser.add_argument("--ws-processes", type=int, default=1, help="Daphne processes (the sockets)")
    parser.add_argument("--appliers", type=int, default=1, help="applier processes")
    parser.add_argument(
        "--balance",
        choices=["shared", "reuseport", "ports"],
        default="shared",
        help="how several Daphne processes share the port (bench/_common.py)",
    )
    parser.add_argument("--http-connections", type=int, default=64, help="concurrent notification senders")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    # The push crosses processes through channels-redis (REDIS_URL); no worker runs, so background tasks
    # go to the run's folders, never to a Redis queue.
    env = {"CELERY_BROKER_URL": "filesystem://"}
    with bench_stack(suffix="_bench_screenpop", env=env, keep=args.keep) as stack:
        notify_path, users, sips, sessions = setup_database(args.operators)
        from django.db import connections

        connections.close_all()
        stack.start_applier(args.appliers)
        notify = stack.start_web(args.web_processes)
        sockets = stack.start_ws(args.ws_processes, balance=args.balance)
        processes = [
            pid for pids in stack.processes().values() for pid in pids
        ]  # web, ws, appliers: the CPU of the whole path
        code = asyncio.run(
            run(args, notify.ports[0], sockets.ports[0], notify_path, users, sips, sessions, processes)
        )
        stack.keep_logs = code != 0
        return code


if __name__ == "__main__":
    sys.exit(main())

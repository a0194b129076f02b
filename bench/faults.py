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
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import requests  # noqa: E402
from _common import free_port, wait_http  # noqa: E402
from screenpop import Socket, ws_open, ws_read  # noqa: E402

from mttcrm.devrun import commands  # noqa: E402
from sandbox.testing import RunningSandbox, running_sandbox  # noqa: E402
from tests.faults import worker_stack  # noqa: E402
from tests.faults.servers import PrivatePostgres, PrivateRedis  # noqa: E402

WORKPLACE = "883140000000001"  # the sandbox's first workplace: the demo links it to ivanova
LINE = "74996497803"
MANAGED_CLIENTS = ["+79219462761", "+78124241500"]  # demo contacts with a personal manager
MP3_BYTES = (ROOT / "sandbox" / "static" / "recording.mp3").stat().st_size
# Faster sweeps than production so that the run ends in minutes; printed with the report.
BENCH_ENV = {
    "RECORDINGS_SWEEP_EVERY_SECONDS": "15",
    "RECORDINGS_STALE_CLAIM_SECONDS": "60",
    "CELERY_VISIBILITY_TIMEOUT": "20",
    "MTT_SYNC_DEBOUNCE_SECONDS": "1",
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> tuple[Any, float]:
    """(the first truthy value of check, seconds it took); (None, timeout) when it never came."""
    started = time.monotonic()
    while True:
        value = check()
        if value:
            return value, time.monotonic() - started
        if time.monotonic() - started > timeout:
            log(f"!! gave up waiting for {what} after {timeout:.0f} s")
            return None, timeout
        time.sleep(every)


# --- the stack ---------------------------------------------------------------------------------------


class Stack:
    """A deployment on the private servers, as make run and compose run it (mttcrm/devrun.py): web
    (gunicorn), ws (Daphne), an applier, a worker and beat; demo data; the sandbox."""

    def __init__(
        self, work: Path, pg: PrivatePostgres, redis: PrivateRedis, sandbox: RunningSandbox, name: str
    ):
        self.work = work / name
        self.work.mkdir(parents=True)
        self.port = free_port()
        self.ws_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_url = pg.create_database(f"mttcrm_faults_{name}")
        db_index = {"redis": 1, "postgres": 2, "mtt": 3}.get(name, 4)
        self.env = {
            **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
            **BENCH_ENV,
            "DJANGO_SETTINGS_MODULE": "mttcrm.settings",
            "DATABASE_URL": self.db_url,
            "REDIS_URL": redis.url(db_index),
            "CELERY_BROKER_URL": redis.url(db_index),
            "VAR_DIR": str(self.work / "var"),
            "MEDIA_ROOT": str(self.work / "media"),
            "DEBUG": "true",
            "SITE_URL": self.url,
            "WEBSOCKET_URL": f"ws://127.0.0.1:{self.ws_port}",
            "SANDBOX_URL": sandbox.url,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_LEVEL": "INFO",
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.sandbox = sandbox

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def start(self, *, worker: bool = True) -> None:
        self.manage("migrate", "--noinput")
        self.manage("mtt", "demo", "--sandbox-url", self.sandbox.url)
        settings = SimpleNamespace(
            PORT=self.port, WS_PORT=self.ws_port, SANDBOX_PORT=0, VAR_DIR=str(self.work / "var")
        )
        lines = commands(py=sys.executable, settings=settings, web_workers=1)
        for role in ("applier", "web", "ws", *(("worker", "beat") if worker else ())):
            self._spawn(role, lines[role])
        wait_http(self.url + "/healthz", timeout=60)
        wait_http(f"http://127.0.0.1:{self.ws_port}/ping", timeout=60)

    def _spawn(self, name: str, cmd: list[str]) -> None:
        (self.work / "var").mkdir(exist_ok=True)
        with (self.work / f"{name}.log").open("ab") as out:
            self.procs[name] = subprocess.Popen(
                cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(20)

    def logtext(self, name: str) -> str:
        path = self.work / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url.replace("postgres://", "postgresql://"), connect_timeout=3) as conn:
            return conn.execute(query).fetchall()  # type: ignore[arg-type]

    def login(self, username: str = "ivanova", password: str = "demo") -> requests.Session:
        session = requests.Session()
        form = session.get(self.url + "/accounts/login/", timeout=30).text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
        assert token, "no CSRF token on the login page"
        answer = session.post(
            self.url + "/accounts/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": token.group(1)},
            headers={"Referer": self.url + "/accounts/login/"},
            timeout=30,
            allow_redirects=False,
        )
        assert answer.status_code == 302, answer.status_code
        return session

    def inbox(self) -> dict[str, int]:
        return dict(self.sql("SELECT status, count(*) FROM integrations_notificationevent GROUP BY status"))

    def doubled_events(self) -> int:
        return len(
            self.sql(
                "SELECT notification_id FROM calls_callevent GROUP BY notification_id HAVING count(*) > 1"
            )
        )

    def recordings(self) -> dict[str, int]:
        return dict(self.sql("SELECT status, count(*) FROM calls_recording GROUP BY status"))

    def partial_files(self) -> list[Path]:
        media = self.work / "media"
        return sorted(media.rglob("*.part")) if media.exists() else []


class CallPlayer:
    """Plays one incoming call every ``every`` seconds through the sandbox, until stopped."""

    def __init__(
        self, sandbox: RunningSandbox, every: float, step_delay: float, callers: list[str] | None = None
    ):
        self.sandbox, self.every, self.step_delay = sandbox, every, step_delay
        self.callers = callers
        self.started = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            caller = (
                self.callers[self.started % len(self.callers)]
                if self.callers
                else f"+7999{uuid.uuid4().int % 10_000_000:07d}"
            )
            self.sandbox.control(
                "POST",
                "scenario",
                {
                    "scenario": "incoming_answered",
                    "caller": caller,
                    "workplace": WORKPLACE,
                    "external_number": LINE,
                    "step_delay": self.step_delay,
                    "duration": 20,
                },
            )
            self.started += 1
            self._stop.wait(self.every)

    def __enter__(self) -> CallPlayer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def delivered(self) -> Counter[str]:
        """Answers the notify URL gave the sandbox: HTTP status, or the error."""
        return Counter(
            str(n["status"]) if n["status"] is not None else (n["error"] or "?").split(":")[0]
            for n in self.sandbox.control("GET", "notifications")
        )


def notification_report(stack: Stack, player: CallPlayer) -> dict[str, Any]:
    sent = player.sandbox.control("GET", "notifications")
    # The PBX's directory-change notifications repeat the same body: stored once by design.
    distinct = len({json.dumps(n["payload"], sort_keys=True) for n in sent})
    inbox = stack.inbox()
    stored = sum(inbox.values())
    return {
        "calls": player.started,
        "sent": len(sent),
        "distinct": distinct,
        "answers": dict(player.delivered()),
        "stored": stored,
        "applied": inbox.get("applied", 0) + inbox.get("ignored", 0),
        "lost": distinct - stored,
        "duplicated": stack.doubled_events(),
    }


# --- 1. Redis ------------------------------------------------------------------------------------------


class Workspace:
    """An operator's tab without a browser: static/js/live/connection.js's reconnect and resync."""

    def __init__(self, stack: Stack, session: requests.Session) -> None:
        self.stack, self.session = stack, session
        self.cookie = session.cookies.get("sessionid") or ""
        self.pushed: set[int] = set()
        self.resynced: set[int] = set()
        self.opened: list[float] = []
        self.closed: list[float] = []
        self.pushes: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            sock: Socket | None
            try:
                sock = await asyncio.wait_for(
                    ws_open(
                        "127.0.0.1", self.stack.ws_port, "/ws/workspace/", self.cookie, 0, self.stack.url
                    ),
                    10,
                )
            except Exception:
                sock = None
            if sock is not None:
                attempt = 0
                self.opened.append(time.monotonic())
                await asyncio.to_thread(self._resync)
                reader = asyncio.create_task(ws_read(sock))
                seen = 0
                while not reader.done() and not self._stop.is_set():
                    await asyncio.sleep(0.1)
                    for _arrived, message in sock.received[seen:]:
                        self.pushes.append(time.monotonic())
                        self.pushed.add(int(message["call"]["id"]))
                    seen = len(sock.received)
                reader.cancel()
                sock.writer.close()
                self.closed.append(time.monotonic())
            # static/js/live/connection.js: 500 ms doubling to 30 s, "equal jitter".
            step = min(10.0, 0.5 * 2**attempt)  # static/js/live/connection.js: BACKOFF_CAP_MS
            attempt += 1
            await asyncio.sleep(step / 2 + (uuid.uuid4().int % 1000) / 1000 * step / 2)

    def _resync(self) -> None:
        try:
            body = self.session.get(self.stack.url + "/calls/active.json", timeout=10).json()
            self.resynced.update(int(c["id"]) for c in body.get("calls", []))
        except (requests.RequestException, ValueError):
            pass

    def _resync_every_30_s(self) -> None:
        # static/js/live/connection.js resyncs every 30 s whether the socket is up or not.
        while not self._stop.wait(30):
            self._resync()

    def __enter__(self) -> Workspace:
        self._thread.start()
        threading.Thread(target=self._resync_every_30_s, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def scenario_redis(work: Path, pg: PrivatePostgres, redis: PrivateRedis, outage: float) -> dict[str, Any]:
    with running_sandbox(step_delay=1.5, notify_timeout=10) as sandbox:
        stack = Stack(work, pg, redis, sandbox, "redis")
        try:
            stack.start()
            workspace = Workspace(stack, stack.login())
            with workspace, CallPlayer(sandbox, every=3.0, step_delay=1.5) as player:
                wait_for(lambda: workspace.opened, 30, "the workspace socket")
                time.sleep(10)
                log(f"redis: stopping Redis for {outage:.0f} s")
                redis.stop()
                down_at = time.monotonic()
                time.sleep(outage)
                redis.start()
                up_at = time.monotonic()
                log("redis: Redis started again")
                time.sleep(20)
            # Every call's notifications delivered (the last call ends ~12 s after it started).
            wait_for(lambda: sum(player.delivered().values()) >= player.started * 7, 60, "the last calls")
            _, settled = wait_for(lambda: stack.inbox().get("pending", 0) == 0, 120, "the inbox to settle")
            _, stored_in = wait_for(
                lambda: set(stack.recordings()) <= {"stored"}, 300, "every recording stored", every=2
            )
            report = notification_report(stack, player)
            reconnected = [t - up_at for t in workspace.opened if t > up_at]
            pushes_after = [t - up_at for t in workspace.pushes if t > up_at]
            # Every call rang the operator's workplace: each one is a card on her screen.
            calls = {row[0] for row in stack.sql("SELECT id FROM calls_call")}
            report.update(
                {
                    "outage_s": round(up_at - down_at, 1),
                    "socket_closed_during_outage": sum(
                        1 for t in workspace.closed if down_at <= t <= up_at + 1
                    ),
                    "reconnected_after_s": round(reconnected[0], 1) if reconnected else None,
                    "first_push_after_s": round(pushes_after[0], 1) if pushes_after else None,
                    "cards_seen_by_push": len(workspace.pushed & calls),
                    "cards_seen_only_by_resync": len((workspace.resynced - workspace.pushed) & calls),
                    "calls_never_on_screen": len(calls - workspace.pushed - workspace.resynced),
                    "calls_total": len(calls),
                    "push_failures_logged": sum(
                        stack.logtext(name).count("Screen pop: push") for name in ("web", "applier")
                    ),
                    "recordings": stack.recordings(),
                    "recordings_all_stored_after_s": round(stored_in, 1),
                    "inbox_settled_after_s": round(settled, 1),
                }
            )
            return report
        finally:
            stack.stop()
            if not redis.running():
                redis.start()


# --- 2. PostgreSQL ---------------------------------------------------------------------------------------


def scenario_postgres(work: Path, pg: PrivatePostgres, redis: PrivateRedis, outage: float) -> dict[str, Any]:
    with running_sandbox(step_delay=1.5, notify_timeout=10) as sandbox:
        stack = Stack(work, pg, redis, sandbox, "postgres")
        try:
            stack.start()
            operator = stack.login()
            pages: list[tuple[float, int, float]] = []
            stop_pages = threading.Event()

            def poll_pages() -> None:
                while not stop_pages.is_set():
                    started = time.monotonic()
                    try:
                        status = operator.get(stack.url + "/", timeout=30).status_code
                    except requests.RequestException:
                        status = 0
                    pages.append((started, status, time.monotonic() - started))
                    stop_pages.wait(1.0)

            pager = threading.Thread(target=poll_pages, daemon=True)
            pager.start()
            spool = stack.work / "var" / "spool"
            with CallPlayer(sandbox, every=3.0, step_delay=1.5) as player:
                time.sleep(10)
                log(f"postgres: stopping PostgreSQL for {outage:.0f} s")
                pg.stop()
                down_at = time.monotonic()
                most_spooled = 0
                while time.monotonic() - down_at < outage:
                    most_spooled = max(most_spooled, len(list(spool.glob("*.json"))))
                    time.sleep(0.5)
                pg.start()
                up_at = time.monotonic()
                log("postgres: PostgreSQL started again")
                _, replayed = wait_for(lambda: not list(spool.glob("*.json")), 120, "the spool replayed", 0.2)
                time.sleep(20)
            stop_pages.set()
            pager.join()
            wait_for(lambda: sum(player.delivered().values()) >= player.started * 7, 60, "the last calls")
            _, settled = wait_for(lambda: stack.inbox().get("pending", 0) == 0, 120, "the inbox to settle")
            _, stored_in = wait_for(
                lambda: set(stack.recordings()) <= {"stored"}, 300, "every recording stored", every=2
            )
            report = notification_report(stack, player)
            during = [(s, d) for t, s, d in pages if down_at <= t <= up_at]
            ok_again = [t - up_at for t, s, _d in pages if t > up_at and s == 200]
            report.update(
                {
                    "outage_s": round(up_at - down_at, 1),
                    "spooled_at_most": most_spooled,
                    "spooled_logged": stack.logtext("web").count("Notification spooled"),
                    "spool_replayed_after_s": round(replayed, 1),
                    "rejected": len(list((spool / "rejected").glob("*.json"))),
                    "pages_during_outage": dict(Counter(s for s, _d in during)),
                    "slowest_page_during_outage_s": round(max((d for _s, d in during), default=0), 2),
                    "pages_200_again_after_s": round(ok_again[0], 1) if ok_again else None,
                    "recordings": stack.recordings(),
                    "recordings_all_stored_after_s": round(stored_in, 1),
                    "inbox_settled_after_s": round(settled, 1),
                }
            )
            return report
        finally:
            stack.stop()
            if not pg.running():
                pg.start()


# --- 3. The worker ---------------------------------------------------------------------------------------


def scenario_worker(work: Path, pg: PrivatePostgres, redis: PrivateRedis) -> dict[str, Any]:
    base = work / "worker"
    media = base / "media"
    media.mkdir(parents=True)
    logfile = base / "worker.log"
    with running_sandbox() as sandbox:
        env = {
            **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
            "DJANGO_SETTINGS_MODULE": "mttcrm.settings",
            "DATABASE_URL": pg.create_database("mttcrm_faults_worker"),
            "REDIS_URL": redis.url(5),
            "CELERY_BROKER_URL": redis.url(5),
            "CELERY_VISIBILITY_TIMEOUT": BENCH_ENV["CELERY_VISIBILITY_TIMEOUT"],
            "VAR_DIR": str(base / "var"),
            "MEDIA_ROOT": str(media),
            "DEBUG": "true",
            "SANDBOX_URL": sandbox.url,
            "RECORDINGS_ALLOW_SANDBOX": "true",
            "RECORDINGS_ALLOW_HTTP": "true",
            "LOG_LEVEL": "INFO",
        }
        worker_stack.run(env, "setup", "--calls", "0", "--recordings", "6", "--record-base", sandbox.url)
        # Four downloads trickle (~5 s each): the kills land while files are being written.
        sandbox.control("POST", "faults", {"path": "/records/*", "rate": MP3_BYTES // 5, "count": 4})
        worker = worker_stack.start_worker(env, logfile)
        kills: list[str] = []
        try:
            worker_stack.wait_ready(logfile, 0)
            sent = worker_stack.run(env, "enqueue")
            wait_for(lambda: list(media.rglob("*.part")), 60, "a download under way", 0.05)
            partial_at_kill = len(list(media.rglob("*.part")))
            for pid in worker_stack.children(worker.pid):
                os.kill(pid, signal.SIGKILL)
            kills.append(f"pool SIGKILLed mid-download ({partial_at_kill} partial files)")
            # Then the whole worker, mid-download, and a new one started.
            wait_for(lambda: list(media.rglob("*.part")), 60, "another download under way", 0.05)
            since = logfile.stat().st_size
            worker_stack.kill_worker(worker)
            killed_at = time.monotonic()
            kills.append(
                f"the whole worker SIGKILLed mid-download ({len(list(media.rglob('*.part')))} partial)"
            )
            worker = worker_stack.start_worker(env, logfile)
            worker_stack.wait_ready(logfile, since)

            def done() -> dict[str, Any] | None:
                report = worker_stack.run(env, "report")
                return report if report["recordings"] == {"stored": sent["recordings"]} else None

            report, took = wait_for(done, 300, "every task to complete", 2)
        finally:
            worker_stack.stop_worker(worker)
        text = logfile.read_text(errors="replace")
        succeeded = Counter(re.findall(r"Task (\S+\[[0-9a-f-]+\]) succeeded", text))
        tasks = {k: v for k, v in succeeded.items() if "download_recording" in k}
        return {
            "kills": kills,
            "tasks_sent": sent["recordings"],
            "tasks_completed": len(tasks),
            "tasks_completed_twice": sum(1 for n in tasks.values() if n > 1),
            "worker_lost_errors": text.count("WorkerLostError("),
            "recovered_after_restart_s": round(time.monotonic() - killed_at, 1) if report else None,
            "waited_s": round(took, 1),
            "visibility_timeout_s": int(BENCH_ENV["CELERY_VISIBILITY_TIMEOUT"]),
            "report": report,
        }


# --- 4. MTT ------------------------------------------------------------------------------------------


def scenario_mtt(work: Path, pg: PrivatePostgres, redis: PrivateRedis, fault: float) -> dict[str, Any]:
    with running_sandbox(step_delay=0.5, notify_timeout=10) as sandbox:
        stack = Stack(work, pg, redis, sandbox, "mtt")
        try:
            stack.start()
            stack.manage(
                "shell",
                "-c",
                "from integrations.parking import external_numbers_set_parking as p; "
                "from integrations.models import Integration; "
                f"p(integration=Integration.objects.get(), numbers=['{LINE}'], is_parking=True)",
            )
            deadline_s = 4.5
            phase = fault / 3
            callers = [*MANAGED_CLIENTS, None]
            with CallPlayer(
                sandbox, every=3.0, step_delay=0.5, callers=[c or "+79990001122" for c in callers]
            ) as player:
                time.sleep(9)
                log(f"mtt: MTT failing for {fault:.0f} s (500s, then 429s, then hanging)")
                fault_started = time.monotonic()
                sandbox.control("POST", "expire-tokens")
                plan = [
                    {"status": 500},
                    {"status": 429, "retry_after": 5},
                    {"delay": 12},  # past MTT_READ_TIMEOUT (10 s) and the 5 s of parking
                ]
                for spec in plan:
                    for path in ("*", "/oauth/token", "/records/*"):
                        sandbox.control("POST", "faults", {"path": path, "seconds": phase, **spec})
                    # A change in the PBX's directory: a sync that has to get through.
                    sandbox.control("POST", "scenario", {"scenario": "workplaces_changed"})
                    time.sleep(phase)
                fault_ended = time.monotonic()
                log("mtt: MTT answers again")
                time.sleep(20)
            sandbox.control("POST", "scenario", {"scenario": "workplaces_changed"})
            wait_for(lambda: sum(player.delivered().values()) >= player.started * 7, 60, "the last calls")
            _, settled = wait_for(lambda: stack.inbox().get("pending", 0) == 0, 120, "the inbox to settle")
            _, stored_in = wait_for(
                lambda: set(stack.recordings()) <= {"stored"}, 400, "every recording stored", every=2
            )
            decisions = stack.sql(
                "SELECT decision, received_at, sent_at FROM calls_routingdecision ORDER BY received_at"
            )
            late = [d for d in decisions if d[2] is not None and (d[2] - d[1]).total_seconds() > deadline_s]
            requests_log = sandbox.control("GET", "requests")
            by_status = Counter(str(r["status"]) for r in requests_log)
            wall = time.time()
            mono = time.monotonic()
            ended_at = wall - (mono - fault_ended)
            first_ok_after = {}
            for method in ("/workplacesInfo", "/transferCall", "/terminateCall"):
                oks = [r for r in requests_log if r["path"] == method and r["status"] == 200]
                after = [
                    _iso_seconds(r["time"]) - ended_at for r in oks if _iso_seconds(r["time"]) > ended_at
                ]
                first_ok_after[method] = round(min(after), 1) if after else None
            status = stack.sql("SELECT status, last_sync_at FROM integrations_integration")
            report = notification_report(stack, player)
            report.update(
                {
                    "fault_s": round(fault_ended - fault_started, 1),
                    "routing_decisions": dict(Counter(d[0] for d in decisions)),
                    "routing_sent_late": len(late),
                    "mtt_requests_by_status": dict(by_status),
                    "first_success_after_fault_s": first_ok_after,
                    "integration_status": status[0][0],
                    "recordings": stack.recordings(),
                    "recordings_all_stored_after_s": round(stored_in, 1),
                    "inbox_settled_after_s": round(settled, 1),
                    "client_retries_logged": stack.logtext("worker").count("retrying in"),
                    "task_retries_logged": len(
                        re.findall(r"Task \S+ retry: Retry in", stack.logtext("worker"))
                    ),
                }
            )
            return report
        finally:
            stack.stop()


def _iso_seconds(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value).timestamp()


# --- main ----------------------------------------------------------------------------------------------


@contextmanager
def servers() -> Iterator[tuple[PrivatePostgres, PrivateRedis]]:
    pg = PrivatePostgres()
    redis = PrivateRedis()
    try:
        pg.start()
        redis.start()
        log(f"private PostgreSQL on {pg.port}, private Redis on {redis.port}")
        yield pg, redis
    finally:
        redis.destroy()
        pg.destroy()


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

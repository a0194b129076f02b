"""bench/faults.py's deployment: the private PostgreSQL and Redis servers (tests/faults/servers.py), the
stack on them as make run and compose run it (`Stack`), the sandbox playing calls (`CallPlayer`), the
notification counts every scenario reports, and the waiting and logging they share."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import requests
from _common import free_ports, wait_http

from mttcrm.devrun import commands
from sandbox.testing import RunningSandbox
from tests.faults.servers import PrivatePostgres, PrivateRedis

ROOT = Path(__file__).resolve().parents[1]

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
        self.port, self.ws_port = free_ports(2)
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

"""Shared by the benchmarks: a throw-away PostgreSQL database next to the one in DATABASE_URL, and the
production stack around it (`bench_stack`). What the benchmarks measure it with (percentiles, CPU time):
_measure.py."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from _stores import applier_sessions, clear_redis

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The benchmarks' stacks choose their ports as the tests' do (each socket held until all are bound); the
# scripts import them from here.
from tests.ports import free_port, free_ports  # noqa: E402, F401


def bench_url(url: str, suffix: str = "_bench") -> tuple[str, str, str]:
    """(the bench database URL, its name, the maintenance URL to create/drop it from)."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        sys.exit(f"DATABASE_URL must point at PostgreSQL, not {parts.scheme!r}")
    name = parts.path.lstrip("/") or "postgres"
    bench_name = f"{name}{suffix}"
    maintenance = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    return urlunsplit(parts._replace(path="/" + bench_name)), bench_name, maintenance


def recreate_database(maintenance_url: str, name: str, *, drop_only: bool = False) -> None:
    import psycopg
    from psycopg import sql

    assert "_bench" in name, name  # never anything but our own database
    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if not drop_only:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def wait_http(url: str, timeout: float = 30.0) -> None:
    """Poll until the server at url answers anything (exit the benchmark if it never does)."""
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                sys.exit(f"the server did not answer at {url}")
            time.sleep(0.2)


# --- the production stack of a benchmark -------------------------------------------------------------
#
# bench_stack() starts the same kinds of process as `make run` and docker compose (mttcrm/devrun.py), each
# in its own process(es):
#
# - a fresh PostgreSQL database `<DATABASE_URL's name><suffix>` (migrated; dropped at the end) and, with
#   REDIS_URL, that Redis database emptied of our keys (the channel layer, the Celery broker and the MTT
#   limiter live there in production);
# - gunicorn with N workers (`DEBUG=false`, production settings, Django's pool in each) — `start_web()`:
#   pages and the notify URL, one port (gunicorn spreads the connections over its workers);
# - N Daphne processes for the live connections — `start_ws()`;
# - applier processes (`manage.py mtt applier`) — `start_applier()`;
# - a Celery worker on the production broker (Redis), with beat — `start_worker()`;
# - the MTT sandbox, as its own process serving the API and the recordings (`start_sandbox()`) or in a
#   thread of the benchmark (`sandbox_thread()`, for benchmarks that read its state directly);
#
# and tears everything down in `finally`. The benchmark process itself is set up as a Django process on the
# bench database (for creating the data and checking the results with the ORM).
#
# Several Daphne processes and one port: Daphne cannot share a port by itself. `balance` chooses how:
#
# - "reuseport" (default): each process gets its OWN listening socket, all bound to one port with
#   SO_REUSEPORT (made here, handed over with `daphne --fd`): the kernel spreads new connections over the
#   sockets by a hash of the client's address and port, whatever the processes are doing;
# - "shared": one listening socket inherited by every process (`--fd` with the same descriptor): whichever
#   process's event loop calls accept() first takes the connection;
# - "ports": a port per process; the client spreads its connections over them round-robin.
#
# In a real deployment a reverse proxy sits in front instead (Caddy in docker-compose.yml, nginx, a cloud
# load balancer), which sends /ws/ to the Daphne processes and everything else to gunicorn; here the
# client talks to each directly.

BALANCES = ("reuseport", "shared", "ports")
HOST = "127.0.0.1"
# Threads of each gunicorn worker (mttcrm/gunicorn.py's default).
WEB_THREADS = 4


@dataclass
class WebGroup:
    """Server processes of one role serving one set of ports (one port unless balance is "ports")."""

    ports: list[int]
    procs: list[subprocess.Popen[bytes]]
    balance: str

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.ports[0]}"

    @property
    def urls(self) -> list[str]:
        return [f"http://{HOST}:{port}" for port in self.ports]

    @property
    def ws_urls(self) -> list[str]:
        return [f"ws://{HOST}:{port}" for port in self.ports]


@dataclass
class SandboxProcess:
    """The sandbox in its own process (`manage.py mtt_sandbox`), driven through its control API."""

    url: str
    proc: subprocess.Popen[bytes]
    client_id: str
    client_secret: str
    login: str
    password: str

    def control(self, method: str, name: str, payload: Any = None, timeout: float = 30.0) -> Any:
        import requests

        response = requests.request(method, f"{self.url}/_sandbox/{name}", json=payload, timeout=timeout)
        response.raise_for_status()
        return response.json()

    def tokens(self, redirect_uri: str) -> dict[str, Any]:
        """A token pair through the real OAuth round trip (the portal login, then the token endpoint)."""
        import requests

        from sandbox.config import REQUESTED_SCOPE

        params = {
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": REQUESTED_SCOPE,
            "response_type": "code",
            "state": "bench",
        }
        form = {**params, "login": self.login, "password": self.password}
        answer = requests.post(f"{self.url}/oauth/authorize", data=form, allow_redirects=False, timeout=10)
        if answer.status_code != 302:
            raise RuntimeError(f"sandbox login failed: {answer.status_code}")
        code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
        answer = requests.post(
            f"{self.url}/oauth/token",
            data={
                "grant_type": "authorization_code",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "code": code,
                "redirect_uri": redirect_uri,
                "scope": REQUESTED_SCOPE,
            },
            timeout=10,
        )
        answer.raise_for_status()
        return dict(answer.json())


@dataclass
class Stack:
    db_url: str
    db_name: str
    redis_url: str
    env: dict[str, str]
    var_dir: Path
    webs: list[WebGroup] = field(default_factory=list)
    wss: list[WebGroup] = field(default_factory=list)
    worker: subprocess.Popen[bytes] | None = None
    appliers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    sandbox: SandboxProcess | None = None
    # Set by a benchmark whose check failed: the server logs stay for reading.
    keep_logs: bool = False
    _logs: list[Any] = field(default_factory=list)
    _exit: ExitStack = field(default_factory=ExitStack)

    def log(self, name: str) -> Any:
        handle = (self.var_dir / f"{name}.log").open("ab")
        self._logs.append(handle)
        return handle

    def start_web(self, count: int = 1, *, threads: int = WEB_THREADS, wait: bool = True) -> WebGroup:
        """gunicorn (mttcrm/gunicorn.py) with `count` workers on one port; waits for /healthz unless
        `wait` is False."""
        port = free_port()
        # The site's own address: the live connections accept pages of this origin only (the ws processes
        # are started after it and inherit it).
        self.env["SITE_URL"] = f"http://{HOST}:{port}"
        command = [
            sys.executable, "-m", "gunicorn", "mttcrm.wsgi:application", "--config", "python:mttcrm.gunicorn",
            "--bind", f"{HOST}:{port}", "--workers", str(count), "--threads", str(threads),
        ]  # fmt: skip
        log = self.log("web")
        proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        group = WebGroup(ports=[port], procs=[proc], balance="gunicorn")
        self.webs.append(group)
        if wait:
            wait_http(f"{group.url}/healthz", timeout=90.0)
        return group

    def start_ws(self, count: int = 1, *, balance: str = "reuseport", wait: bool = True) -> WebGroup:
        """`count` Daphne processes (the live connections, mttcrm.asgi) on this stack's env."""
        if balance not in BALANCES:
            raise ValueError(f"balance must be one of {BALANCES}")
        command = [sys.executable, "-m", "daphne", "-v", "0"]
        log = self.log("ws")
        common: dict[str, Any] = {"cwd": ROOT, "env": self.env, "stdout": log, "stderr": subprocess.STDOUT}
        app = "mttcrm.asgi:application"
        group = WebGroup(ports=[], procs=[], balance=balance)
        self.wss.append(group)
        if count == 1 or balance == "ports":
            for _ in range(count):
                port = free_port()
                group.ports.append(port)
                group.procs.append(subprocess.Popen([*command, "-b", HOST, "-p", str(port), app], **common))
        elif balance == "shared":
            listener = _listener(0, reuseport=False)
            group.ports.append(listener.getsockname()[1])
            fd = listener.fileno()
            for _ in range(count):
                group.procs.append(
                    subprocess.Popen([*command, "--fd", str(fd), app], pass_fds=(fd,), **common)
                )
            listener.close()  # the processes hold it now
        else:
            port = 0
            for _ in range(count):
                listener = _listener(port, reuseport=True)
                port = listener.getsockname()[1]
                fd = listener.fileno()
                group.procs.append(
                    subprocess.Popen([*command, "--fd", str(fd), app], pass_fds=(fd,), **common)
                )
                # Closed here at once: a socket left open in this process would stay in the port's
                # group and take its share of connections with nobody accepting them.
                listener.close()
            group.ports.append(port)
        if wait:
            for url in group.urls:
                wait_http(f"{url}/ping", timeout=90.0)
        return group

    def start_worker(self, concurrency: int = 2, *, beat: bool = True, wait: bool = True) -> None:
        """A Celery worker (prefork, `concurrency` children) with beat, on the stack's broker."""
        name = f"bench-{os.getpid()}@%h"
        command = [
            sys.executable, "-m", "celery", "-A", "mttcrm", "worker", "--loglevel", "INFO",
            "--concurrency", str(concurrency), "-n", name,
        ]  # fmt: skip
        if beat:
            command += ["--beat", "--schedule", str(self.var_dir / "celerybeat-schedule")]
        log = self.log("worker")
        # Its own process group: the prefork children are stopped with it.
        self.worker = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        if wait:
            from mttcrm.celery import app

            deadline = time.monotonic() + 90
            while not app.control.ping(timeout=1.0):
                if self.worker.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"the Celery worker did not start; see {self.var_dir / 'worker.log'}")

    def start_applier(self, count: int = 1, *, nice: int = 0) -> None:
        """`count` applier processes (`manage.py mtt applier`). `nice` > 0 lowers their CPU priority below
        the web processes' (`nice -n`)."""
        log = self.log("applier")
        prefix = ["nice", "-n", str(nice)] if nice > 0 else []
        for _ in range(count):
            self.appliers.append(
                subprocess.Popen(
                    [*prefix, sys.executable, "manage.py", "mtt", "applier"],
                    cwd=ROOT,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        # Listening once its LISTEN shows in pg_stat_activity.
        deadline = time.monotonic() + 60
        while applier_sessions() < count:
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.appliers):
                sys.exit(f"the applier did not start; see {self.var_dir / 'applier.log'}")
            time.sleep(0.2)

    def start_sandbox(self, *, step_delay: float = 0.3) -> SandboxProcess:
        """The sandbox in its own process; SANDBOX_URL of later processes points at it (recordings)."""
        port = free_port()
        url = f"http://{HOST}:{port}"
        self.env["SANDBOX_URL"] = url
        os.environ["SANDBOX_URL"] = url
        log = self.log("sandbox")
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "mtt_sandbox", "--host", HOST, "--port", str(port),
             "--step-delay", str(step_delay)],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        from django.conf import settings

        self.sandbox = SandboxProcess(
            url=url,
            proc=proc,
            client_id=settings.SANDBOX_CLIENT_ID,
            client_secret=settings.SANDBOX_CLIENT_SECRET,
            login=settings.SANDBOX_LOGIN,
            password=settings.SANDBOX_PASSWORD,
        )
        wait_http(f"{url}/_sandbox/config")
        return self.sandbox

    def sandbox_thread(self, config: Any = None) -> Any:
        """The sandbox in a thread of this process (sandbox.testing.RunningSandbox), stopped at the end."""
        from sandbox.testing import running_sandbox

        return self._exit.enter_context(running_sandbox(config))

    def signal_appliers(self, signum: int) -> None:
        """Send ``signum`` to every applier process still running."""
        for proc in self.appliers:
            if proc.poll() is None:
                proc.send_signal(signum)

    def processes(self) -> dict[str, list[int]]:
        """pid of every server process, by role (for CPU accounting): gunicorn's workers with its master."""
        out: dict[str, list[int]] = {
            "web": [pid for g in self.webs for p in g.procs for pid in (p.pid, *_children(p.pid))]
        }
        if self.wss:
            out["ws"] = [p.pid for g in self.wss for p in g.procs]
        if self.worker is not None:
            out["worker"] = [self.worker.pid, *_children(self.worker.pid)]
        if self.appliers:
            out["applier"] = [p.pid for p in self.appliers]
        if self.sandbox is not None:
            out["sandbox"] = [self.sandbox.proc.pid]
        return out

    def stop(self) -> None:
        procs = [p for g in [*self.webs, *self.wss] for p in g.procs] + list(self.appliers)
        if self.sandbox is not None:
            procs.append(self.sandbox.proc)
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()  # warm shutdown: running tasks finish
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self.worker is not None:
            try:
                self.worker.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.worker.pid, signal.SIGKILL)
                self.worker.wait(5)
        self._exit.close()
        for handle in self._logs:
            handle.close()


def _listener(port: int, *, reuseport: bool) -> socket.socket:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((HOST, port))
    listener.listen(1024)
    listener.set_inheritable(True)
    return listener


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@contextmanager
def bench_stack(
    *,
    suffix: str,
    needs_redis: bool = True,
    env: dict[str, str] | None = None,
    metrics: bool = False,
    keep: bool = False,
) -> Iterator[Stack]:
    """A fresh database (+ Redis database), this process set up on it; servers started by the caller.

    DATABASE_URL must name a PostgreSQL server; the bench database is `<its name><suffix>`. With
    REDIS_URL (required when `needs_redis`), its database number must not be 0 (shared by `make run`
    and others): our keys are deleted there before and after. `env` adds or overrides settings of every
    process; `metrics` sets METRICS_DIR as production does (compose), a folder of the run.
    Everything started is stopped in `finally`, then the database is dropped (unless `keep`).
    """
    from cryptography.fernet import Fernet

    url = os.environ.get("DATABASE_URL", "")
    if not url:
        sys.exit(f"set DATABASE_URL to a PostgreSQL database; the benchmark runs in <that name>{suffix}")
    redis_url = os.environ.get("REDIS_URL", "")
    if needs_redis and not redis_url:
        sys.exit("set REDIS_URL (a database of your own, e.g. redis://127.0.0.1:6379/13)")
    if redis_url and urlsplit(redis_url).path.strip("/") in ("", "0"):
        sys.exit("REDIS_URL must name a Redis database of your own (not 0): the benchmark empties it")
    db_url, db_name, maintenance = bench_url(url, suffix)
    recreate_database(maintenance, db_name)
    if redis_url:
        clear_redis(redis_url)
    var_dir = Path(tempfile.mkdtemp(prefix="mttcrm-bench-"))
    stack_env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + Fernet.generate_key().decode(),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "mttcrm.settings",
        "VAR_DIR": str(var_dir),
        **(env or {}),
    }
    if metrics:
        (var_dir / "metrics").mkdir()
        stack_env["METRICS_DIR"] = str(var_dir / "metrics")
    os.environ.update(stack_env)
    stack = Stack(db_url=db_url, db_name=db_name, redis_url=redis_url, env=stack_env, var_dir=var_dir)
    ok = False
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        yield stack
        ok = True
    finally:
        stack.stop()
        from django.db import connections

        connections.close_all()
        if not keep:
            recreate_database(maintenance, db_name, drop_only=True)
        if redis_url:
            clear_redis(redis_url)
        shutil.rmtree(var_dir / "media", ignore_errors=True)
        if ok and not keep and not stack.keep_logs:
            shutil.rmtree(var_dir, ignore_errors=True)
        else:
            print(f"server logs kept in {var_dir}", file=sys.stderr)

"""The stack for browser and fault tests: the same processes as `make run` (mttcrm/devrun.py) — gunicorn for
pages and the notify URL, Daphne for the live connections, an applier — each in its own process.

pytest-django's ``live_server`` is one WSGI thread in the test process; here every process works on its own
SQLite file (the test process's test database is invisible to other processes), with the channel layer the
environment selects: channels-lite's SQLite file by default, channels-redis when REDIS_URL is set (CI). The
data the test needs is created by ``python -m tests.browser.stack`` in that database before the servers start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import requests

from mttcrm.devrun import commands
from tests.ports import free_ports

ROOT = Path(__file__).resolve().parents[2]

# The sandbox's default directory (sandbox/config.py): its first workplace and first line.
WORKPLACE = "883140000000001"
LINE = "74996497803"
OPERATOR = ("ivanova", "demo-pass-123")
SUPERVISOR = ("boss", "demo-pass-123")
CLIENT_NUMBER = "+79219462761"
CLIENT_NAME = "Ольга Смирнова"


@dataclass
class Stack:
    url: str
    ws_url: str
    notify_url: str
    log: Path
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)


def _env(tmp: Path, port: int, ws_port: int) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mttcrm.settings",
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "VAR_DIR": str(tmp / "var"),
        "DEBUG": "true",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PORT": str(port),
        "WS_PORT": str(ws_port),
        "SITE_URL": f"http://127.0.0.1:{port}",
        "WEBSOCKET_URL": f"ws://127.0.0.1:{ws_port}",
        # Background tasks (if any) go to folders nobody reads, never to a shared Redis queue.
        "CELERY_BROKER_URL": "filesystem://",
        "LOG_LEVEL": "WARNING",
        "LANGUAGE_CODE": "ru",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


def _wait_http(url: str, server: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        if server.poll() is not None:
            raise AssertionError(f"{what} exited:\n{log.read_text(errors='replace')}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not answer:\n{log.read_text(errors='replace')}") from None
            time.sleep(0.2)


@contextmanager
def running_stack(
    tmp: Path, extra_env: dict[str, str] | None = None, processes: Sequence[str] = ("web", "ws", "applier")
) -> Iterator[Stack]:
    """Migrate a fresh database, load the screen-pop data and start the stack's processes."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "var").mkdir(exist_ok=True)
    port, ws_port, sandbox_port = free_ports(3)
    # extra_env: e.g. a private PostgreSQL or Redis for the fault tests (tests/faults/).
    env = {**_env(tmp, port, ws_port), **(extra_env or {})}
    setup = subprocess.run(
        [sys.executable, "-m", "tests.browser.stack"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if setup.returncode != 0:
        raise AssertionError(f"stack setup failed:\n{setup.stdout}\n{setup.stderr}")
    data = json.loads(setup.stdout.strip().splitlines()[-1])
    log = tmp / "stack.log"
    settings = SimpleNamespace(
        PORT=port, WS_PORT=ws_port, SANDBOX_PORT=sandbox_port, VAR_DIR=str(tmp / "var")
    )
    lines = commands(py=sys.executable, settings=settings, web_workers=1)
    base = f"http://127.0.0.1:{port}"
    stack = Stack(
        url=base, ws_url=f"ws://127.0.0.1:{ws_port}", notify_url=base + data["notify_path"], log=log, env=env
    )
    with ExitStack() as cleanup, log.open("ab") as out:
        for name in processes:
            proc = subprocess.Popen(lines[name], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
            stack.processes[name] = proc
            cleanup.callback(_stop, proc)
        if "web" in processes:
            _wait_http(base + "/ping", stack.processes["web"], log, "gunicorn")
        if "ws" in processes:
            _wait_http(f"http://127.0.0.1:{ws_port}/ping", stack.processes["ws"], log, "daphne")
        yield stack


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _setup() -> dict[str, Any]:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from contacts.models import Contact, PhoneNumber
    from integrations.models import ExternalNumber, Integration, Workplace

    call_command("migrate", verbosity=0)
    if "channels" in settings.DATABASES:  # channels-lite's own database (no REDIS_URL)
        call_command("migrate", verbosity=0, database="channels")
    users = get_user_model().objects
    operator = users.create_user(OPERATOR[0], password=OPERATOR[1], first_name="Мария", last_name="Иванова")
    manager = users.create_user("sidorova", password=OPERATOR[1], first_name="Анна", last_name="Сидорова")
    users.create_user(SUPERVISOR[0], password=SUPERVISOR[1], is_staff=True)
    integration = Integration.objects.create(
        name="Sandbox",
        client_id="demo-client",
        client_secret="demo-secret",
        status=Integration.Status.CONNECTED,
    )
    Workplace.objects.create(integration=integration, sip_id=WORKPLACE, name="Иванова Мария", user=operator)
    ExternalNumber.objects.create(integration=integration, number=LINE)
    contact = Contact.objects.create(
        name=CLIENT_NAME,
        company="ООО «Ромашка»",
        notes="Просила перезвонить после обеда.",
        personal_manager=manager,
    )
    PhoneNumber.objects.create(contact=contact, e164=CLIENT_NUMBER, raw=CLIENT_NUMBER)
    return {"notify_path": integration.notify_path}


if __name__ == "__main__":
    print(json.dumps(_setup()))

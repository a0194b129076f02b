"""A real ASGI server for browser tests that need WebSockets: Daphne in a subprocess.

pytest-django's ``live_server`` is WSGI only. Daphne runs here as ``make run`` runs it, in its own
process, on its own SQLite file (the test process's in-memory test database is invisible to another
process), with the channel layer the environment selects: in-memory by default, channels-redis when
REDIS_URL is set (CI). The data the test needs is created by ``python -m tests.browser.asgi_stack``
in that database before the server starts.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

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
    notify_url: str
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp: Path, port: int) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mttcrm.settings",
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "VAR_DIR": str(tmp / "var"),
        "DEBUG": "true",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SITE_URL": f"http://127.0.0.1:{port}",
        # Background tasks (if any) go to folders nobody reads, never to a shared Redis queue.
        "CELERY_BROKER_URL": "filesystem://",
        "LOG_LEVEL": "WARNING",
        "LANGUAGE_CODE": "ru",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


@contextmanager
def running_stack(tmp: Path, extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
    """Migrate a fresh database, load the screen-pop data and serve it with Daphne."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "var").mkdir(exist_ok=True)
    port = _free_port()
    # extra_env: e.g. a private PostgreSQL or Redis for the fault tests (tests/faults/).
    env = {**_env(tmp, port), **(extra_env or {})}
    setup = subprocess.run(
        [sys.executable, "-m", "tests.browser.asgi_stack"],
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
    log = tmp / "daphne.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "mttcrm.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise AssertionError(f"daphne exited:\n{log.read_text(errors='replace')}")
            try:
                requests.get(base + "/healthz", timeout=2)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"daphne did not answer:\n{log.read_text(errors='replace')}"
                    ) from None
                time.sleep(0.2)
        yield Stack(url=base, notify_url=base + data["notify_path"], log=log)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


def _setup() -> dict[str, Any]:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from contacts.models import Contact, PhoneNumber
    from integrations.models import ExternalNumber, Integration, Workplace

    call_command("migrate", verbosity=0)
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

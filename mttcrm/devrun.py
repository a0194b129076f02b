"""`make run`: the same kinds of process as production (docker-compose.yml) on one machine, and the MTT
sandbox.

    web      gunicorn, mttcrm.wsgi — pages, the notify URL, /healthz          http://127.0.0.1:PORT
    ws       Daphne, mttcrm.asgi — the live connections (WEBSOCKET_URL)       ws://127.0.0.1:WS_PORT
    applier  manage.py mtt applier — applies the notifications web stores
    worker   Celery worker — recording downloads, directory syncs
    beat     Celery beat — the periodic tasks
    sandbox  the local stand-in for MTT                                         http://127.0.0.1:SANDBOX_PORT

It migrates, starts them, loads the demo data, prints the URLs, and on Ctrl-C stops them all and exits 0. A
process that exits by itself is started again, as docker compose restarts a container; one that keeps
exiting (more than RESTARTS_ALLOWED times a minute) stops the stack with status 1.

Ctrl-C at a terminal signals the terminal's foreground process group. Under `make run` that group holds
make too, and GNU make, interrupted, kills itself with the same signal (the shell then sees 130, however
cleanly this process stopped). So, at a terminal, this process leads a process group of its own (its
children join it) and makes it the terminal's foreground group while it runs (``terminal_foreground``):
Ctrl-C reaches the stack, make just waits for this process and exits with its status, 0. The terminal goes
back to make's group before this process exits. Ctrl-Z does nothing meanwhile: it would stop the stack
but not make, and the shell would never get the terminal back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
STOP_SECONDS = 10.0
# A process that exits by itself is started again, as docker compose's `restart: unless-stopped` does; one
# that exits this many times within RESTART_WINDOW_SECONDS (a port in use, a broken setting) stops the stack.
RESTARTS_ALLOWED = 3
RESTART_WINDOW_SECONDS = 60.0


def _settings() -> Any:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mttcrm.settings")
    import django  # noqa: PLC0415 - only once the environment above is set

    django.setup()
    from django.conf import settings  # noqa: PLC0415 - needs django.setup()

    return settings


def commands(*, py: str, settings: Any, web_workers: int = 2, appliers: int = 1) -> dict[str, list[str]]:
    """The processes of the stack, as they are started (also used by the browser tests and the benchmarks)."""
    manage = [py, "manage.py"]
    return {
        "sandbox": [*manage, "mtt_sandbox", "--port", str(settings.SANDBOX_PORT)],
        "web": [
            py,
            "-m",
            "gunicorn",
            "mttcrm.wsgi:application",
            "--config",
            "python:mttcrm.gunicorn",
            "--bind",
            f"127.0.0.1:{settings.PORT}",
            "--workers",
            str(web_workers),
            "--threads",
            "4",
        ],
        # -v 0: Daphne's own access log would print raw paths; the WebSocket paths carry no secret, but its
        # lines would not go through our logging (format, masking).
        "ws": [
            py,
            "-m",
            "daphne",
            "-v",
            "0",
            "-b",
            "127.0.0.1",
            "-p",
            str(settings.WS_PORT),
            "mttcrm.asgi:application",
        ],
        **{f"applier{'' if n == 0 else n + 1}": [*manage, "mtt", "applier"] for n in range(appliers)},
        "worker": [py, "-m", "celery", "-A", "mttcrm", "worker", "--loglevel", "INFO", "--concurrency", "2"],
        "beat": [
            py,
            "-m",
            "celery",
            "-A",
            "mttcrm",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(Path(settings.VAR_DIR) / "celerybeat-schedule"),
        ],
    }


@contextlib.contextmanager
def terminal_foreground() -> Iterator[bool]:
    """Lead a new process group and make it the controlling terminal's foreground group (what a shell does
    for a job), then give the terminal back to the group that had it. Yields whether this process leads the
    terminal's foreground group, so that a Ctrl-C reaches it and its children and nothing else: not without
    a terminal (compose, CI, output to a file) nor when started in the background (``make run &``)."""
    try:
        tty = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        yield False
        return
    try:
        previous = os.tcgetpgrp(tty)
        if previous != os.getpgrp():
            yield False
            return
        if previous == os.getpid():  # started by a shell (or as a session leader): the group is ours already
            yield True
            return
        # A background group that sets the terminal's foreground group is sent SIGTTOU: ignored meanwhile.
        old_ttou = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        try:
            os.setpgid(0, 0)
            os.tcsetpgrp(tty, os.getpgrp())
        finally:
            signal.signal(signal.SIGTTOU, old_ttou)
        # Ctrl-Z would stop this group while make, the shell's job, runs on: the shell would never take the
        # terminal back. Ignored instead (the children inherit that), as long as this group holds it.
        old_tstp = signal.signal(signal.SIGTSTP, signal.SIG_IGN)
        try:
            yield True
        finally:
            signal.signal(signal.SIGTSTP, old_tstp)
            old_ttou = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
            try:
                with contextlib.suppress(OSError):  # that group is gone (make killed): the shell takes it
                    os.tcsetpgrp(tty, previous)
            finally:
                signal.signal(signal.SIGTTOU, old_ttou)
    finally:
        os.close(tty)


def websocket_url(environ: Mapping[str, str], *, ws_port: int) -> str:
    """Where the pages open their live connection: Daphne's own port (in compose, a proxy joins the two),
    unless WEBSOCKET_URL says otherwise. Blank is unset, as in the settings: a copied .env.example has it."""
    return environ.get("WEBSOCKET_URL", "").strip() or f"ws://127.0.0.1:{ws_port}"


def main() -> int:
    with terminal_foreground() as foreground:
        return _run(foreground=foreground)


def _run(*, foreground: bool) -> int:
    settings = _settings()
    py = sys.executable
    var_dir = Path(settings.VAR_DIR)
    var_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["WEBSOCKET_URL"] = websocket_url(env, ws_port=settings.WS_PORT)
    # Every process counts its metrics into one folder, added up by /metrics; a new run starts from zero.
    metrics_dir = settings.METRICS_DIR or str(var_dir / "metrics")
    shutil.rmtree(metrics_dir, ignore_errors=True)
    env["METRICS_DIR"] = metrics_dir

    def run_once(*args: str) -> int:
        return subprocess.run([py, "manage.py", *args], cwd=BASE_DIR, env=env, check=False).returncode  # noqa: S603

    if run_once("migrate", "--noinput") != 0:
        return 1
    if "channels" in settings.DATABASES and run_once("migrate", "-v", "0", "--database", "channels") != 0:
        return 1

    procs: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False
    # Ctrl-C at the terminal reaches every process of this group at once and each stops by itself: a second
    # signal from here would cut their shutdown short (Celery beat then prints a traceback). Any other stop
    # (SIGTERM to this process, a process that died) is passed on to each.
    signalled_by_terminal = False

    def wait_all(until: float) -> None:
        for proc in procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, until - time.monotonic()))

    def stop_all() -> None:
        if signalled_by_terminal:
            wait_all(time.monotonic() + STOP_SECONDS / 2)
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        wait_all(time.monotonic() + STOP_SECONDS / 2)
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping, signalled_by_terminal
        signalled_by_terminal = signalled_by_terminal or (foreground and signum == signal.SIGINT)
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for name, cmd in commands(py=py, settings=settings).items():
            procs[name] = subprocess.Popen(cmd, cwd=BASE_DIR, env=env)  # noqa: S603
        if run_once("mtt", "demo", "--sandbox-url", settings.SANDBOX_URL) != 0 and not stopping:
            print("!! Loading the demo data failed; the processes keep running. See the messages above.")
        site = settings.SITE_URL
        if not stopping:
            print(
                "\n"
                "==============================================================================\n"
                f"  mttcrm            {site}/            (operator workspace)\n"
                f"  admin             {site}/admin/\n"
                f"  health            {site}/healthz       (liveness: {site}/ping)\n"
                f"  API (Swagger UI)  {site}/api/docs/\n"
                f"  live connections  {env['WEBSOCKET_URL']}/ws/…   (Daphne: screen pops, the live board)\n"
                f"  MTT sandbox       {settings.SANDBOX_URL}/      (play calls by hand)\n"
                "  logins            admin / admin         (administrator)\n"
                "                    supervisor / demo     (supervisor: live board, reports)\n"
                "                    ivanova / demo, petrov / demo, sidorova / demo  (operators)\n"
                f"  sandbox login     {settings.SANDBOX_LOGIN} / {settings.SANDBOX_PASSWORD}"
                "  (the MTT portal's login page)\n"
                "  Ctrl-C stops everything.\n"
                "==============================================================================\n",
                flush=True,
            )
        exits: dict[str, list[float]] = {name: [] for name in procs}
        while not stopping:
            for name, proc in list(procs.items()):
                if proc.poll() is None or stopping:
                    continue
                now = time.monotonic()
                exits[name] = [t for t in exits[name] if t > now - RESTART_WINDOW_SECONDS] + [now]
                if len(exits[name]) > RESTARTS_ALLOWED:
                    print(
                        f"!! {name} exited with code {proc.returncode}, {len(exits[name])} times within "
                        f"{RESTART_WINDOW_SECONDS:.0f} s; stopping the rest.",
                        flush=True,
                    )
                    return 1
                print(f"!! {name} exited with code {proc.returncode}; starting it again.", flush=True)
                again = commands(py=py, settings=settings)[name]
                procs[name] = subprocess.Popen(again, cwd=BASE_DIR, env=env)  # noqa: S603
            time.sleep(0.5)
        print("\nStopping…", flush=True)
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())

"""`make run`: the same kinds of process as production (docker-compose.yml) on one machine, and the MTT
sandbox.

    web      gunicorn, mttcrm.wsgi — pages, the notify URL, /healthz          http://127.0.0.1:PORT
    ws       Daphne, mttcrm.asgi — the live connections (WEBSOCKET_URL)       ws://127.0.0.1:WS_PORT
    applier  manage.py mtt applier — applies the notifications web stores
    worker   Celery worker — recording downloads, directory syncs
    beat     Celery beat — the periodic tasks
    sandbox  the local stand-in for MTT                                         http://127.0.0.1:SANDBOX_PORT

It migrates, starts them, loads the demo data, prints the URLs, and on Ctrl-C stops them all and exits 0.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
STOP_SECONDS = 10.0


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


def main() -> int:
    settings = _settings()
    py = sys.executable
    var_dir = Path(settings.VAR_DIR)
    var_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # Pages open their live connection at Daphne's own port (in compose, a proxy joins the two).
    env.setdefault("WEBSOCKET_URL", f"ws://127.0.0.1:{settings.WS_PORT}")
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

    def stop_all() -> None:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + STOP_SECONDS
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()

    stopping = False

    def on_signal(*_args: object) -> None:
        nonlocal stopping
        stopping = True

    # Ctrl-C reaches every process of the terminal's group at once: each stops by itself, and this one
    # waits for them, then exits 0 (make then does too).
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
                f"  health            {site}/healthz\n"
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
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"!! {name} exited with code {proc.returncode}; stopping the rest.")
                    return 1
            time.sleep(0.5)
        print("\nStopping…", flush=True)
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())

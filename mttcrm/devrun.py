"""`make run`: start the web server, the Celery worker (with beat) and the MTT sandbox as separate
processes, load the demo data, print the URLs, and stop everything on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mttcrm.settings")
    import django

    django.setup()
    from django.conf import settings

    py = sys.executable
    port = str(settings.PORT)
    sandbox_port = str(settings.SANDBOX_PORT)
    Path(settings.VAR_DIR).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # Web and worker count into one directory, added up by /metrics; a new run starts from zero.
    from mttcrm.metrics import clear_multiprocess_dir

    metrics_dir = settings.PROMETHEUS_MULTIPROC_DIR or str(Path(settings.VAR_DIR) / "metrics")
    Path(metrics_dir).mkdir(parents=True, exist_ok=True)
    clear_multiprocess_dir(metrics_dir)
    env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir

    commands = {
        "sandbox": [py, "manage.py", "mtt_sandbox", "--port", sandbox_port],
        # -v 0: Daphne's access log prints raw paths (the notify URL's token); ours (mttcrm.access) masks.
        "web": [py, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", port, "mttcrm.asgi:application"],
        "worker": [
            py,
            "-m",
            "celery",
            "-A",
            "mttcrm",
            "worker",
            "--beat",
            "--loglevel",
            "INFO",
            "--concurrency",
            "2",
        ],
    }
    if settings.NOTIFY_APPLY_IN == "applier":
        # Only with PostgreSQL and Redis configured (settings refuse it otherwise): as in production.
        commands["applier"] = [py, "manage.py", "mtt", "applier"]
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def stop_all(*_args: object) -> None:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 10
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()

    def on_sigterm(*_args: object) -> None:
        stop_all()
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        for name, cmd in commands.items():
            procs[name] = subprocess.Popen(cmd, cwd=BASE_DIR, env=env)  # noqa: S603
        demo = subprocess.run(  # noqa: S603
            [py, "manage.py", "mtt", "demo", "--sandbox-url", settings.SANDBOX_URL],
            cwd=BASE_DIR,
            env=env,
            check=False,
        )
        if demo.returncode != 0:
            print("!! Loading the demo data failed; the processes keep running. See the messages above.")
        site = settings.SITE_URL
        print(
            "\n"
            "==============================================================================\n"
            f"  mttcrm            {site}/            (operator workspace)\n"
            f"  admin             {site}/admin/\n"
            f"  health            {site}/healthz\n"
            f"  MTT sandbox       {settings.SANDBOX_URL}/      (play calls by hand)\n"
            "  logins            admin / admin         (administrator)\n"
            "                    ivanova / demo, petrov / demo, sidorova / demo  (operators)\n"
            f"  sandbox login     {settings.SANDBOX_LOGIN} / {settings.SANDBOX_PASSWORD}"
            "  (the MTT portal's login page)\n"
            "  Ctrl-C stops everything.\n"
            "==============================================================================\n",
            flush=True,
        )
        while True:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"!! {name} exited with code {proc.returncode}; stopping the rest.")
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopping…")
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())

"""A real Celery worker to kill: its database, its data, its process tree (tests/faults, bench/faults.py).

``python -m tests.faults.worker_stack setup|enqueue|report`` run in the environment of the worker under
test (DATABASE_URL, CELERY_BROKER_URL, MEDIA_ROOT, …):

* ``setup`` migrates, and stores ``--calls`` answered calls as notifications still pending (stored by the
  notify URL, not applied yet) and ``--recordings`` recordings still to download from ``--record-base``
  (the sandbox);
* ``enqueue`` sends a ``download_recording`` task per pending recording;
* ``report`` prints, as JSON, what a fault run checks: notifications per status, CallEvents per
  notification, recordings per status, the files in MEDIA_ROOT (partial ones included).

``python -m tests.faults.worker_stack worker`` starts the worker itself, and ``… applier`` the applier
process (integrations/applier.py), with one addition when ``FAULTS_APPLY_DELAY`` is set: applying a call
notification sleeps that long inside its transaction, after touching
``$FAULTS_MARK_DIR/apply-<notification>-<pid>``, so that a kill lands mid-apply.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


# --- process tree ----------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (the prefork pool's processes of a worker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid …: comm may hold spaces and parentheses, so split after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def start_worker(env: dict[str, str], log: Path, *, concurrency: int = 2) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.faults.worker_stack", "worker", "--concurrency", str(concurrency)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killpg takes the pool with it
        )


def wait_ready(log: Path, since: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if b" ready." in log.read_bytes()[since:]:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the worker did not start:\n{log.read_text(errors='replace')[-3000:]}")


def kill_worker(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker and its pool at once (a container killed, the OOM killer on the group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            kill_worker(process)


def run(env: dict[str, str], *args: str) -> Any:
    result = subprocess.run(
        [sys.executable, "-m", "tests.faults.worker_stack", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"worker_stack {args[0]} failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- inside the stack's environment -----------------------------------------------------------------


def _setup(calls: int, recordings: int, record_base: str) -> dict[str, Any]:
    from django.core.management import call_command
    from django.utils import timezone

    from calls.models import Call, Recording
    from calls.recordings.storage import recording_storage_key
    from integrations.inbox import notification_store
    from integrations.models import Integration
    from integrations.mtt.notifications import parse_body
    from tests.calls.payloads import incoming_answered

    call_command("migrate", verbosity=0)
    integration = Integration.objects.create(name="Faults", client_id="faults", client_secret="faults")
    for _ in range(calls):
        for body in incoming_answered(base=uuid.uuid4().hex + "_00015ED635780FC7"):
            envelope = parse_body(json.dumps(body).encode())
            notification_store(integration_id=integration.pk, envelope=envelope)
    now = timezone.now()
    for index in range(recordings):
        url = f"{record_base}/records/faults/{index}-{uuid.uuid4().hex[:8]}.mp3"
        call = Call.objects.create(integration=integration, call_key=f"faults-rec-{index}")
        Recording.objects.create(
            integration=integration,
            call=call,
            leg_call_id=f"faults-rec-{index}",
            source_url=url,
            storage_key=recording_storage_key(received_at=now, name=call.call_key, source_url=url),
            mtt_expires_at=now + timezone.timedelta(days=90),
        )
    return {"integration": integration.pk}


def _enqueue() -> dict[str, Any]:
    from calls.models import Recording
    from calls.tasks import download_recording

    recordings = list(Recording.objects.filter(status=Recording.Status.PENDING).values_list("pk", flat=True))
    for pk in recordings:
        download_recording.delay(pk)
    return {"recordings": len(recordings)}


def _report() -> dict[str, Any]:
    from django.conf import settings
    from django.db.models import Count

    from calls.models import CallEvent, Recording
    from integrations.models import NotificationEvent

    events = dict(
        NotificationEvent.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n")
    )
    per_notification = list(
        CallEvent.objects.values("notification_id").annotate(n=Count("pk")).values_list("n", flat=True)
    )
    recordings = dict(
        Recording.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n")
    )
    media = Path(settings.MEDIA_ROOT)
    files = (
        sorted(str(p.relative_to(media)) for p in media.rglob("*") if p.is_file()) if media.exists() else []
    )
    stored_ok = all(
        (media / key).exists() and (media / key).stat().st_size == size
        for key, size in Recording.objects.filter(status=Recording.Status.STORED).values_list(
            "storage_key", "size"
        )
    )
    return {
        "notifications": events,
        "call_events": len(per_notification),
        "call_events_doubled": sum(1 for n in per_notification if n > 1),
        "recordings": recordings,
        "mp3_files": sum(1 for f in files if f.endswith(".mp3") and not Path(f).name.startswith(".")),
        "partial_files": [f for f in files if f.endswith(".part")],
        "stored_files_complete": stored_ok,
    }


def _worker(concurrency: int) -> None:
    import django

    django.setup()
    from mttcrm.celery import app

    app.worker_main(
        [
            "worker",
            "--loglevel",
            "INFO",
            "--pool",
            "prefork",
            "--concurrency",
            str(concurrency),
            "--hostname",
            f"faults-{uuid.uuid4().hex[:6]}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
    )


def _slow_apply() -> None:
    """Fault injection (this test process only): a call notification's apply sleeps inside its transaction,
    after leaving a mark, so that a kill lands mid-apply."""
    delay = float(os.environ.get("FAULTS_APPLY_DELAY") or 0)
    if delay <= 0:
        return
    from integrations import applier

    marks = Path(os.environ.get("FAULTS_MARK_DIR") or ".")
    real = applier.call_apply_notification

    def slow_apply(*, event: Any) -> str:
        status = real(event=event)
        (marks / f"apply-{event.pk}-{os.getpid()}").touch()
        time.sleep(delay)
        return status

    applier.call_apply_notification = slow_apply


def _applier() -> None:
    """The applier process (integrations/applier.py), with the slow-apply hook of FAULTS_APPLY_DELAY."""
    import threading

    import django

    django.setup()
    _slow_apply()
    from integrations.applier import Applier

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_args: stop.set())
    print("applier ready", flush=True)
    Applier(stop=stop).run()


def start_applier(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.faults.worker_stack", "applier"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mttcrm.settings")
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="action", required=True)
    setup = sub.add_parser("setup")
    setup.add_argument("--calls", type=int, default=4)
    setup.add_argument("--recordings", type=int, default=2)
    setup.add_argument("--record-base", required=True)
    sub.add_parser("enqueue")
    sub.add_parser("report")
    worker = sub.add_parser("worker")
    worker.add_argument("--concurrency", type=int, default=2)
    sub.add_parser("applier")
    args = parser.parse_args()
    if args.action == "worker":
        _worker(args.concurrency)
        return
    if args.action == "applier":
        _applier()
        return
    import django

    django.setup()
    if args.action == "setup":
        result = _setup(args.calls, args.recordings, args.record_base)
    elif args.action == "enqueue":
        result = _enqueue()
    else:
        result = _report()
    print(json.dumps(result))


if __name__ == "__main__":
    main()

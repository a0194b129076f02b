"""bench/faults.py's scenario 3: the Celery worker SIGKILLed mid-download (its pool, then the whole
worker, started again)."""

from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

from faultstack import (
    BENCH_ENV,
    MP3_BYTES,
    wait_for,
)

from sandbox.testing import running_sandbox
from tests.faults import worker_stack
from tests.faults.servers import PrivatePostgres, PrivateRedis

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

"""A real Celery worker (private Redis broker, private PostgreSQL) whose pool processes are SIGKILLed in
the middle of downloading recordings.

``acks_late`` + ``reject_on_worker_lost``: the killed task's message goes back to the queue and runs
again; the download is idempotent (the recording's claim, taken back by the same task id, and its file
written under a temporary name and renamed): every task completes once, no partial file is left in
MEDIA_ROOT, no row is doubled. The applier killed mid-apply is tests/faults/test_applier_killed.py; killing
the whole worker (and the restart after the broker's visibility timeout) is the longer run in bench/faults.py.
"""

from __future__ import annotations

import os
import re
import signal
import uuid
from collections import Counter
from pathlib import Path

import pytest

from sandbox.testing import running_sandbox
from tests.waiting import wait_until

from . import worker_stack
from .servers import PrivatePostgres, PrivateRedis

pytestmark = pytest.mark.faults

MP3_BYTES = (Path(__file__).resolve().parents[2] / "sandbox" / "static" / "recording.mp3").stat().st_size


def test_pool_processes_killed_mid_download_every_download_completes_once(
    postgres: PrivatePostgres, redis_server: PrivateRedis, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    log = tmp_path / "worker.log"
    with running_sandbox() as sandbox:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "mttcrm.settings",
            "DATABASE_URL": postgres.create_database(f"mttcrm_faults_{uuid.uuid4().hex[:8]}"),
            "REDIS_URL": redis_server.url(3),
            "CELERY_BROKER_URL": redis_server.url(3),
            "VAR_DIR": str(tmp_path / "var"),
            "MEDIA_ROOT": str(media),
            "DEBUG": "true",
            "SANDBOX_URL": sandbox.url,
            "RECORDINGS_ALLOW_SANDBOX": "true",
            "RECORDINGS_ALLOW_HTTP": "true",
            "LOG_LEVEL": "INFO",
        }
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        worker_stack.run(env, "setup", "--calls", "0", "--recordings", "2", "--record-base", sandbox.url)
        # The first two downloads trickle (about 4 s each): the kill lands while they are written.
        sandbox.control("POST", "faults", {"path": "/records/*", "rate": MP3_BYTES // 4, "count": 2})
        worker = worker_stack.start_worker(env, log)
        try:
            worker_stack.wait_ready(log, 0)
            queued = worker_stack.run(env, "enqueue")
            assert queued == {"recordings": 2}

            # Mid-download: the temporary files exist, nothing is published yet.
            wait_until(lambda: list(media.rglob("*.part")), 60, "a download under way", log)
            pool = worker_stack.children(worker.pid)
            assert pool, "no pool processes"
            for pid in pool:
                os.kill(pid, signal.SIGKILL)

            report = wait_until(
                lambda: r if (r := worker_stack.run(env, "report"))["recordings"] == {"stored": 2} else None,
                180,
                "every task to complete",
                log,
            )
        finally:
            worker_stack.stop_worker(worker)

    assert report["partial_files"] == []
    assert report["mp3_files"] == 2 and report["stored_files_complete"] is True
    text = log.read_text(errors="replace")
    assert "WorkerLostError" in text
    # Each task succeeded exactly once, the killed ones included (delivered again under the same id).
    succeeded = Counter(re.findall(r"Task (\S+\[[0-9a-f-]+\]) succeeded", text))
    assert sum(1 for name in succeeded if name.startswith("calls.tasks.download_recording")) == 2
    assert set(succeeded.values()) == {1}

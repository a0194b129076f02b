"""The applier process SIGKILLed in the middle of applying a batch of notifications.

Its transaction dies with it: the rows it had claimed are still pending and nothing of the apply was
written. The next applier finds them pending and applies them; every notification ends applied once, one
CallEvent each. Private PostgreSQL (LISTEN/NOTIFY, FOR UPDATE SKIP LOCKED).
"""

from __future__ import annotations

import os
import signal
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.waiting import wait_until

from . import worker_stack
from .servers import PrivatePostgres, PrivateRedis

pytestmark = pytest.mark.faults


def test_applier_killed_mid_apply_the_next_one_applies_every_notification_once(
    postgres: PrivatePostgres, redis_server: PrivateRedis, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    log = tmp_path / "applier.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mttcrm.settings",
        "DATABASE_URL": postgres.create_database(f"mttcrm_applier_{uuid.uuid4().hex[:8]}"),
        "REDIS_URL": redis_server.url(4),
        "CELERY_BROKER_URL": redis_server.url(4),
        "VAR_DIR": str(tmp_path / "var"),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "DEBUG": "true",
        "FAULTS_APPLY_DELAY": "1",
        "FAULTS_MARK_DIR": str(marks),
        "LOG_LEVEL": "INFO",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    # Two answered calls stored and not applied (as if every web process had just answered MTT).
    worker_stack.run(env, "setup", "--calls", "2", "--recordings", "0", "--record-base", "http://127.0.0.1:9")
    assert worker_stack.run(env, "report")["notifications"] == {"pending": 12}

    first = worker_stack.start_applier(env, log)
    try:
        mark = wait_until(lambda: sorted(marks.glob("apply-*")), 60, "an apply under way", log)[0]
        killed_notification = mark.name.split("-")[1]
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        report = worker_stack.run(env, "report")
        # The killed transaction wrote nothing: its row is pending again, no CallEvent for it.
        assert report["notifications"].get("applied", 0) == report["call_events"]
        assert report["notifications"]["pending"] >= 1
    finally:
        worker_stack.kill_worker(first)

    second = worker_stack.start_applier(env, log)
    try:
        report = wait_until(
            lambda: r if (r := worker_stack.run(env, "report"))["notifications"] == {"applied": 12} else None,
            120,
            "every notification applied",
            log,
        )
    finally:
        worker_stack.stop_worker(second)
    assert report["call_events"] == 12 and report["call_events_doubled"] == 0
    applied = Counter(m.name.split("-")[1] for m in marks.glob("apply-*"))
    assert applied[killed_notification] == 2  # begun by the killed applier, done by the next one
    assert set(applied.values()) <= {1, 2}

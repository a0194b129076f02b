"""Redis stopped under the running stack (gunicorn, Daphne, an applier) whose channel layer, Celery broker
and MTT limiter all use it (a private Redis; a few seconds — the 30 s outage is bench/faults.py).

Notifications are still stored and applied (the applier needs only the database; a push or a task that
cannot be sent is logged, never an error of the notification), and in the browser the workspace's
socket reconnects with backoff once Redis is back and resyncs its cards from /calls/active.json
(tests/browser/test_faults_redis.py).
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.browser.stack import running_stack
from tests.calls.payloads import incoming_answered, note
from tests.faults.servers import redis_env
from tests.waiting import wait_until

from .servers import PrivateRedis

pytestmark = pytest.mark.faults


def query(stack_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(stack_dir / "db.sqlite3") as conn:
        return conn.execute(sql).fetchall()


def test_notifications_are_stored_and_applied_while_redis_is_down(
    redis_server: PrivateRedis, tmp_path: Path
) -> None:
    stack_dir = tmp_path / "stack"
    notes = incoming_answered(base=uuid.uuid4().hex + "_00015ED635780FC7")
    recorded = note(
        notes[-1]["result"]["callInfo"]["call"]["id"],
        "recorded",
        type="incoming",
        caller=notes[-1]["result"]["callInfo"]["caller"],
        callee=notes[-1]["result"]["callInfo"]["callee"],
    )
    recorded["result"]["callInfo"]["urlRecord"] = "https://records.mtt.ru/r/one.mp3"
    with running_stack(stack_dir, extra_env=redis_env(redis_server)) as stack:
        assert requests.get(stack.url + "/healthz", timeout=30).json()["ok"] is True
        redis_server.stop()
        try:
            answers = [requests.post(stack.notify_url, json=body, timeout=30) for body in [*notes, recorded]]
            health = requests.get(stack.url + "/healthz", timeout=30).json()
            wait_until(
                lambda: (
                    query(
                        stack_dir,
                        "SELECT count(*) FROM integrations_notificationevent WHERE status = 'applied'",
                    )
                    == [(len(notes) + 1,)]
                ),
                60,
                "the applier to apply them all, Redis or not",
                stack.log,
            )
        finally:
            redis_server.start()
        # Stored (not spooled: the database is fine) and acknowledged.
        assert [a.status_code for a in answers] == [200] * len(answers)
        assert all("id" in a.json() for a in answers), [a.json() for a in answers]
        assert health["checks"]["database"]["ok"] is True
        assert health["checks"]["channel_layer"]["ok"] is False and health["checks"]["broker"]["ok"] is False

        applied = query(
            stack_dir, "SELECT status, count(*) FROM integrations_notificationevent GROUP BY status"
        )
        assert applied == [("applied", len(notes) + 1)]
        assert query(stack_dir, "SELECT status FROM calls_call") == [("answered",)]
        # The recording is registered; its download task could not be queued: the sweep queues it later.
        assert query(stack_dir, "SELECT status FROM calls_recording") == [("pending",)]
        wait_until(lambda: requests.get(stack.url + "/healthz", timeout=30).json()["ok"], 60, "healthz ok")
        log = stack.log.read_text(errors="replace")
        assert "Screen pop: push" in log

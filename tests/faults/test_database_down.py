"""PostgreSQL stopped under the running stack (gunicorn, Daphne, an applier; a private cluster; short outage —
the 30 s one is bench/faults.py): pages answer a friendly 503, the notify URL spools, and once PostgreSQL is
back the applier stores what was spooled — every notification stored and applied exactly once."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from tests.browser.stack import OPERATOR, running_stack
from tests.calls.payloads import incoming_answered
from tests.waiting import wait_until

from .servers import PrivatePostgres

pytestmark = pytest.mark.faults


def log_in(base: str) -> requests.Session:
    session = requests.Session()
    form = session.get(base + "/accounts/login/", timeout=30).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    assert token, "no CSRF token on the login page"
    response = session.post(
        base + "/accounts/login/",
        data={"username": OPERATOR[0], "password": OPERATOR[1], "csrfmiddlewaretoken": token.group(1)},
        headers={"Referer": base + "/accounts/login/"},
        timeout=30,
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text[:500]
    return session


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url.replace("postgres://", "postgresql://")) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def spooled(stack_dir: Path) -> list[Path]:
    return sorted((stack_dir / "var" / "spool").glob("*.json"))


def test_postgres_down_pages_503_and_notifications_spooled_then_applied_once(
    postgres: PrivatePostgres, tmp_path: Path
) -> None:
    db_url = postgres.create_database(f"mttcrm_faults_{uuid.uuid4().hex[:8]}")
    stack_dir = tmp_path / "stack"
    base_call = uuid.uuid4().hex + "_00015ED635780FC7"
    notes = incoming_answered(base=base_call)
    with running_stack(stack_dir, extra_env={"DATABASE_URL": db_url, "LOG_LEVEL": "INFO"}) as stack:
        operator = log_in(stack.url)
        assert operator.get(stack.url + "/", timeout=30).status_code == 200
        # One notification before the outage: stored and applied as usual.
        first = requests.post(stack.notify_url, json=notes[0], timeout=30)
        assert first.json()["ok"] is True and "id" in first.json()

        postgres.stop()
        try:
            page = operator.get(stack.url + "/", timeout=30)
            assert page.status_code == 503
            assert page.headers["Retry-After"]
            assert 'lang="ru"' in page.text and "Traceback" not in page.text
            active = operator.get(stack.url + "/calls/active.json", timeout=30)
            assert active.status_code == 503 and active.json()["ok"] is False
            health = requests.get(stack.url + "/healthz", timeout=30)
            assert health.status_code == 503 and health.json()["checks"]["database"]["ok"] is False

            answers = [requests.post(stack.notify_url, json=body, timeout=30) for body in notes[1:]]
            # MTT (or its mobile app) sends one twice; and one arrives for a notify URL that does not exist.
            answers.append(requests.post(stack.notify_url, json=notes[2], timeout=30))
            unknown = stack.url + "/mtt/" + "u" * 43 + "/"
            answers.append(requests.post(unknown, json=notes[1], timeout=30))
            assert [a.status_code for a in answers] == [200] * len(answers)
            assert all(a.json() == {"ok": True, "spooled": True} for a in answers)
            assert len(spooled(stack_dir)) == len(answers)
        finally:
            postgres.start()

        # The applier finds PostgreSQL again (it backs off and retries) and stores the spool by itself.
        wait_until(lambda: not spooled(stack_dir), 90, "the spool to be replayed")
        wait_until(lambda: operator.get(stack.url + "/", timeout=30).status_code == 200, 60, "pages again")
        wait_until(
            lambda: (
                rows(db_url, "SELECT count(*) FROM integrations_notificationevent WHERE status = 'pending'")
                == [(0,)]
            ),
            60,
            "the applier to apply everything",
        )

        statuses = rows(db_url, "SELECT status, count(*) FROM integrations_notificationevent GROUP BY status")
        assert statuses == [("applied", len(notes))]
        per_notification = rows(
            db_url, "SELECT notification_id, count(*) FROM calls_callevent GROUP BY notification_id"
        )
        assert len(per_notification) == len(notes) and {n for _id, n in per_notification} == {1}
        [(call_status,)] = rows(db_url, "SELECT status FROM calls_call")
        assert call_status == "answered"
        rejected = list((stack_dir / "var" / "spool" / "rejected").glob("*.json"))
        assert len(rejected) == 1
        assert json.loads(rejected[0].read_bytes())["token"] == "u" * 43

        # A notification delivered again after the outage is a duplicate: nothing doubles.
        again = requests.post(stack.notify_url, json=notes[3], timeout=30)
        assert again.json()["duplicate"] is True
        log = stack.log.read_text(errors="replace")
        assert "Notification spooled" in log and "Notification spool replayed" in log
        assert stack.notify_url.rsplit("/", 2)[-2] not in log  # the token never reaches the log

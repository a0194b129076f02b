"""`python manage.py mtt health`: the facts, the warnings and the exit codes."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DatabaseError
from django.utils import timezone

from integrations.models import Integration, NotificationEvent
from monitoring import report
from monitoring.models import HealthWarning
from tests.monitoring.factories import notification, request_log


def run(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("mtt", "health", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


@pytest.fixture
def healthy(integration: Integration) -> Integration:
    now = timezone.now()
    Integration.objects.filter(pk=integration.pk).update(
        last_notification_at=now, tokens_refreshed_at=now - timedelta(minutes=5)
    )
    notification(integration, received_at=now - timedelta(minutes=3))
    request_log(integration, method="getWorkplaces", at=now - timedelta(minutes=4), wait_ms=120)
    request_log(integration, method="makeCall", at=now - timedelta(minutes=2), ok=False)
    integration.refresh_from_db()
    return integration


def test_all_good_exits_0_and_prints_the_facts(healthy: Integration) -> None:
    code, out, err = run()
    assert code == 0 and err == ""
    assert out.startswith(f"Test (id {healthy.pk})")
    assert "connection status" in out and "Connected (connected)" in out
    assert "notifications in the last hour" in out
    assert re.search(r"MTT requests in the last hour +2, errors 1\n", out)
    assert re.search(r"limiter waits in the last hour +1, 120 ms in all, longest 120 ms\n", out)
    assert re.search(r"calls ended with no final notification, last 24 h +0\n", out)
    assert "getWorkplaces: 1 requests, 0 errors, 1 limiter waits (120 ms)" in out
    assert "makeCall: 1 requests, 1 errors" in out
    assert "warnings: none" in out
    assert out.rstrip().endswith("OK: nothing needs a person.")


def test_a_warning_exits_1_and_says_what(healthy: Integration) -> None:
    Integration.objects.filter(pk=healthy.pk).update(status=Integration.Status.NEEDS_RECONNECT)
    code, out, _err = run()
    assert code == 1
    assert "WARNING [needs_reconnect]" in out
    assert out.rstrip().endswith("Something needs a person (exit 1).")


def test_open_episode_recorded_by_beat_is_shown(healthy: Integration) -> None:
    notification(
        healthy, received_at=timezone.now() - timedelta(minutes=30), status=NotificationEvent.Status.PENDING
    )
    opened = timezone.now() - timedelta(minutes=15)
    HealthWarning.objects.create(
        integration=healthy, kind=HealthWarning.Kind.INBOX_BACKLOG, opened_at=opened, last_seen_at=opened
    )
    code, out, _err = run()
    assert code == 1
    assert "WARNING [inbox_backlog] 1 notification has waited more than 10 min" in out
    assert "(open since " in out
    # Read-only: nothing new recorded, no mail.
    assert HealthWarning.objects.count() == 1


def test_json(healthy: Integration) -> None:
    Integration.objects.filter(pk=healthy.pk).update(
        refresh_token_expires_at=timezone.now() + timedelta(hours=3)
    )
    code, out, _err = run("--json")
    assert code == 1
    data = json.loads(out)
    assert data["status"] == "warning" and data["exit_code"] == 1
    [item] = data["integrations"]
    assert item["name"] == "Test" and item["status"] == "connected"
    assert item["notifications_last_hour"] == 1
    assert item["requests_last_hour"] == 2 and item["errors_last_hour"] == 1
    assert [m["method"] for m in item["by_method"]] == ["getWorkplaces", "makeCall"]
    assert item["quiet_for_seconds"] is not None and item["quiet_for_seconds"] < 60
    assert [w["kind"] for w in item["warnings"]] == ["refresh_token_expiring"]
    assert item["refresh_token_expires_at"].startswith(str(timezone.now().year))


def test_json_all_good(healthy: Integration) -> None:
    code, out, _err = run("--json")
    assert code == 0 and json.loads(out)["status"] == "ok"


def test_one_integration_by_id_or_name(healthy: Integration) -> None:
    other = Integration.objects.create(
        name="Broken",
        client_id="c",
        client_secret="s",
        status=Integration.Status.NEEDS_RECONNECT,
        last_notification_at=timezone.now(),
    )
    assert run()[0] == 1
    assert run("--integration", str(healthy.pk))[0] == 0
    assert run("--integration", "Test")[0] == 0
    code, out, _err = run("--integration", str(other.pk))
    assert code == 1 and out.startswith("Broken")


def test_nothing_configured_exits_2(db: Any) -> None:
    code, out, err = run()
    assert (code, out) == (2, "")
    assert "No integration is configured" in err


def test_never_connected_exits_2(db: Any) -> None:
    Integration.objects.create(name="New", client_id="c", client_secret="s")
    code, _out, err = run()
    assert code == 2 and "No integration has been connected yet" in err


def test_not_connected_ones_are_listed_not_checked(healthy: Integration) -> None:
    Integration.objects.create(name="New", client_id="c", client_secret="s")
    code, out, _err = run()
    assert code == 0 and "New: not connected, not checked" in out


def test_unknown_integration_exits_2(healthy: Integration) -> None:
    code, _out, err = run("--integration", "999999")
    assert code == 2 and "No integration '999999'" in err
    assert run("--integration", "Nope")[0] == 2


def test_database_error_exits_2(healthy: Integration, monkeypatch: Any) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise DatabaseError("connection refused")

    monkeypatch.setattr(report, "integration_health", broken)
    code, _out, err = run()
    assert code == 2 and "Cannot read the database: connection refused" in err


def test_help_documents_the_exit_codes() -> None:
    from integrations.management.commands.mtt import Command

    parser = Command().create_parser("manage.py", "mtt")
    sub = next(a for a in parser._actions if a.dest == "action")
    text = sub.choices["health"].format_help()  # type: ignore[attr-defined]
    assert "0: all good" in text and "1: a warning needs a person" in text and "2: nothing to check" in text

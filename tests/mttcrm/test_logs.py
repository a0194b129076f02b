"""Structured logs (LOG_FORMAT=json), the access log, and secrets kept out of every log line."""

from __future__ import annotations

import io
import json
import logging
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from integrations.models import Integration
from mttcrm import logs
from tests.conftest import load_fixture
from tests.mttcrm.settings_probe import fresh_env, run_python


class Capture(logging.Handler):
    """Formats every record the way the console handler would, keeping the lines."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(formatter)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def json_lines() -> Iterator[list[str]]:
    capture = Capture(logs.JsonFormatter())
    root = logging.getLogger()
    django_logger = logging.getLogger("django")  # does not propagate to the root (settings.LOGGING)
    previous = root.level
    root.addHandler(capture)
    django_logger.addHandler(capture)
    root.setLevel(logging.INFO)
    try:
        yield capture.lines
    finally:
        root.removeHandler(capture)
        django_logger.removeHandler(capture)
        root.setLevel(previous)


def test_a_json_line_has_time_level_logger_message_and_extra_fields(json_lines: list[str]) -> None:
    logging.getLogger("integrations.views").warning(
        "Integration %s: something", 7, extra={"integration_id": 7, "call_id": 42}
    )
    (line,) = json_lines
    assert "\n" not in line
    record = json.loads(line)
    assert record["level"] == "WARNING"
    assert record["logger"] == "integrations.views"
    assert record["message"] == "Integration 7: something"
    assert record["integration_id"] == 7 and record["call_id"] == 42
    assert datetime.fromisoformat(record["time"]).utcoffset() is not None  # ISO 8601 with a zone


def test_a_traceback_stays_inside_the_one_line(json_lines: list[str]) -> None:
    try:
        raise ValueError("bad value")
    except ValueError:
        logging.getLogger("x").exception("failed")
    (line,) = json_lines
    record = json.loads(line)
    assert "ValueError: bad value" in record["exc_info"]


def test_fields_bound_with_log_context_join_every_line(json_lines: list[str]) -> None:
    with logs.log_context(task="calls.tasks.download_recording", task_id="abc"):
        logging.getLogger("x").info("inside")
    logging.getLogger("x").info("outside")
    inside, outside = (json.loads(line) for line in json_lines)
    assert inside["task_id"] == "abc"
    assert "task_id" not in outside


@pytest.mark.django_db
def test_notify_path_logs_carry_the_integration_and_never_the_token(
    client: Client, integration: Integration, json_lines: list[str]
) -> None:
    token = integration.notify_token
    assert (
        client.post(integration.notify_path, data=b"not json", content_type="application/json").status_code
        == 200
    )
    refused_length = client.generic(
        "POST", integration.notify_path, b"{}", content_type="application/json", CONTENT_LENGTH="12abc"
    )
    assert refused_length.status_code == 400
    assert client.put(integration.notify_path, data=b"{}").status_code == 405
    ok = client.post(
        integration.notify_path,
        data=json.dumps(load_fixture("notifications/01_incoming_trying.json")),
        content_type="application/json",
    )
    assert ok.status_code == 200
    assert client.get(f"{integration.notify_path}?code=the-code&state=the-state").status_code == 403
    records = [json.loads(line) for line in json_lines]
    for words in ("notification refused", "stored as ignored"):
        logged = [r for r in records if words in r["message"]]
        assert logged and logged[0]["integration_id"] == integration.pk
    # Django's own request warnings print the path ("Bad Request: /mtt/…/"): masked.
    assert any(r["logger"] == "django.request" and "/mtt/***/" in r["message"] for r in records), records
    for line in json_lines:
        assert token not in line
        assert "the-code" not in line and "the-state" not in line


def test_the_text_format_masks_too() -> None:
    formatter = logs.TextFormatter()
    record = logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1, "Bad Request: %s", ("/mtt/Zq9-secret_tok/",), None
    )
    line = formatter.format(record)
    assert "Zq9-secret_tok" not in line
    assert line.endswith("WARNING django.request: Bad Request: /mtt/***/")


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("POST /mtt/aB3_x-9ZkLmNoPqRsTuVwXyZ0123456789abcdefg/ 400", "aB3_x-9ZkLm"),
        ("GET /mtt/sometoken/?code=abc123&state=xyz HTTP/1.1", "abc123"),
        ("https://crm.example.com/mtt/sometoken", "sometoken"),
        ("Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi"),
        ('{"access_token": "at-123", "refresh_token":"rt-456"}', "at-123"),
        ('{"access_token": "at-123", "refresh_token":"rt-456"}', "rt-456"),
        ("client_secret=s3cr3t&grant_type=refresh_token", "s3cr3t"),
        ('127.0.0.1 "GET /accounts/reset/MQ/cz5k2b-4f0e1d2c3b4a59687766554433221100/" 302', "cz5k2b-4f0e"),
        ("/accounts/reset/Mw/d9b1x0-aa11bb22cc33dd44ee55ff66aa77bb88", "d9b1x0-aa11"),
        ("Authorization: Token mttcrm_Qm9vX1RoaXNJc0FUb2tlbg", "Qm9vX1RoaXNJc0"),
        ("GET /api/v1/calls/?token=mttcrm_Qm9vX1RoaXNJc0FUb2tlbg", "Qm9vX1RoaXNJc0"),
        ("secret whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo= rejected", "QUJDREVGR0hJSktM"),
        ("Max retries exceeded with url: /hook?token=Zx81-secret&x=1 (Caused by", "Zx81-secret"),
        ("https://erp.example.com/in?tenant=5&api_key=AKIA-123", "AKIA-123"),
    ],
)
def test_secrets_are_masked(text: str, secret: str) -> None:
    masked = logs.mask_secrets(text)
    assert secret not in masked
    assert logs.MASK in masked


@pytest.mark.parametrize(
    "text",
    [
        "MTT makeCall failed: HTTP 400 at https://openapi.mtt.ru/makeCall (call 12)",
        # After Django's own redirect the token is in the session, not the path: nothing to mask.
        '127.0.0.1 "GET /accounts/reset/MQ/set-password/" 200',
        '127.0.0.1 "GET /accounts/reset/done/" 200',
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert logs.mask_secrets(text) == text


@pytest.mark.django_db
def test_the_access_log_masks_a_password_reset_token(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mttcrm.access")
    client.get("/accounts/reset/MQ/cz5k2b-4f0e1d2c3b4a59687766554433221100/")
    (record,) = [r for r in caplog.records if r.name == "mttcrm.access"]
    assert record.path == "/accounts/reset/MQ/***/"  # type: ignore[attr-defined]
    for formatter in (logs.TextFormatter(), logs.JsonFormatter()):
        assert "cz5k2b" not in formatter.format(record)


# --- the access log -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_access_log_masks_the_path_has_the_fields_and_the_client_behind_the_proxy(
    client: Client, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    caplog.set_level(logging.INFO, logger="mttcrm.access")
    client.post("/mtt/the-secret-token/", "{}", content_type="application/json", REMOTE_ADDR="10.0.0.1",
                HTTP_X_FORWARDED_FOR="203.0.113.7")  # fmt: skip
    (record,) = [r for r in caplog.records if r.name == "mttcrm.access"]
    assert record.path == "/mtt/***/"  # type: ignore[attr-defined]
    assert (record.method, record.status) == ("POST", 404)  # type: ignore[attr-defined]
    # The client, not the proxy in front (issue 18, probe 7).
    assert record.client == "203.0.113.7"  # type: ignore[attr-defined]
    line = logs.JsonFormatter().format(record)
    assert "the-secret-token" not in line
    assert json.loads(line)["duration_ms"] >= 0


@pytest.mark.django_db
def test_an_expected_4xx_keeps_its_line_but_not_a_traceback(
    client: Client, operator_user: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """make run starts quietly: Django logs a PermissionDenied with its traceback; ours drops it."""
    handler = logging.StreamHandler(io.StringIO())
    handler.addFilter(logs.NoTracebackBelow500())
    handler.setFormatter(logs.TextFormatter())
    logging.getLogger("django.request").addHandler(handler)
    try:
        client.force_login(operator_user)
        assert client.get("/calls/live/").status_code == 403
    finally:
        logging.getLogger("django.request").removeHandler(handler)
    output = handler.stream.getvalue()
    assert "Forbidden" in output
    assert "Traceback" not in output


# --- the whole configuration, as a process starts it ----------------------------------------------------


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_python(code, fresh_env(env, without=("DATABASE_URL",)), timeout=60)


def test_log_format_json_configures_every_line_as_json(tmp_path: Path) -> None:
    code = (
        "import django, logging; django.setup()\n"
        "logging.getLogger('integrations.views').warning('Integration %s: refused', 3, "
        "extra={'integration_id': 3})\n"
        "logging.getLogger('django.request').warning('Bad Request: %s', '/mtt/tok-tok-tok/')\n"
    )
    result = _run(code, LOG_FORMAT="json", VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    mine = [r for r in lines if r["logger"] in ("integrations.views", "django.request")]
    assert [r["message"] for r in mine] == ["Integration 3: refused", "Bad Request: /mtt/***/"]
    assert mine[0]["integration_id"] == 3
    assert "tok-tok-tok" not in result.stderr


def test_log_format_text_is_the_default(tmp_path: Path) -> None:
    result = _run(
        "import django, logging; django.setup(); logging.getLogger('x').warning('hello')",
        VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith("WARNING x: hello")


def test_an_unknown_log_format_is_refused(tmp_path: Path) -> None:
    result = _run("import django; django.setup()", LOG_FORMAT="xml", VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "LOG_FORMAT must be text or json" in result.stderr


def test_celery_keeps_django_logging_and_tags_task_lines(json_lines: list[str]) -> None:
    from celery import signals

    import mttcrm.celery  # noqa: F401 - connects the receivers

    assert signals.setup_logging.receivers, "Celery would replace the root logger's handlers"

    class FakeTask:
        name = "calls.tasks.download_recording"

    signals.task_prerun.send(sender=FakeTask, task_id="t-1", task=FakeTask(), args=(), kwargs={})
    logging.getLogger("calls.recordings.services").info("Recording 5 stored")
    signals.task_postrun.send(
        sender=FakeTask, task_id="t-1", task=FakeTask(), args=(), kwargs={}, retval=None
    )
    logging.getLogger("x").info("after the task")
    during, after = (json.loads(line) for line in json_lines)
    assert (during["task"], during["task_id"]) == ("calls.tasks.download_recording", "t-1")
    assert "task_id" not in after

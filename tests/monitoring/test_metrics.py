"""GET /metrics: who may read it, and that the counters move when things happen (monitoring/metrics.py).

Counters are process-wide and the suite shares the process: every test compares before and after.
"""

from __future__ import annotations

import hmac
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import requests
import responses
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from calls.models import Recording
from integrations import applier as applier_module
from integrations.applier import applier_drain
from integrations.models import Integration, NotificationEvent
from integrations.mtt import ratelimit
from integrations.mtt.client import MttClient
from integrations.mtt.errors import MttPermanentError, MttTransientError
from monitoring import metrics
from monitoring.gauges import DatabaseCollector
from tests.conftest import load_fixture

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "metrics-token-0123456789-abcdefghijklmnop"
API = "http://mtt.test"


@pytest.fixture(autouse=True)
def _metrics_on(settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_DIR = ""


def scrape(client: Client, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics with the token; {(sample name, sorted labels): value}."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **headers)
    assert response.status_code == 200, response.content
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def post_json(client: Client, url: str, body: Any) -> Any:
    return client.post(url, data=json.dumps(body, ensure_ascii=False), content_type="application/json")


# --- who may read it ------------------------------------------------------------------------------------


def test_without_a_token_configured_the_endpoint_does_not_exist(
    client: Client, settings: Any, admin_user: Any
) -> None:
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404
    client.force_login(admin_user)
    assert client.get("/metrics").status_code == 404


def test_no_credentials_is_401_with_a_bearer_challenge(client: Client) -> None:
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"mttcrm_" not in response.content


@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        "Bearer",
        f"Basic {TOKEN}",
        TOKEN,
        f"Bearer  {TOKEN.upper()}",
    ],
)
def test_a_wrong_token_is_401(client: Client, authorization: str) -> None:
    response = client.get("/metrics", HTTP_AUTHORIZATION=authorization)
    assert response.status_code == 401
    assert b"mttcrm_" not in response.content


def test_the_right_token_gets_the_text_format(client: Client) -> None:
    with mock.patch("monitoring.views.hmac.compare_digest", wraps=hmac.compare_digest) as compare:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "no-cache" in response["Cache-Control"]
    compare.assert_called_once()
    body = response.content.decode()
    assert "# TYPE mttcrm_notifications_received_total counter" in body
    assert "# TYPE mttcrm_screen_pop_latency_seconds histogram" in body
    assert "mttcrm_metrics_database_up 1.0" in body


def test_scrapes_over_plain_http_inside_the_stack_are_not_redirected(client: Client, settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    assert client.get("/ping").status_code == 200
    assert client.get("/accounts/login/").status_code == 301  # people are sent to https


def test_prometheus_asking_for_openmetrics_gets_it(client: Client) -> None:
    response = client.get(
        "/metrics",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
        HTTP_ACCEPT="application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.rstrip().endswith(b"# EOF")


def test_a_staff_login_may_read_it_without_the_token(client: Client, admin_user: Any) -> None:
    client.force_login(admin_user)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"mttcrm_notifications_received_total" in response.content


def test_an_operator_login_is_403_and_a_wrong_token_does_not_help(client: Client, operator_user: Any) -> None:
    client.force_login(operator_user)
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_only_get_and_head(client: Client) -> None:
    auth = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    assert client.post("/metrics", **auth).status_code == 405  # type: ignore[arg-type]
    assert client.head("/metrics", **auth).status_code == 200  # type: ignore[arg-type]


# --- notifications --------------------------------------------------------------------------------------


def test_a_notification_is_counted_received_and_applied(
    client: Client, integration: Integration, django_capture_on_commit_callbacks: Any
) -> None:
    before = scrape(client)
    response = post_json(
        client, integration.notify_path, load_fixture("notifications/01_incoming_trying.json")
    )
    assert response.status_code == 200
    applier_drain()
    after = scrape(client)
    assert (
        value(after, "mttcrm_notifications_received_total")
        == value(before, "mttcrm_notifications_received_total") + 1
    )
    applied = ("mttcrm_notifications_applied_total", {"outcome": "applied"})
    assert value(after, applied[0], **applied[1]) == value(before, applied[0], **applied[1]) + 1
    assert value(after, "mttcrm_notifications_duplicate_total") == value(
        before, "mttcrm_notifications_duplicate_total"
    )


def test_a_duplicate_is_received_and_counted_duplicate_not_applied_again(
    client: Client, integration: Integration, django_capture_on_commit_callbacks: Any
) -> None:
    body = load_fixture("notifications/01_incoming_trying.json")
    post_json(client, integration.notify_path, body)
    applier_drain()
    before = scrape(client)
    assert post_json(client, integration.notify_path, body).json()["duplicate"] is True
    applier_drain()
    after = scrape(client)
    for name, delta in (
        ("mttcrm_notifications_received_total", 1),
        ("mttcrm_notifications_duplicate_total", 1),
    ):
        assert value(after, name) == value(before, name) + delta, name
    assert value(after, "mttcrm_notifications_applied_total", outcome="applied") == value(
        before, "mttcrm_notifications_applied_total", outcome="applied"
    )


def test_an_unknown_event_counts_as_ignored(
    client: Client, integration: Integration, django_capture_on_commit_callbacks: Any
) -> None:
    before = metrics.sample("mttcrm_notifications_applied_total", {"outcome": "ignored"})
    post_json(client, integration.notify_path, {"event": "somethingNew", "result": {"x": 1}})
    applier_drain()
    assert metrics.sample("mttcrm_notifications_applied_total", {"outcome": "ignored"}) == before + 1


def test_a_failing_apply_is_counted(
    client: Client,
    integration: Integration,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*, event: NotificationEvent) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(applier_module, "call_apply_notification", broken)
    errors = metrics.sample("mttcrm_notifications_apply_errors_total")
    applied = metrics.sample("mttcrm_notifications_applied_total", {"outcome": "applied"})
    response = post_json(
        client, integration.notify_path, load_fixture("notifications/01_incoming_trying.json")
    )
    assert response.status_code == 200  # acknowledged all the same; the applier tries again later
    applier_drain()
    assert metrics.sample("mttcrm_notifications_apply_errors_total") == errors + 1
    assert metrics.sample("mttcrm_notifications_applied_total", {"outcome": "applied"}) == applied


@pytest.mark.parametrize(
    ("body", "length", "reason"),
    [
        (b"{}", "12abc", "invalid"),
        (json.dumps({"event": "x", "result": {"pad": "x" * (300 * 1024)}}).encode(), None, "too_large"),
    ],
)
def test_refused_notifications_are_counted_by_reason(
    client: Client, integration: Integration, body: bytes, length: str | None, reason: str
) -> None:
    before = scrape(client)
    extra = {"CONTENT_LENGTH": length} if length is not None else {}
    response = client.generic("POST", integration.notify_path, body, content_type="application/json", **extra)
    assert response.status_code in (400, 413)
    after = scrape(client)
    name = "mttcrm_notifications_rejected_total"
    assert value(after, name, reason=reason) == value(before, name, reason=reason) + 1
    assert value(after, "mttcrm_notifications_received_total") == value(
        before, "mttcrm_notifications_received_total"
    )


@pytest.mark.parametrize("body", [b"not json at all", b"\xff\xfe"])
def test_a_body_we_cannot_read_is_counted_as_received_not_refused(
    client: Client, integration: Integration, body: bytes
) -> None:
    before = scrape(client)
    assert client.post(integration.notify_path, data=body, content_type="application/json").json()["ignored"]
    after = scrape(client)
    received, refused = "mttcrm_notifications_received_total", "mttcrm_notifications_rejected_total"
    assert value(after, received) == value(before, received) + 1
    assert value(after, refused, reason="invalid") == value(before, refused, reason="invalid")


def test_an_unknown_token_is_counted(client: Client, integration: Integration) -> None:
    before = metrics.sample("mttcrm_notifications_rejected_total", {"reason": "unknown_token"})
    assert post_json(client, "/mtt/not-the-token/", {"event": "x", "result": {}}).status_code == 404
    assert metrics.sample("mttcrm_notifications_rejected_total", {"reason": "unknown_token"}) == before + 1


def test_rejection_reasons_are_a_closed_set() -> None:
    before = metrics.sample("mttcrm_notifications_rejected_total", {"reason": "other"})
    metrics.notification_rejected("a reason from user input " * 10)
    assert metrics.sample("mttcrm_notifications_rejected_total", {"reason": "other"}) == before + 1
    assert metrics.rejection_reason(413) == "too_large"
    assert metrics.rejection_reason(418) == "other"


# --- MTT requests and the limiter -----------------------------------------------------------------------


@pytest.fixture
def mtt(integration: Integration, monkeypatch: pytest.MonkeyPatch) -> MttClient:
    waits = iter([0.0, 0.3, 0.0, 0.0, 0.0, 0.0])
    monkeypatch.setattr(ratelimit, "acquire", lambda *_a, **_k: next(waits))
    monkeypatch.setattr(ratelimit, "penalize", lambda *_a, **_k: None)
    c = MttClient(integration)
    c.sleep = lambda _s: None
    return c


@responses.activate
def test_mtt_requests_are_counted_by_method_and_status(client: Client, mtt: MttClient) -> None:
    responses.get(f"{API}/workplacesInfo", json=load_fixture("api/workplacesInfo_response.json"))
    responses.post(f"{API}/makeCall", status=400, json={"error": {"message": "bad number"}})
    before = scrape(client)
    mtt.workplaces_info()
    with pytest.raises(MttPermanentError):
        mtt.make_call(caller_id="883140777828305", callee="79219462761")
    after = scrape(client)
    name = "mttcrm_mtt_requests_total"
    assert (
        value(after, name, method="workplacesInfo", status="200")
        == value(before, name, method="workplacesInfo", status="200") + 1
    )
    assert (
        value(after, name, method="makeCall", status="400")
        == value(before, name, method="makeCall", status="400") + 1
    )
    # The limiter's waits: 0 s and 0.3 s.
    wait = "mttcrm_mtt_limiter_wait_seconds"
    assert value(after, wait + "_count") == value(before, wait + "_count") + 2
    assert value(after, wait + "_bucket", le="0.0") == value(before, wait + "_bucket", le="0.0") + 1
    assert value(after, wait + "_bucket", le="0.25") == value(before, wait + "_bucket", le="0.25") + 1
    assert value(after, wait + "_bucket", le="0.5") == value(before, wait + "_bucket", le="0.5") + 2
    assert value(after, wait + "_sum") == pytest.approx(value(before, wait + "_sum") + 0.3)
    duration = "mttcrm_mtt_request_duration_seconds_count"
    assert value(after, duration, method="makeCall") == value(before, duration, method="makeCall") + 1


@responses.activate
def test_an_mtt_request_without_an_answer_is_counted_as_no_response(mtt: MttClient) -> None:
    responses.get(f"{API}/externalNumbersInfo", body=requests.ConnectionError("refused"))
    labels = {"method": "externalNumbersInfo", "status": "no_response"}
    before = metrics.sample("mttcrm_mtt_requests_total", labels)
    with pytest.raises(MttTransientError):
        mtt.external_numbers_info()
    # A read is retried: three attempts, three requests.
    assert metrics.sample("mttcrm_mtt_requests_total", labels) == before + 3


# --- recordings and the database gauges -----------------------------------------------------------------


def test_recording_downloads_are_counted_by_result(integration: Integration) -> None:
    from calls.recordings.services import recording_download

    recording = Recording.objects.create(
        integration=integration,
        leg_call_id="x~1o",
        source_url="https://evil.example/rec.mp3",
        storage_key="recordings/x.mp3",
        mtt_expires_at=timezone.now() + timedelta(days=90),
    )
    refused = metrics.sample("mttcrm_recording_downloads_total", {"result": "refused"})
    skipped = metrics.sample("mttcrm_recording_downloads_total", {"result": "skipped"})
    assert recording_download(recording_id=recording.pk) == Recording.Status.REFUSED
    assert recording_download(recording_id=recording.pk) == Recording.Status.REFUSED  # nothing to do
    assert metrics.sample("mttcrm_recording_downloads_total", {"result": "refused"}) == refused + 1
    assert metrics.sample("mttcrm_recording_downloads_total", {"result": "skipped"}) == skipped + 1


def test_database_gauges_show_the_inbox_backlog_and_recordings(
    client: Client, integration: Integration
) -> None:
    now = timezone.now()
    for i, age in enumerate((5, 125)):
        NotificationEvent.objects.create(
            integration=integration, event="callNotifications", body={}, fingerprint=f"p{i}",
            received_at=now - timedelta(seconds=age),
        )  # fmt: skip
    NotificationEvent.objects.create(
        integration=integration, event="x", body={}, fingerprint="f", status=NotificationEvent.Status.FAILED
    )
    NotificationEvent.objects.create(
        integration=integration, event="x", body={}, fingerprint="a", status=NotificationEvent.Status.APPLIED
    )
    for i, status in enumerate([Recording.Status.PENDING, Recording.Status.PENDING, Recording.Status.STORED]):
        Recording.objects.create(
            integration=integration, leg_call_id=f"r{i}", source_url=f"https://mtt.ru/{i}.mp3",
            storage_key=f"k{i}", status=status, mtt_expires_at=now + timedelta(days=3), expiring_soon=i == 0,
        )  # fmt: skip
    samples = scrape(client)
    assert value(samples, "mttcrm_inbox_pending_notifications") == 2
    assert 125 <= value(samples, "mttcrm_inbox_oldest_pending_age_seconds") < 185
    assert value(samples, "mttcrm_inbox_failed_notifications") == 1
    assert value(samples, "mttcrm_recordings_backlog", status="pending") == 2
    assert value(samples, "mttcrm_recordings_backlog", status="downloading") == 0
    assert ("mttcrm_recordings_backlog", (("status", "stored"),)) not in samples
    assert value(samples, "mttcrm_recordings_expiring_at_mtt") == 1
    assert value(samples, "mttcrm_integrations", status="connected") == 1
    assert value(samples, "mttcrm_integrations", status="needs_reconnect") == 0
    assert value(samples, "mttcrm_metrics_database_up") == 1


def test_an_empty_inbox_has_no_oldest_age(client: Client) -> None:
    samples = scrape(client)
    assert value(samples, "mttcrm_inbox_pending_notifications") == 0
    assert value(samples, "mttcrm_inbox_oldest_pending_age_seconds") == 0


def test_the_scrape_answers_with_the_database_down(client: Client) -> None:
    with mock.patch.object(DatabaseCollector, "_gauges", side_effect=RuntimeError("database is gone")):
        samples = scrape(client)
    assert value(samples, "mttcrm_metrics_database_up") == 0
    assert ("mttcrm_notifications_received_total", ()) in samples
    assert ("mttcrm_inbox_pending_notifications", ()) not in samples


def test_a_broken_metric_never_breaks_the_caller(client: Client, integration: Integration) -> None:
    with mock.patch.object(metrics.NOTIFICATIONS_RECEIVED, "inc", side_effect=OSError("disk full")):
        response = post_json(
            client, integration.notify_path, load_fixture("notifications/01_incoming_trying.json")
        )
    assert response.status_code == 200
    assert NotificationEvent.objects.count() == 1


# --- several processes ----------------------------------------------------------------------------------

CHILD = """
import django
django.setup()
from monitoring import metrics
from monitoring.gauges import DatabaseCollector
for _ in range({n}):
    metrics.notification_received(duplicate=False)
metrics.notification_rejected("invalid")
metrics.mtt_request(method="makeCall", status_code=200, duration=0.1, waited=0.2)
metrics.screen_pop_shown(received_at=1000.0, now=1000.4)
"""


def run_child(root: Path, n: int, host: str) -> None:
    """A process of another host (a container of the compose stack) counting into the shared METRICS_DIR."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mttcrm.settings",
        "METRICS_DIR": str(root),
        "VAR_DIR": str(root.parent / "var"),
    }
    env.pop("DATABASE_URL", None)  # the child touches no database
    code = f"import socket; socket.gethostname = lambda: {host!r}\n" + CHILD.format(n=n)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_values_written_by_other_processes_of_every_host_are_added_up(
    client: Client, settings: Any, tmp_path: Path
) -> None:
    root = tmp_path / "metrics"
    run_child(root, 2, "web-1")
    run_child(root, 3, "worker-1")  # another container: may well have the same pid
    assert sorted(p.name for p in root.iterdir()) == ["web-1", "worker-1"]

    settings.METRICS_DIR = str(root)
    samples = scrape(client)
    assert value(samples, "mttcrm_notifications_received_total") == 5
    assert value(samples, "mttcrm_notifications_rejected_total", reason="invalid") == 2
    assert value(samples, "mttcrm_mtt_requests_total", method="makeCall", status="200") == 2
    assert value(samples, "mttcrm_mtt_limiter_wait_seconds_count") == 2
    assert value(samples, "mttcrm_screen_pop_latency_seconds_bucket", le="0.5") == 2
    assert value(samples, "mttcrm_screen_pop_latency_seconds_bucket", le="0.25") == 0
    # The database gauges come along in multiprocess mode too.
    assert ("mttcrm_inbox_pending_notifications", ()) in samples

    # A new run starts from zero once the folder is emptied (make run, compose's migrate).
    assert metrics.clear_metrics_dir(root) > 0
    assert value(scrape(client), "mttcrm_notifications_received_total") == 0


def test_without_metrics_dir_each_process_counts_for_itself(tmp_path: Path) -> None:
    """A copied .env.example sets METRICS_DIR= (empty), perhaps PROMETHEUS_MULTIPROC_DIR= too: no files."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mttcrm.settings", "METRICS_DIR": ""}
    env["PROMETHEUS_MULTIPROC_DIR"] = ""
    env.pop("DATABASE_URL", None)
    code = (
        "import django; django.setup()\n"
        "from monitoring import metrics\n"
        "metrics.notification_received(duplicate=False)\n"
        "print(metrics.sample('mttcrm_notifications_received_total'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("1.0")
    assert not list(tmp_path.rglob("*.db"))


def test_screen_pop_latency_buckets() -> None:
    count = metrics.sample("mttcrm_screen_pop_latency_seconds_count")
    le_1 = metrics.sample("mttcrm_screen_pop_latency_seconds_bucket", {"le": "1.0"})
    le_05 = metrics.sample("mttcrm_screen_pop_latency_seconds_bucket", {"le": "0.5"})
    metrics.screen_pop_shown(received_at=100.0, now=100.8)
    assert metrics.sample("mttcrm_screen_pop_latency_seconds_count") == count + 1
    assert metrics.sample("mttcrm_screen_pop_latency_seconds_bucket", {"le": "1.0"}) == le_1 + 1
    assert metrics.sample("mttcrm_screen_pop_latency_seconds_bucket", {"le": "0.5"}) == le_05
    # A clock off by minutes, or a page that slept: not a latency.
    metrics.screen_pop_shown(received_at=100.0, now=99.0)
    metrics.screen_pop_shown(received_at=100.0, now=100.0 + 3600)
    assert metrics.sample("mttcrm_screen_pop_latency_seconds_count") == count + 1


def test_staff_users_are_staff_only_while_active(client: Client) -> None:
    user = get_user_model().objects.create_user("former", password="x-pass-123", is_staff=True)
    client.force_login(user)
    assert client.get("/metrics").status_code == 200
    user.is_active = False
    user.save()
    # An inactive user's session no longer authenticates at all.
    assert client.get("/metrics").status_code == 401

"""Recordings end to end: `recorded` through the real notify URL, the sandbox serving the mp3, the worker
task copying it into storage; ordering, duplicates, retries, interruptions, the sweep and retention.

Fixtures and helpers here are imported by the other test_recordings_* modules.
"""

from __future__ import annotations

import copy
import hashlib
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import storages
from django.utils import timezone
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from calls.models import Call, CallLeg, Recording
from calls.recordings import download, mp3
from calls.recordings.services import recording_download, recordings_apply_retention, recordings_sweep
from calls.recordings.storage import StagedFile
from calls.tasks import download_recording, recordings_retention, sweep_recordings
from integrations.models import Integration, NotificationEvent
from sandbox.testing import RunningSandbox, running_sandbox
from tests.calls import payloads as p
from tests.conftest import load_fixture

pytestmark = pytest.mark.django_db

MP3 = Path(__file__).resolve().parents[2] / "sandbox" / "static" / "recording.mp3"
MP3_BYTES = MP3.read_bytes()
GUIDE_RECORD_PATH = "/records/34380859/2020/12/18/9B58D12A_EC9D5E37_56485D37_0EE913E5.mp3"
GUIDE_CALL_ID = "SDvapac01-3bd7d743109f2668f16de50c9ab53559100@127.0.0.1"
PUBLIC_IP = "93.184.216.34"

Notify = Callable[[dict[str, Any]], Any]


# --- fixtures and helpers (shared with the other recordings test modules) ------------------------


@pytest.fixture(autouse=True)
def recordings_settings(settings: Any) -> Any:
    """Production-like policy whatever DEBUG was at import: MTT hosts only, https only, no private."""
    settings.RECORDINGS_ALLOWED_HOSTS = ["mtt.ru", "*.mtt.ru"]
    settings.RECORDINGS_TOKEN_HOSTS = ["mtt.ru", "*.mtt.ru"]
    settings.RECORDINGS_ALLOW_PRIVATE_HOSTS = []
    settings.RECORDINGS_ALLOW_HTTP = False
    settings.RECORDINGS_MAX_BYTES = 200 * 1024 * 1024
    settings.RECORDINGS_KEEP_DAYS = None
    settings.RECORDINGS_MTT_KEEP_DAYS = 90
    settings.RECORDINGS_EXPIRY_WARNING_DAYS = 7
    settings.RECORDINGS_STALE_CLAIM_SECONDS = 1800.0
    settings.RECORDINGS_DOWNLOAD_MAX_SECONDS = 60.0
    settings.RECORDINGS_CONNECT_TIMEOUT = 3.0
    settings.RECORDINGS_READ_TIMEOUT = 5.0
    return settings


def allow_local(settings: Any, base_url: str) -> None:
    """Put a local test server on the allow-lists, as RECORDINGS_ALLOW_SANDBOX does in the demo, and on
    the token's hosts (the realistic sandbox's records need the token)."""
    entry = base_url.split("://", 1)[1]
    settings.RECORDINGS_ALLOWED_HOSTS = [*settings.RECORDINGS_ALLOWED_HOSTS, entry]
    settings.RECORDINGS_TOKEN_HOSTS = [*settings.RECORDINGS_TOKEN_HOSTS, entry]
    settings.RECORDINGS_ALLOW_PRIVATE_HOSTS = [entry]
    settings.RECORDINGS_ALLOW_HTTP = True


@pytest.fixture
def record_host(settings: Any) -> Iterator[RunningSandbox]:
    """The sandbox, serving its mp3 under /records/, allowed like the demo allows it."""
    with running_sandbox() as sandbox:
        allow_local(settings, sandbox.url)
        yield sandbox


def recorded_body(url: str, call_id: str = GUIDE_CALL_ID, account: str = p.WP_RECORDED) -> dict[str, Any]:
    """The guide's `recorded` fixture (03) with its link pointed at ``url``."""
    body = copy.deepcopy(load_fixture("notifications/03_recorded.json"))
    info = body["result"]["callInfo"]
    info["urlRecord"] = url
    info["call"]["id"] = call_id
    info["accountId"] = account
    return body


def media_path(key: str) -> Path:
    return Path(storages["recordings"].path(key))


def leftovers(settings: Any) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(root.rglob("*.part")) if root.exists() else []


def make_recording(
    integration: Integration, url: str, *, call_key: str = "call-1", **fields: Any
) -> Recording:
    """A pending recording row as the `recorded` hook makes it (no notification needed)."""
    from calls.recordings.storage import recording_storage_key

    call, _ = Call.objects.get_or_create(integration=integration, call_key=call_key)
    now = timezone.now()
    defaults: dict[str, Any] = {
        "integration": integration,
        "call": call,
        "leg_call_id": call_key,
        "source_url": url,
        "storage_key": recording_storage_key(received_at=now, name=call_key, source_url=url),
        "mtt_expires_at": now + timedelta(days=90),
    }
    defaults.update(fields)
    return Recording.objects.create(**defaults)


@pytest.fixture
def eager_retries() -> Iterator[None]:
    """Eager tasks run their retries at once (with eager_propagates a retry would just raise)."""
    from mttcrm.celery import app

    previous = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = previous


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names → addresses for socket.getaddrinfo; other names (and IP literals) resolve as usual."""
    table: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name in table:
            answers = table[name]
            return [
                (
                    socket.AF_INET6 if ":" in a else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (a, port or 0, 0, 0) if ":" in a else (a, port or 0),
                )
                for a in answers
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


# --- the guide's fixture end to end --------------------------------------------------------------


def test_guide_recorded_fixture_end_to_end(
    notify: Notify, record_host: RunningSandbox, settings: Any, integration: Integration
) -> None:
    url = record_host.url + GUIDE_RECORD_PATH
    notify(recorded_body(url))

    recording = Recording.objects.get()
    assert recording.status == Recording.Status.STORED, recording.failure_reason
    assert recording.source_url == url
    assert recording.call == Call.objects.get(call_key=GUIDE_CALL_ID)
    assert recording.leg == CallLeg.objects.get(leg_id=GUIDE_CALL_ID)
    assert recording.leg_call_id == GUIDE_CALL_ID
    assert recording.notification == NotificationEvent.objects.get()
    assert recording.size == len(MP3_BYTES)
    assert recording.sha256 == hashlib.sha256(MP3_BYTES).hexdigest()
    assert recording.duration_seconds == pytest.approx(len(MP3_BYTES) * 8 / 32000, abs=0.01)
    assert recording.content_type == "audio/mpeg"
    assert recording.attempts == 1
    assert recording.stored_at is not None
    assert recording.failure_reason == ""
    received = recording.notification.received_at
    assert recording.mtt_expires_at == received + timedelta(days=90)
    # recordings/YYYY/MM/DD/<call key, sanitised>-<hash>.mp3
    day = timezone.localtime(received)
    assert recording.storage_key.startswith(f"recordings/{day:%Y/%m/%d}/SDvapac01-3bd7d743")
    assert recording.storage_key.endswith(".mp3")
    assert "@" not in recording.storage_key
    assert media_path(recording.storage_key).read_bytes() == MP3_BYTES
    assert record_host.state.record_downloads == [GUIDE_RECORD_PATH]
    assert leftovers(settings) == []


def test_storage_key_is_deterministic(integration: Integration) -> None:
    from calls.recordings.storage import recording_storage_key

    at = timezone.now()
    one = recording_storage_key(received_at=at, name="a/../b c@d", source_url="https://x.mtt.ru/1.mp3")
    assert one == recording_storage_key(
        received_at=at, name="a/../b c@d", source_url="https://x.mtt.ru/1.mp3"
    )
    assert one != recording_storage_key(
        received_at=at, name="a/../b c@d", source_url="https://x.mtt.ru/2.mp3"
    )
    assert "/../" not in one and " " not in one


def test_duplicate_recorded_downloads_once(
    notify: Notify, record_host: RunningSandbox, integration: Integration
) -> None:
    url = record_host.url + "/records/2024/01/02/dup.mp3"
    body = recorded_body(url)
    notify(body)
    notify(body)  # resent as is: the inbox stores it once
    doubled = copy.deepcopy(body)
    doubled["result"]["callInfo"]["extra"] = "mobile app"  # doubled by the MTT app (guide §6.5)
    notify(doubled)

    assert NotificationEvent.objects.count() == 2
    recording = Recording.objects.get()
    assert recording.status == Recording.Status.STORED
    assert record_host.state.record_downloads == ["/records/2024/01/02/dup.mp3"]
    # And running the task again does nothing either.
    assert download_recording.delay(recording.pk).get() == Recording.Status.STORED
    assert len(record_host.state.record_downloads) == 1


def test_a_call_may_have_several_recordings(
    notify: Notify, record_host: RunningSandbox, integration: Integration
) -> None:
    notify(recorded_body(record_host.url + "/records/a/1.mp3"))
    notify(recorded_body(record_host.url + "/records/a/2.mp3"))
    call = Call.objects.get()
    recordings = list(call.recordings.all())
    assert [r.status for r in recordings] == [Recording.Status.STORED] * 2
    assert recordings[0].storage_key != recordings[1].storage_key


# --- order of arrival ----------------------------------------------------------------------------


def _staff_leg_recorded(url: str, base: str = p.BASE) -> dict[str, Any]:
    return recorded_body(url, call_id=f"{base}~2o", account=p.WP_INCOMING)


def test_recorded_before_finished(
    notify: Notify, record_host: RunningSandbox, directory: dict[str, Any]
) -> None:
    notes = p.incoming_answered()
    url = record_host.url + "/records/early.mp3"
    for body in notes[:4]:  # trying, trying, showing, connected
        notify(body)
    notify(_staff_leg_recorded(url))
    for body in notes[4:]:  # both legs finished after the recording
        notify(body)

    call = Call.objects.get()
    recording = Recording.objects.get()
    assert recording.call == call
    assert recording.leg == CallLeg.objects.get(leg_id=f"{p.BASE}~2o")
    assert recording.status == Recording.Status.STORED
    assert call.status == Call.Status.ANSWERED
    assert call.operator == directory["ivanova"]
    assert call.talk_seconds == 42


def test_recorded_before_the_call_exists(
    notify: Notify, record_host: RunningSandbox, directory: dict[str, Any]
) -> None:
    url = record_host.url + "/records/first.mp3"
    notify(_staff_leg_recorded(url))
    first = Recording.objects.get()
    assert first.call is not None and first.call.call_key == p.BASE
    assert first.leg is not None and first.leg.leg_id == f"{p.BASE}~2o"

    for body in p.incoming_answered():
        notify(body)

    assert Call.objects.count() == 1
    call = Call.objects.get()
    recording = Recording.objects.get()
    assert recording.call == call and recording.leg.leg_id == f"{p.BASE}~2o"
    assert call.legs.count() == 2
    assert call.status == Call.Status.ANSWERED
    assert call.operator == directory["ivanova"]
    assert recording.status == Recording.Status.STORED


def test_recorded_before_the_outgoing_call(
    notify: Notify, record_host: RunningSandbox, directory: dict[str, Any]
) -> None:
    notify(recorded_body(record_host.url + "/records/out.mp3", call_id=p.OUT_ID, account=p.WP_OUTGOING))
    for body in p.outgoing(answered=True):
        notify(body)
    call = Call.objects.get()
    assert call.status == Call.Status.ANSWERED
    assert Recording.objects.get().call == call


def test_recorded_without_a_link_creates_nothing(notify: Notify, integration: Integration) -> None:
    body = recorded_body("")
    notify(body)
    assert Recording.objects.count() == 0
    assert Call.objects.count() == 1  # the notification itself is applied


# --- retries and permanent failures --------------------------------------------------------------


@pytest.mark.usefixtures("eager_retries")
def test_503_is_retried_then_succeeds(
    notify: Notify, record_host: RunningSandbox, integration: Integration
) -> None:
    path = "/records/flaky.mp3"
    record_host.control("POST", "faults", {"path": path, "status": 503, "count": 2})
    notify(recorded_body(record_host.url + path))
    recording = Recording.objects.get()
    assert recording.status == Recording.Status.STORED
    assert recording.attempts == 3
    assert record_host.state.record_downloads == [path] * 3


def test_429_and_timeouts_are_transient(
    record_host: RunningSandbox, integration: Integration, settings: Any
) -> None:
    path = "/records/slow.mp3"
    recording = make_recording(integration, record_host.url + path)
    record_host.control("POST", "faults", {"path": path, "status": 429, "count": 1})
    with pytest.raises(download.RecordingTransientError, match="HTTP 429"):
        recording_download(recording_id=recording.pk)
    recording.refresh_from_db()
    assert recording.status == Recording.Status.PENDING
    assert "429" in recording.failure_reason

    settings.RECORDINGS_READ_TIMEOUT = 0.3
    record_host.control("POST", "faults", {"path": path, "delay": 1.0, "count": 1})
    with pytest.raises(download.RecordingTransientError, match="ReadTimeout"):
        recording_download(recording_id=recording.pk)
    recording.refresh_from_db()
    assert recording.status == Recording.Status.PENDING
    assert recording.attempts == 2

    assert recording_download(recording_id=recording.pk) == Recording.Status.STORED


def test_404_is_permanent(notify: Notify, record_host: RunningSandbox, integration: Integration) -> None:
    path = "/records/missing.mp3"
    record_host.control("POST", "faults", {"path": path, "status": 404, "count": 5})
    notify(recorded_body(record_host.url + path))
    recording = Recording.objects.get()
    # Within MTT's 90 days a 404 is a failure to look at, not an expiry.
    assert recording.status == Recording.Status.FAILED
    assert "HTTP 404" in recording.failure_reason
    assert record_host.state.record_downloads == [path]  # never retried


def test_404_after_mtt_keep_period_and_410_mean_expired(
    record_host: RunningSandbox, integration: Integration
) -> None:
    old = make_recording(
        integration, record_host.url + "/records/old.mp3", mtt_expires_at=timezone.now() - timedelta(days=1)
    )
    record_host.control("POST", "faults", {"path": "/records/old.mp3", "status": 404})
    assert recording_download(recording_id=old.pk) == Recording.Status.EXPIRED
    gone = make_recording(integration, record_host.url + "/records/gone.mp3", call_key="call-2")
    record_host.control("POST", "faults", {"path": "/records/gone.mp3", "status": 410})
    assert recording_download(recording_id=gone.pk) == Recording.Status.EXPIRED
    gone.refresh_from_db()
    assert "410" in gone.failure_reason


@pytest.mark.usefixtures("eager_retries")
def test_retries_run_out_then_the_sweep_finishes_it(
    notify: Notify, record_host: RunningSandbox, integration: Integration, settings: Any
) -> None:
    path = "/records/down.mp3"
    record_host.control("POST", "faults", {"path": path, "status": 502, "count": 100})
    notify(recorded_body(record_host.url + path))  # the task gives up after its retries (logged)
    recording = Recording.objects.get()
    assert recording.status == Recording.Status.PENDING
    assert recording.attempts == 7  # 1 + max_retries
    assert "HTTP 502" in recording.failure_reason

    record_host.control("DELETE", "faults")
    assert sweep_recordings() == 0  # tried moments ago: not yet
    Recording.objects.update(last_attempt_at=timezone.now() - timedelta(hours=2))
    assert sweep_recordings() == 1
    recording.refresh_from_db()
    assert recording.status == Recording.Status.STORED
    assert recording.failure_reason == ""


# --- interruptions -------------------------------------------------------------------------------


@pytest.fixture
def dropping_server(settings: Any) -> Iterator[dict[str, Any]]:
    """Serves the mp3 but drops the connection half-way through the first ``drops`` requests."""
    state: dict[str, Any] = {"drops": 1, "requests": 0}

    def app(environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        state["requests"] += 1
        if state["requests"] <= state["drops"]:

            def half() -> Iterator[bytes]:
                yield MP3_BYTES[: len(MP3_BYTES) // 2]
                raise ConnectionResetError("dropped mid-stream")

            headers = [("Content-Type", "audio/mpeg"), ("Content-Length", str(len(MP3_BYTES)))]
            start_response("200 OK", headers)
            return half()
        return Response(MP3_BYTES, mimetype="audio/mpeg")(request.environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    allow_local(settings, url)
    state["url"] = url
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.usefixtures("eager_retries")
def test_connection_dropped_mid_stream_is_retried_and_leaves_no_partial_file(
    dropping_server: dict[str, Any], integration: Integration, settings: Any
) -> None:
    recording = make_recording(integration, dropping_server["url"] + "/records/drop.mp3")
    assert download_recording.delay(recording.pk).get() == Recording.Status.STORED
    recording.refresh_from_db()
    assert dropping_server["requests"] == 2
    assert recording.attempts == 2
    assert media_path(recording.storage_key).read_bytes() == MP3_BYTES
    assert leftovers(settings) == []


class _Killed(BaseException):
    """Stands for SIGKILL: nothing of ours runs after it (no cleanup, no status update)."""


def test_worker_killed_mid_download_is_finished_by_the_next_attempt(
    record_host: RunningSandbox, integration: Integration, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = make_recording(integration, record_host.url + "/records/killed.mp3")
    real_fetch = download.fetch_recording

    class DiesAfter:
        def __init__(self, out: Any) -> None:
            self.out, self.written = out, 0

        def write(self, chunk: bytes) -> None:
            self.out.write(chunk)
            self.written += len(chunk)
            if self.written > 10_000:
                raise _Killed

        def flush(self) -> None:
            self.out.flush()

    def killed_fetch(url: str, *, out: Any, **kwargs: Any) -> Any:
        return real_fetch(url, out=DiesAfter(out), **kwargs)

    monkeypatch.setattr("calls.recordings.services.fetch_recording", killed_fetch)
    monkeypatch.setattr(StagedFile, "discard", lambda self: None)  # a killed process cleans nothing
    with pytest.raises(_Killed):
        recording_download(recording_id=recording.pk)
    # What a dead worker leaves: a claim and a half-written temporary file, no final file.
    Recording.objects.filter(pk=recording.pk).update(
        status=Recording.Status.DOWNLOADING, claimed_at=timezone.now() - timedelta(hours=1)
    )
    assert len(leftovers(settings)) == 1
    assert not media_path(recording.storage_key).exists()
    monkeypatch.undo()
    allow_local(settings, record_host.url)  # monkeypatch.undo() does not touch the settings fixture

    # Another task does nothing while the claim may still be alive...
    assert recording_download(recording_id=recording.pk, claim_token="other-task") == "downloading"
    # ...the sweep takes the stale claim back and re-queues it; the next attempt finishes the job.
    assert sweep_recordings() == 1
    recording.refresh_from_db()
    assert recording.status == Recording.Status.STORED
    assert media_path(recording.storage_key).read_bytes() == MP3_BYTES
    assert leftovers(settings) == []


def test_the_same_task_delivered_again_takes_back_its_own_claim(
    record_host: RunningSandbox, integration: Integration
) -> None:
    recording = make_recording(integration, record_host.url + "/records/again.mp3")
    Recording.objects.filter(pk=recording.pk).update(
        status=Recording.Status.DOWNLOADING, claimed_at=timezone.now(), claimed_by="task-1"
    )
    assert recording_download(recording_id=recording.pk, claim_token="task-2") == "downloading"
    assert recording_download(recording_id=recording.pk, claim_token="task-1") == Recording.Status.STORED


# --- the sweep and retention ---------------------------------------------------------------------


def test_sweep_requeues_missing_flags_expiring_and_gives_up_on_long_expired(
    record_host: RunningSandbox, integration: Integration
) -> None:
    now = timezone.now()
    url = record_host.url + "/records/sweep-{}.mp3"
    never_tried = make_recording(integration, url.format(1), call_key="c1")
    Recording.objects.filter(pk=never_tried.pk).update(created_at=now - timedelta(minutes=10))
    just_created = make_recording(integration, url.format(2), call_key="c2")
    expiring = make_recording(
        integration,
        url.format(3),
        call_key="c3",
        status=Recording.Status.FAILED,
        mtt_expires_at=now + timedelta(days=3),
    )
    stored_soon = make_recording(
        integration,
        url.format(4),
        call_key="c4",
        status=Recording.Status.STORED,
        mtt_expires_at=now + timedelta(days=1),
    )
    long_gone = make_recording(
        integration, url.format(5), call_key="c5", mtt_expires_at=now - timedelta(days=30)
    )

    result = recordings_sweep(now=now)

    assert result.requeue == [never_tried.pk]
    assert result.flagged == 1
    assert result.given_up == 1
    assert Recording.objects.get(pk=expiring.pk).expiring_soon
    assert not Recording.objects.get(pk=stored_soon.pk).expiring_soon
    assert not Recording.objects.get(pk=just_created.pk).expiring_soon
    assert Recording.objects.get(pk=long_gone.pk).status == Recording.Status.EXPIRED

    # The beat task enqueues what the sweep found; the download clears the flag when it stores.
    Recording.objects.filter(pk=never_tried.pk).update(mtt_expires_at=now + timedelta(days=2))
    recordings_sweep(now=now)
    assert Recording.objects.get(pk=never_tried.pk).expiring_soon
    assert sweep_recordings() == 1
    stored = Recording.objects.get(pk=never_tried.pk)
    assert stored.status == Recording.Status.STORED
    assert not stored.expiring_soon


def test_sweep_reclaims_only_stale_claims(integration: Integration) -> None:
    now = timezone.now()
    stale = make_recording(
        integration, "https://r.mtt.ru/1.mp3", call_key="c1", status=Recording.Status.DOWNLOADING
    )
    alive = make_recording(
        integration, "https://r.mtt.ru/2.mp3", call_key="c2", status=Recording.Status.DOWNLOADING
    )
    Recording.objects.filter(pk=stale.pk).update(claimed_at=now - timedelta(hours=1))
    Recording.objects.filter(pk=alive.pk).update(claimed_at=now - timedelta(minutes=5))
    assert recordings_sweep(now=now).reclaimed == 1
    assert Recording.objects.get(pk=stale.pk).status == Recording.Status.PENDING
    assert Recording.objects.get(pk=alive.pk).status == Recording.Status.DOWNLOADING


def test_retention_deletes_old_files(
    record_host: RunningSandbox, integration: Integration, settings: Any
) -> None:
    old = make_recording(integration, record_host.url + "/records/old.mp3", call_key="c1")
    new = make_recording(integration, record_host.url + "/records/new.mp3", call_key="c2")
    for recording in (old, new):
        assert recording_download(recording_id=recording.pk) == Recording.Status.STORED
    Recording.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    old.refresh_from_db()

    assert recordings_retention() == 0  # RECORDINGS_KEEP_DAYS empty: keep forever
    assert media_path(old.storage_key).exists()

    settings.RECORDINGS_KEEP_DAYS = 30
    assert recordings_retention() == 1
    old.refresh_from_db()
    assert old.status == Recording.Status.DELETED
    assert old.deleted_at is not None
    assert not media_path(old.storage_key).exists()
    assert media_path(Recording.objects.get(pk=new.pk).storage_key).exists()
    assert recordings_apply_retention() == 0  # idempotent


def test_beat_schedule_has_the_sweep_and_daily_retention() -> None:
    from django.conf import settings as django_settings

    from mttcrm.celery import app

    schedule = django_settings.CELERY_BEAT_SCHEDULE
    assert schedule["recordings-sweep"]["task"] == sweep_recordings.name
    assert schedule["recordings-retention"]["task"] == recordings_retention.name
    assert {sweep_recordings.name, recordings_retention.name, download_recording.name} <= set(app.tasks)


# --- other storages ------------------------------------------------------------------------------


def test_non_filesystem_storage_gets_the_whole_file(
    record_host: RunningSandbox, integration: Integration, settings: Any
) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "recordings": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    recording = make_recording(integration, record_host.url + "/records/s3.mp3")
    assert recording_download(recording_id=recording.pk) == Recording.Status.STORED
    recording.refresh_from_db()
    storage = storages["recordings"]
    with storage.open(recording.storage_key, "rb") as fh:
        assert fh.read() == MP3_BYTES
    # Again (a row never updated after an upload): the key is overwritten, not suffixed.
    Recording.objects.filter(pk=recording.pk).update(status=Recording.Status.PENDING)
    assert recording_download(recording_id=recording.pk) == Recording.Status.STORED
    recording.refresh_from_db()
    assert recording.storage_key.endswith(".mp3") and storage.exists(recording.storage_key)
    assert not Path(settings.MEDIA_ROOT).exists()


# --- mp3 parsing ---------------------------------------------------------------------------------


def test_mp3_recognition_and_duration(tmp_path: Path) -> None:
    assert mp3.looks_like_mp3(MP3_BYTES[:4])
    assert mp3.looks_like_mp3(b"ID3\x04\x00\x00\x00\x00\x00\x00")
    assert not mp3.looks_like_mp3(b"<html>")
    assert not mp3.looks_like_mp3(b"\xff\xff\xff\xff")  # invalid bitrate/layer bits
    header = mp3.parse_frame_header(MP3_BYTES[:4])
    assert header is not None
    assert (header.mpeg1, header.layer, header.bitrate_kbps, header.sample_rate, header.mono) == (
        False,
        3,
        32,
        22050,
        True,
    )
    # An ID3v2 tag in front is skipped (size is a synchsafe integer).
    tag = b"ID3\x04\x00\x00" + bytes([0, 0, 1, 0]) + b"\x00" * 128
    path = tmp_path / "tagged.mp3"
    path.write_bytes(tag + MP3_BYTES)
    with path.open("rb") as fh:
        assert mp3.duration_seconds(fh, path.stat().st_size) == pytest.approx(9.404, abs=0.01)
    path.write_bytes(tag + b"no audio here" * 10)
    with path.open("rb") as fh:
        assert mp3.duration_seconds(fh, path.stat().st_size) is None


# --- concurrency (PostgreSQL) --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_eight_workers_at_once_download_once(
    postgres_only: None, record_host: RunningSandbox, integration: Integration, settings: Any
) -> None:
    from tests.concurrency import at_once

    path = "/records/race.mp3"
    recording = make_recording(integration, record_host.url + path)
    # A slow first byte keeps the winner's claim open while the others try.
    record_host.control("POST", "faults", {"path": path, "delay": 0.3})
    results = at_once(
        [lambda i=i: recording_download(recording_id=recording.pk, claim_token=f"task-{i}") for i in range(8)]
    )
    assert results.count(Recording.Status.STORED) == 1
    assert set(results) == {Recording.Status.STORED, Recording.Status.DOWNLOADING}
    assert record_host.state.record_downloads == [path]
    recording.refresh_from_db()
    assert recording.status == Recording.Status.STORED
    assert recording.attempts == 1
    assert media_path(recording.storage_key).read_bytes() == MP3_BYTES
    assert leftovers(settings) == []

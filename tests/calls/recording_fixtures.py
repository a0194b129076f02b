"""The recordings tests' shared fixtures and helpers (tests/calls/test_recordings_*.py, tests/webhooks): the
guide's mp3 and `recorded` fixture, production-like settings (`recordings_settings`, autouse where a module
binds it), the sandbox serving records, pending rows, eager retries and a fake DNS.
"""

from __future__ import annotations

import copy
import socket
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import storages
from django.utils import timezone

from calls.models import Call, Recording
from integrations.models import Integration
from sandbox.testing import RunningSandbox, running_sandbox
from tests.calls import payloads as p
from tests.conftest import load_fixture

MP3 = Path(__file__).resolve().parents[2] / "sandbox" / "static" / "recording.mp3"
MP3_BYTES = MP3.read_bytes()
GUIDE_RECORD_PATH = "/records/34380859/2020/12/18/9B58D12A_EC9D5E37_56485D37_0EE913E5.mp3"
GUIDE_CALL_ID = "SDvapac01-3bd7d743109f2668f16de50c9ab53559100@127.0.0.1"
PUBLIC_IP = "93.184.216.34"

Notify = Callable[[dict[str, Any]], Any]


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

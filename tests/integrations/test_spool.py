"""The notification spool (integrations/spool.py) with a simulated outage on SQLite.

The real thing — a private PostgreSQL stopped under the running stack — is tests/faults/test_database_down.py.
"""

from __future__ import annotations

import io
import json
import logging
import os
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError
from django.test import Client
from django.utils import timezone

from calls.models import Call, CallEvent
from integrations import spool
from integrations.applier import applier_drain
from integrations.models import Integration, NotificationEvent
from tests.calls.conftest import directory  # noqa: F401 - the PBX directory of the guide's payloads
from tests.calls.payloads import incoming_answered
from tests.integrations.spool_fixtures import LOST, database_down, post, spooled_files

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_notification_arriving_while_the_database_is_down_is_spooled_and_acknowledged(
    client: Client, integration: Integration, settings: Any
) -> None:
    body = incoming_answered()[0]
    with database_down():
        response = post(client, integration.notify_path, body)
    assert response.status_code == 200
    assert response.json() == {"ok": True, "spooled": True}
    [path] = spooled_files(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    record = json.loads(path.read_bytes())
    assert record["token"] == integration.notify_token
    assert json.loads(spool._read(path)[1]) == body
    # Written whole under a temporary name first: nothing else is left in the folder.
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert NotificationEvent.objects.count() == 0


def test_storing_that_fails_for_want_of_the_database_is_spooled(
    client: Client, integration: Integration, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    body = incoming_answered()[0]
    with (
        mock.patch("integrations.views.notification_store", side_effect=OperationalError(LOST)),
        caplog.at_level(logging.WARNING),
    ):
        response = post(client, integration.notify_path, body)
    assert response.json() == {"ok": True, "spooled": True}
    assert len(spooled_files(settings)) == 1
    # The token is the credential: it never reaches a log line.
    assert integration.notify_token not in caplog.text
    assert "Notification spooled" in caplog.text


def test_an_ordinary_query_error_is_no_outage_and_is_not_spooled(
    client: Client, integration: Integration, settings: Any
) -> None:
    client.raise_request_exception = False
    with mock.patch(
        "integrations.views.notification_store", side_effect=OperationalError("division by zero")
    ) as store:
        store.side_effect.__cause__ = type("DivisionByZero", (Exception,), {"sqlstate": "22012"})()
        response = post(client, integration.notify_path, incoming_answered()[0])
    assert response.status_code == 500
    assert spooled_files(settings) == []


@pytest.mark.usefixtures("directory")
def test_replay_stores_and_applies_each_notification_once_with_its_arrival_time(
    client: Client, integration: Integration, settings: Any
) -> None:
    notes = incoming_answered()
    with database_down():
        for body in notes:
            assert post(client, integration.notify_path, body).json()["spooled"] is True
        # The same notification once more (MTT resends; the mobile app doubles): spooled twice.
        post(client, integration.notify_path, notes[0])
    spooled_at = timezone.now()
    # And delivered live once more after the database came back, before the replay ran.
    assert post(client, integration.notify_path, notes[1]).json()["duplicate"] is False

    result = spool.spool_replay()
    applier_drain()

    assert (result.stored, result.duplicates, result.rejected, result.failed) == (len(notes) - 1, 2, 0, 0)
    assert spooled_files(settings) == []
    assert NotificationEvent.objects.count() == len(notes)
    assert set(NotificationEvent.objects.values_list("status", flat=True)) == {"applied"}
    assert CallEvent.objects.count() == len(notes)
    call = Call.objects.get()
    assert call.status == Call.Status.ANSWERED
    # Stored with the time it arrived, not the time of the replay.
    first = NotificationEvent.objects.order_by("received_at").first()
    assert first is not None and first.received_at < spooled_at
    # A second replay finds nothing.
    assert str(spool.spool_replay()) == "stored 0, duplicates 0, rejected 0, failed 0, left 0"


def test_replay_keeps_the_files_while_the_database_is_still_down(
    client: Client, integration: Integration, settings: Any
) -> None:
    with database_down():
        for body in incoming_answered()[:2]:
            post(client, integration.notify_path, body)
    with mock.patch("integrations.spool.notify_target_for_token", side_effect=OperationalError(LOST)):
        result = spool.spool_replay()
    assert result.database_down and result.left == 2 and result.stored == 0
    assert len(spooled_files(settings)) == 2
    assert spool.spool_replay().stored == 2
    assert spooled_files(settings) == []


def test_a_spooled_notification_whose_token_no_longer_exists_is_set_aside(
    client: Client, integration: Integration, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    unknown = "/mtt/" + "x" * 43 + "/"
    with database_down():
        assert post(client, unknown, incoming_answered()[0]).json()["spooled"] is True
    with caplog.at_level(logging.WARNING, logger="integrations.spool"):
        result = spool.spool_replay()
    assert result.rejected == 1 and result.stored == 0
    assert spooled_files(settings) == []
    rejected = list((Path(settings.NOTIFY_SPOOL_DIR) / "rejected").glob("*.json"))
    assert len(rejected) == 1
    assert "not one of ours" in caplog.text and "x" * 43 not in caplog.text
    assert NotificationEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("path", "raw", "status"),
    [
        ("{notify}", b'{"event": "x", "pad": "' + b"a" * 300_000 + b'"}', 413),
        ("/mtt/short/", None, 404),
    ],
)
def test_what_the_live_view_refuses_is_never_spooled(
    client: Client, integration: Integration, settings: Any, path: str, raw: bytes | None, status: int
) -> None:
    raw = raw if raw is not None else json.dumps(incoming_answered()[0]).encode()
    with database_down():
        response = client.post(
            path.format(notify=integration.notify_path), data=raw, content_type="application/json"
        )
    assert response.status_code == status
    assert spooled_files(settings) == []


def test_a_content_length_that_is_no_number_is_refused_while_spooling(
    client: Client, integration: Integration, settings: Any
) -> None:
    """As the live view: 400 and a reason, not the 500 Django's request.body would raise."""
    body = json.dumps(incoming_answered()[0]).encode()
    with database_down():
        response = client.generic(
            "POST", integration.notify_path, body, content_type="application/json", CONTENT_LENGTH="12abc"
        )
    assert response.status_code == 400
    assert response.json()["error"] == "Content-Length is not a number"
    assert spooled_files(settings) == []


def test_the_allow_list_holds_while_spooling(client: Client, integration: Integration, settings: Any) -> None:
    settings.NOTIFY_ALLOWED_NETWORKS = ["192.0.2.0/24"]
    with database_down():
        response = post(client, integration.notify_path, incoming_answered()[0])
    assert response.status_code == 403
    assert spooled_files(settings) == []


def test_a_full_spool_answers_503_with_retry_after(
    client: Client, integration: Integration, settings: Any
) -> None:
    settings.NOTIFY_SPOOL_MAX_FILES = 2
    with database_down():
        answers = [post(client, integration.notify_path, body) for body in incoming_answered()[:3]]
    assert [a.status_code for a in answers] == [200, 200, 503]
    assert int(answers[2]["Retry-After"]) > 0
    assert len(spooled_files(settings)) == 2


def test_the_byte_cap_holds_too(client: Client, integration: Integration, settings: Any) -> None:
    settings.NOTIFY_SPOOL_MAX_BYTES = 1500
    with database_down():
        answers = [post(client, integration.notify_path, body) for body in incoming_answered()[:2]]
    assert [a.status_code for a in answers] == [200, 503]


def test_an_unwritable_spool_answers_503(client: Client, integration: Integration, settings: Any) -> None:
    blocker = Path(settings.VAR_DIR) / "blocked"
    blocker.write_text("a file where the folder should be")
    settings.NOTIFY_SPOOL_DIR = blocker / "spool"
    with database_down():
        response = post(client, integration.notify_path, incoming_answered()[0])
    assert response.status_code == 503
    assert response["Retry-After"]


def test_one_replay_at_a_time(client: Client, integration: Integration, settings: Any) -> None:
    with database_down():
        post(client, integration.notify_path, incoming_answered()[0])
    folder = Path(settings.NOTIFY_SPOOL_DIR)
    with spool._replay_lock(folder) as locked:
        assert locked
        assert spool.spool_replay().busy is True
    assert spool.spool_replay().stored == 1


def test_a_torn_temporary_file_is_cleaned_up_and_never_replayed(
    client: Client, integration: Integration, settings: Any
) -> None:
    folder = Path(settings.NOTIFY_SPOOL_DIR)
    folder.mkdir(parents=True)
    torn = folder / ".00000000000000000001-1-deadbeef.json.0000.tmp"
    torn.write_bytes(b'{"version": 2, "tok')
    old = (timezone.now() - timedelta(minutes=5)).timestamp()
    os.utime(torn, (old, old))
    result = spool.spool_replay()
    assert (result.stored, result.rejected, result.failed) == (0, 0, 0)
    assert not torn.exists()


def test_an_unreadable_file_is_rejected(settings: Any, db: Any) -> None:
    folder = Path(settings.NOTIFY_SPOOL_DIR)
    folder.mkdir(parents=True)
    (folder / "00000000000000000001-1-deadbeef.json").write_text("{not json")
    assert spool.spool_replay().rejected == 1
    assert (folder / "rejected" / "00000000000000000001-1-deadbeef.json").exists()


def test_the_command_replays(client: Client, integration: Integration, settings: Any) -> None:
    with database_down():
        post(client, integration.notify_path, incoming_answered()[0])
    out = io.StringIO()
    call_command("mtt", "spool-replay", stdout=out)
    assert "stored 1" in out.getvalue()
    assert NotificationEvent.objects.count() == 1


def test_the_command_fails_while_notifications_are_left(
    client: Client, integration: Integration, settings: Any
) -> None:
    with database_down():
        post(client, integration.notify_path, incoming_answered()[0])
    with (
        mock.patch("integrations.spool.notify_target_for_token", side_effect=OperationalError(LOST)),
        pytest.raises(CommandError),
    ):
        call_command("mtt", "spool-replay")


def test_healthz_tells_how_many_notifications_wait(client: Client, integration: Integration) -> None:
    with database_down():
        post(client, integration.notify_path, incoming_answered()[0])
    assert client.get("/healthz").json()["inbox"]["spooled_notifications"] == 1

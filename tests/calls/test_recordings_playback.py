"""Playback: the media view (permission, Range, the access log), the players on the pages, the CSV
column, the screen-pop helper and the admin."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from calls.models import Call, Recording, RecordingAccess
from integrations.models import Integration
from sandbox.testing import RunningSandbox
from tests.calls import recording_fixtures as shared
from tests.calls.recording_fixtures import MP3_BYTES, make_recording

# The fixtures of the shared module, under their names (autouse: production-like settings).
recordings_settings = shared.recordings_settings
record_host = shared.record_host

pytestmark = pytest.mark.django_db

SIZE = len(MP3_BYTES)


def grant_listen(user: Any) -> Any:
    user.user_permissions.add(
        Permission.objects.get(codename="listen_recording", content_type__app_label="calls")
    )
    return get_user_model().objects.get(pk=user.pk)  # fresh permission cache


@pytest.fixture
def stored(integration: Integration) -> Recording:
    """A stored recording whose file is in the recordings storage."""
    recording = make_recording(integration, "https://records.mtt.ru/a.mp3", call_key="played")
    storages["recordings"].save(recording.storage_key, ContentFile(MP3_BYTES))
    Recording.objects.filter(pk=recording.pk).update(
        status=Recording.Status.STORED, size=SIZE, stored_at=timezone.now(), duration_seconds=9.4
    )
    Call.objects.filter(pk=recording.call_id).update(started_at=timezone.now())
    recording.refresh_from_db()
    return recording


@pytest.fixture
def listener(client: Client, operator_user: Any) -> Any:
    user = grant_listen(operator_user)
    client.force_login(user)
    return user


def media(client: Client, recording: Recording, *, range_: str | None = None, download: bool = False) -> Any:
    url = reverse("calls:recording", args=[recording.pk]) + ("?download=1" if download else "")
    headers = {"Range": range_} if range_ else {}
    return client.get(url, headers=headers)


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


# --- who may listen ------------------------------------------------------------------------------


def test_anonymous_is_sent_to_login(client: Client, stored: Recording) -> None:
    response = media(client, stored)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert RecordingAccess.objects.count() == 0


def test_logged_in_without_the_permission_is_forbidden(
    client: Client, stored: Recording, operator_user: Any
) -> None:
    client.force_login(operator_user)
    assert media(client, stored).status_code == 403
    assert media(client, stored, download=True).status_code == 403
    assert RecordingAccess.objects.count() == 0


def test_media_files_have_no_public_url(client: Client, stored: Recording, admin_user: Any) -> None:
    from django.conf import settings

    client.force_login(admin_user)
    assert client.get(f"/{settings.MEDIA_URL}{stored.storage_key}").status_code == 404
    assert client.get(f"/media/{stored.storage_key}").status_code == 404


def test_only_stored_recordings_are_served(client: Client, listener: Any, stored: Recording) -> None:
    Recording.objects.filter(pk=stored.pk).update(status=Recording.Status.DELETED)
    assert media(client, stored).status_code == 404
    assert client.get(reverse("calls:recording", args=[999999])).status_code == 404


def test_missing_file_is_404(client: Client, listener: Any, stored: Recording) -> None:
    storages["recordings"].delete(stored.storage_key)
    assert media(client, stored).status_code == 404


def test_only_get_and_head(client: Client, listener: Any, stored: Recording) -> None:
    url = reverse("calls:recording", args=[stored.pk])
    assert client.post(url).status_code == 405
    assert client.head(url).status_code == 200
    assert RecordingAccess.objects.count() == 0  # HEAD is not a listen


# --- what is sent --------------------------------------------------------------------------------


def test_full_file_inline(client: Client, listener: Any, stored: Recording) -> None:
    response = media(client, stored)
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/mpeg"
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Length"] == str(SIZE)
    assert response["Content-Disposition"].startswith("inline")
    assert "private" in response["Cache-Control"] and "no-store" in response["Cache-Control"]
    assert body(response) == MP3_BYTES


def test_download_is_an_attachment(client: Client, listener: Any, stored: Recording) -> None:
    response = media(client, stored, download=True)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    assert f"-{stored.pk}.mp3" in response["Content-Disposition"]
    assert body(response) == MP3_BYTES


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-", 1000, SIZE - 1),
        ("bytes=1000-1999", 1000, 1999),
        ("bytes=-500", SIZE - 500, SIZE - 1),
        (f"bytes=100-{SIZE + 5000}", 100, SIZE - 1),
        (f"bytes=-{SIZE * 2}", 0, SIZE - 1),
    ],
)
def test_range_requests_get_206(
    client: Client, listener: Any, stored: Recording, header: str, first: int, last: int
) -> None:
    response = media(client, stored, range_=header)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {first}-{last}/{SIZE}"
    assert response["Content-Length"] == str(last - first + 1)
    assert response["Accept-Ranges"] == "bytes"
    assert body(response) == MP3_BYTES[first : last + 1]


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", f"bytes={SIZE + 10}-{SIZE + 20}", "bytes=-0"])
def test_unsatisfiable_range_is_416(client: Client, listener: Any, stored: Recording, header: str) -> None:
    response = media(client, stored, range_=header)
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{SIZE}"


# "bytes=1000…0-" with 5000 digits: found by fuzzing, int() refused it past 4300 digits (a 500).
@pytest.mark.parametrize(
    "header", ["bytes=5-2", "bytes=0-1,5-6", "items=0-10", "bytes=abc", "bytes=1" + "0" * 5000 + "-"]
)
def test_ranges_we_do_not_serve_get_the_whole_file(
    client: Client, listener: Any, stored: Recording, header: str
) -> None:
    response = media(client, stored, range_=header)
    assert response.status_code == 200
    assert body(response) == MP3_BYTES


# --- the access log ------------------------------------------------------------------------------


def test_every_listen_and_download_is_logged_but_not_every_seek(
    client: Client, listener: Any, stored: Recording
) -> None:
    body(media(client, stored))  # the player's first request
    body(media(client, stored, range_="bytes=0-"))  # a player starting with a range
    body(media(client, stored, range_="bytes=20000-"))  # seeking
    body(media(client, stored, range_="bytes=30000-"))  # seeking
    body(media(client, stored, download=True))

    log = list(RecordingAccess.objects.order_by("pk").values_list("user", "action", "ip", "recording"))
    assert log == [
        (listener.pk, "listen", "127.0.0.1", stored.pk),
        (listener.pk, "listen", "127.0.0.1", stored.pk),
        (listener.pk, "download", "127.0.0.1", stored.pk),
    ]
    assert all(a.at is not None for a in RecordingAccess.objects.all())


def test_access_log_is_visible_in_the_admin(client: Client, stored: Recording, admin_user: Any) -> None:
    client.force_login(admin_user)
    body(media(client, stored))
    page = client.get(reverse("admin:calls_recordingaccess_changelist"))
    assert page.status_code == 200
    assert "root" in page.content.decode()
    detail = client.get(reverse("admin:calls_recording_change", args=[stored.pk]))
    assert detail.status_code == 200
    html = detail.content.decode()
    assert f'src="{stored.get_absolute_url()}"' in html  # the player
    assert "127.0.0.1" in html  # the access inline


# --- the pages -----------------------------------------------------------------------------------


def test_call_log_and_detail_show_the_player_only_with_the_permission(
    client: Client, stored: Recording, operator_user: Any
) -> None:
    src = stored.get_absolute_url()
    client.force_login(operator_user)
    log = client.get(reverse("calls:log"), {"period": "all"}).content.decode()
    detail = client.get(reverse("calls:detail", args=[stored.call_id])).content.decode()
    data_src = f'data-src="{stored.get_absolute_url()}"'
    assert "<audio" not in log and "<audio" not in detail and src not in log and src not in detail

    client.force_login(grant_listen(operator_user))
    log = client.get(reverse("calls:log"), {"period": "all"}).content.decode()
    # The log's players come on demand: a button that puts the player in its place (static/js/app.js).
    assert '<button type="button" class="play-recording" ' + data_src in log
    assert f'href="{stored.get_absolute_url()}?download=1"' in log
    detail = client.get(reverse("calls:detail", args=[stored.call_id])).content.decode()
    # The call's page too, with the duration shown before anything is fetched.
    assert '<button type="button" class="play-recording" ' + data_src in detail
    assert "0:09" in detail  # the duration


def test_a_recording_not_stored_yet_shows_its_status(
    client: Client, listener: Any, integration: Integration
) -> None:
    recording = make_recording(integration, "https://records.mtt.ru/b.mp3", call_key="waiting")
    Call.objects.filter(pk=recording.call_id).update(started_at=timezone.now())
    html = client.get(reverse("calls:log"), {"period": "all"}).content.decode()
    assert "<audio" not in html
    assert str(Recording.Status.PENDING.label) in html or "Ожидает" in html


def test_contact_page_shows_the_player(client: Client, listener: Any, stored: Recording) -> None:
    from contacts.models import Contact

    contact = Contact.objects.create(name="Клиент")
    Call.objects.filter(pk=stored.call_id).update(contact=contact)
    html = client.get(reverse("contacts:detail", args=[contact.pk])).content.decode()
    assert f'src="{stored.get_absolute_url()}"' in html


def test_csv_export_has_the_absolute_recording_url(
    client: Client, listener: Any, stored: Recording, settings: Any
) -> None:
    settings.SITE_URL = "https://crm.example.com"
    response = client.get(reverse("calls:export_csv"), {"period": "all"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8"))))
    assert [r["recording_url"] for r in rows] == [f"https://crm.example.com/recordings/{stored.pk}/"]


# --- the admin -----------------------------------------------------------------------------------


def test_admin_lists_filters_and_downloads_again(
    client: Client,
    admin_user: Any,
    integration: Integration,
    record_host: RunningSandbox,
    django_capture_on_commit_callbacks: Any,
) -> None:
    failed = make_recording(
        integration,
        record_host.url + "/records/again.mp3",
        status=Recording.Status.FAILED,
        failure_reason="HTTP 503",
        expiring_soon=True,
    )
    client.force_login(admin_user)
    url = reverse("admin:calls_recording_changelist")
    assert client.get(url).status_code == 200
    assert client.get(url, {"status__exact": "failed"}).status_code == 200
    listed = client.get(url, {"expiring_soon__exact": "1"})
    assert listed.status_code == 200 and listed.context["cl"].result_count == 1
    assert client.get(reverse("admin:calls_recording_add")).status_code == 403

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url, {"action": "download_again", "_selected_action": [failed.pk]}, follow=True
        )
    assert response.status_code == 200
    failed.refresh_from_db()
    assert failed.status == Recording.Status.STORED
    assert record_host.state.record_downloads == ["/records/again.mp3"]


def test_download_again_needs_the_change_permission(
    client: Client, operator_user: Any, integration: Integration
) -> None:
    from calls.admin import RecordingAdmin

    staff = grant_listen(operator_user)
    staff.is_staff = True
    staff.save()
    staff.user_permissions.add(Permission.objects.get(codename="view_recording"))
    client.force_login(get_user_model().objects.get(pk=staff.pk))
    response = client.get(reverse("admin:calls_recording_changelist"))
    assert response.status_code == 200
    assert "download_again" not in response.content.decode()
    assert RecordingAdmin.actions == ["download_again"]


def test_the_screen_pop_card_plays_earlier_calls_recordings(
    integration: Integration, stored: Recording
) -> None:
    from calls.realtime import cards as realtime

    earlier = Call.objects.get(pk=stored.call_id)
    Call.objects.filter(pk=earlier.pk).update(
        client_number="+79219462761", started_at=timezone.now() - timezone.timedelta(days=1)
    )
    unrecorded = Call.objects.create(
        integration=integration,
        call_key="no-record",
        client_number="+79219462761",
        started_at=timezone.now() - timezone.timedelta(hours=1),
    )
    pending = make_recording(integration, "https://records.mtt.ru/b.mp3", call_key="pending-one")
    Call.objects.filter(pk=pending.call_id).update(
        client_number="+79219462761", started_at=timezone.now() - timezone.timedelta(hours=2)
    )
    now_ringing = Call.objects.create(
        integration=integration, call_key="ringing", client_number="+79219462761", started_at=timezone.now()
    )

    card = realtime.card(now_ringing, contact=None, phase="ringing", connected_at=None)

    assert [(c["id"], c["recording_url"]) for c in card["recent"]] == [
        (unrecorded.pk, None),
        (pending.call_id, None),  # not stored yet: nothing to play
        (earlier.pk, f"/recordings/{stored.pk}/"),
    ]
    assert card["recording_url"] is None  # a ringing call has no recording


def test_the_ended_card_plays_the_calls_first_stored_recording(
    integration: Integration, stored: Recording
) -> None:
    """The card an operator keeps after hang-up links the call's own recording once one is stored: the
    first stored one (two legs may each have one), never one still pending or of another call."""
    from calls.realtime import cards as realtime

    call = Call.objects.get(pk=stored.call_id)
    later = make_recording(
        integration, "https://records.mtt.ru/later.mp3", call_key="played", leg_call_id="played-2"
    )
    Recording.objects.filter(pk=later.pk).update(
        status=Recording.Status.STORED, created_at=stored.created_at + timezone.timedelta(seconds=5)
    )
    unrecorded = make_recording(integration, "https://records.mtt.ru/c.mp3", call_key="waiting")

    def ended(of: Call) -> dict[str, Any]:
        return realtime.card(of, contact=None, phase=realtime.ENDED, connected_at=None, recent=False)

    assert ended(call)["recording_url"] == f"/recordings/{stored.pk}/"
    assert ended(Call.objects.get(pk=unrecorded.call_id))["recording_url"] is None  # pending: nothing yet
    assert realtime.card(call, contact=None, phase="ringing", connected_at=None)["recording_url"] is None
    Recording.objects.filter(pk=stored.pk).update(status=Recording.Status.FAILED)
    assert ended(call)["recording_url"] == f"/recordings/{later.pk}/"


def test_the_workspace_page_says_whether_the_user_may_listen(client: Client, operator_user: Any) -> None:
    import json
    import re

    def can_listen() -> bool:
        page = client.get(reverse("calls:workspace")).content.decode()
        match = re.search(r'<script id="live-config" type="application/json">(.*?)</script>', page)
        assert match, "no live-config on the page"
        return bool(json.loads(match.group(1))["can_listen"])

    client.force_login(operator_user)
    assert can_listen() is False
    client.force_login(grant_listen(operator_user))
    assert can_listen() is True


# --- the client's address behind the proxy (issue 18, probe 7) ----------------------------------


def test_the_log_has_the_clients_address_from_a_trusted_proxy(
    client: Client, listener: Any, stored: Recording, settings: Any
) -> None:
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    # The proxy (10.0.0.2) appends the address it got the request from; a client-written entry before it
    # is ignored.
    body(
        client.get(
            reverse("calls:recording", args=[stored.pk]),
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7",
        )
    )
    assert list(RecordingAccess.objects.values_list("ip", flat=True)) == ["203.0.113.7"]


def test_a_client_cannot_write_its_own_address_into_the_log(
    client: Client, listener: Any, stored: Recording, settings: Any
) -> None:
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    body(
        client.get(
            reverse("calls:recording", args=[stored.pk]),
            REMOTE_ADDR="198.51.100.4",  # not a proxy: its X-Forwarded-For is its own invention
            HTTP_X_FORWARDED_FOR="1.2.3.4",
        )
    )
    assert list(RecordingAccess.objects.values_list("ip", flat=True)) == ["198.51.100.4"]

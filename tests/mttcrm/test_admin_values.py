"""The admin shows our codes and MTT's names in words ("разговор", "звонок начат", "звонок"), not as
stored ("connected", "placed", "callNotifications"); the raw value stays in the notification's body."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import models
from django.test import Client
from django.utils import timezone, translation

OUR_APPS = {"api", "calls", "contacts", "integrations", "monitoring", "webhooks"}
# Filters whose raw values are what an admin reads there: MTT's API method names in the request log.
RAW_ON_PURPOSE = {"MttRequestLog.method"}


def test_no_filter_of_ours_lists_raw_values() -> None:
    """A filter on a text column lists the values as stored unless the field has choices (labels)."""
    raw = []
    for model in apps.get_models():
        if model._meta.app_label not in OUR_APPS or not admin.site.is_registered(model):
            continue
        for entry in admin.site.get_model_admin(model).list_filter:
            name = entry[0] if isinstance(entry, tuple) else entry
            if not isinstance(name, str) or "__" in name:
                continue  # a filter of our own (SimpleListFilter) names its choices itself
            field = model._meta.get_field(name)
            if isinstance(field, models.CharField) and not field.choices:
                raw.append(f"{model.__name__}.{name}")
    assert sorted(set(raw) - RAW_ON_PURPOSE) == []


@pytest.fixture
def ru_admin(admin_user: Any) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="ru")
    client.force_login(admin_user)
    return client


@pytest.fixture
def event(integration: Any) -> Any:
    from calls.models import Call, CallEvent, CallLeg
    from integrations.models import NotificationEvent

    now = timezone.now()
    body = {"event": "callNotifications", "result": {"callInfo": {"state": "connected"}}}
    note = NotificationEvent.objects.create(
        integration=integration, event="callNotifications", body=body, fingerprint="f1"
    )
    call = Call.objects.create(integration=integration, call_key="c-1", started_at=now)
    leg = CallLeg.objects.create(call=call, integration=integration, leg_id="c-1~1", last_state="connected")
    return CallEvent.objects.create(
        call=call, leg=leg, notification=note, state="connected", occurred_at=now, received_at=now
    )


def _filter_choices(response: Any, title: str) -> list[str]:
    cl = response.context["cl"]
    spec = next(s for s in cl.filter_specs if str(s.title) == title)
    return [str(c["display"]) for c in spec.choices(cl)]


@pytest.mark.django_db
def test_call_events_show_the_state_in_words(ru_admin: Client, event: Any) -> None:
    response = ru_admin.get("/admin/calls/callevent/")
    assert _filter_choices(response, "состояние") == ["Все", "разговор"]
    page = response.content.decode()
    assert "разговор" in page
    assert ">connected<" not in page
    detail = ru_admin.get(f"/admin/calls/callevent/{event.pk}/change/").content.decode()
    assert '<div class="readonly">разговор</div>' in detail
    # The filter filters.
    assert ru_admin.get("/admin/calls/callevent/?state=connected").context["cl"].result_count == 1
    assert ru_admin.get("/admin/calls/callevent/?state=finished").context["cl"].result_count == 0
    # The call's page lists its events and legs in words too.
    call_page = ru_admin.get(f"/admin/calls/call/{event.call_id}/change/").content.decode()
    assert ">connected<" not in call_page
    assert call_page.count(">разговор<") == 2  # the leg's last state, the event's state
    assert f"{event.leg_id}: разговор" in call_page  # the event's row title
    legs = ru_admin.get("/admin/calls/callleg/")
    assert _filter_choices(legs, "последнее состояние") == ["Все", "разговор"]


@pytest.mark.django_db
def test_a_click_to_call_request_says_its_outcome_in_words(ru_admin: Client) -> None:
    from calls.models import DialRequest

    user = get_user_model().objects.create_user("ivanova")
    dial = DialRequest.objects.create(user=user, number="+74996497803", status="placed", code="placed")
    DialRequest.objects.create(user=user, number="+74996497804", status="failed", code="something_new")
    response = ru_admin.get("/admin/calls/dialrequest/")
    assert _filter_choices(response, "код") == ["Все", "другой исход", "звонок начат"]
    detail = ru_admin.get(f"/admin/calls/dialrequest/{dial.pk}/change/").content.decode()
    assert '<div class="readonly">звонок начат</div>' in detail
    assert ">placed<" not in detail


@pytest.mark.django_db
def test_a_notification_names_its_event_in_words_and_keeps_the_body_as_sent(
    ru_admin: Client, event: Any
) -> None:
    response = ru_admin.get("/admin/integrations/notificationevent/")
    assert _filter_choices(response, "событие") == ["Все", "звонок"]
    assert ">callNotifications<" not in response.content.decode()
    detail = ru_admin.get(f"/admin/integrations/notificationevent/{event.notification_id}/change/")
    page = detail.content.decode()
    assert '<div class="readonly">звонок</div>' in page
    assert "callNotifications" in page  # in the stored body, for whoever debugs
    assert json.dumps(event.notification.body["event"]) in page.replace("&quot;", '"')


# Choice labels the same in both languages: a number's type as MTT names it.
SAME_IN_RUSSIAN = {"8800", "API", "HTTP", "JSON", "CSV"}


def test_every_choice_of_our_models_in_the_admin_has_a_russian_label() -> None:
    """A choice label without a translation showed English ("Приоритет: Bookkeeping")."""
    from django.utils import translation

    english = []
    for model in apps.get_models():
        if model._meta.app_label not in OUR_APPS or not admin.site.is_registered(model):
            continue
        for field in model._meta.get_fields():
            for value, label in getattr(field, "flatchoices", None) or []:
                with translation.override("ru"):
                    text = str(label)
                if text not in SAME_IN_RUSSIAN and re.fullmatch(r"[\x00-\x7f]+", text) and text != str(value):
                    english.append(f"{model.__name__}.{field.name}={value}: {text}")
    assert english == []


@pytest.mark.django_db
def test_a_notifications_title_names_its_event_in_words_at_moscow_time(integration: Any) -> None:
    from datetime import UTC, datetime

    from django.utils import translation

    from integrations.models import NotificationEvent

    note = NotificationEvent(
        integration=integration,
        event="callNotifications",
        received_at=datetime(2026, 12, 4, 13, 36, 17, tzinfo=UTC),
    )
    with translation.override("ru"):
        assert str(note) == "звонок, 04.12.2026 16:36:17"


@pytest.mark.django_db
def test_a_notification_without_an_error_says_so_with_a_dash(ru_admin: Client, event: Any) -> None:
    page = ru_admin.get(
        f"/admin/integrations/notificationevent/{event.notification_id}/change/"
    ).content.decode()
    assert re.search(r'Причина словами:</label>\s*<div class="readonly">—</div>', page)
    assert "Приоритет" in page and "Bookkeeping" not in page


@pytest.mark.django_db
def test_a_calls_end_reason_reads_in_words_and_cannot_be_edited(ru_admin: Client, event: Any) -> None:
    """MTT's `reason` is the PBX's free text ("Answer leg disconnected"): the call's admin page says why in
    words, as the call's page does; the text is not a field an admin could change."""
    call = event.call
    call.end_reason, call.end_reason_code = "Answer leg disconnected", ""
    call.save()
    page = ru_admin.get(f"/admin/calls/call/{call.pk}/change/").content.decode()
    assert "вызываемая сторона положила трубку" in page
    assert "Answer leg disconnected" not in page
    assert 'name="end_reason"' not in page
    call.end_reason, call.end_reason_code = "", "17"
    call.save()
    page = ru_admin.get(f"/admin/calls/call/{call.pk}/change/").content.decode()
    assert '<div class="readonly">занято</div>' in page


@pytest.mark.django_db
def test_titles_of_a_follow_up_and_a_listen_read_local_time(integration: Any, admin_user: Any) -> None:
    """The admin's titles and links name these rows by a time: Moscow time as every page writes it, not UTC."""
    from datetime import UTC, datetime

    from calls.models import Call, FollowUpTask, Recording, RecordingAccess

    at = datetime(2026, 12, 4, 13, 5, tzinfo=UTC)  # 16:05 in Moscow
    call = Call.objects.create(integration=integration, call_key="c-9", started_at=at)
    task = FollowUpTask.objects.create(
        call=call, due_at=at, note="Отправить КП", created_by=admin_user, assignee=admin_user
    )
    assert str(task) == "04.12.2026 16:05 Отправить КП"
    recording = Recording.objects.create(
        integration=integration,
        call=call,
        leg_call_id="c-9~1",
        source_url="https://records.mtt.ru/1.mp3",
        mtt_expires_at=at,
    )
    access = RecordingAccess.objects.create(recording=recording, user=admin_user, action="listen")
    RecordingAccess.objects.filter(pk=access.pk).update(at=at)  # `at` is set on insert
    access.refresh_from_db()
    with translation.override("ru"):
        assert str(access) == f"Прослушивание {recording.pk}, 04.12.2026 16:05"


@pytest.mark.django_db
def test_a_call_legs_page_reads_in_words(ru_admin: Client, event: Any) -> None:
    """A leg's page showed MTT's reason, its states as a JSON list and the merge's field ranks as JSON."""
    leg = event.leg
    leg.reason, leg.states = "Originate leg disconnected", ["trying", "showing", "connected", "finished"]
    leg.field_ranks = {"tag": 0, "transport_id": 0}
    leg.save()
    page = ru_admin.get(f"/admin/calls/callleg/{leg.pk}/change/").content.decode()
    assert "звонящий положил трубку" in page
    assert "вызов, звонит телефон, разговор, звонок окончен" in page
    assert "Originate leg disconnected" not in page
    # JSON is HTML-escaped on the page: no raw state and no field ranks anywhere.
    assert "trying" not in page and "&quot;tag&quot;" not in page and "Transport ID" not in page

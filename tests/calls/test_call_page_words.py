"""What an operator reads on the call's page and the callbacks list: each person and number once, in words
(the operator by name, never a workplace's SIP ID; a contact the CRM named by its number shows the number
once), the follow-up's assignees without the user twice, and a recording's duration before playing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from calls.models import Call, CallbackTask, RecordingAccess
from contacts.models import Contact
from tests.personas import CLIENT_NUMBER, World

pytestmark = pytest.mark.django_db

SHOWN_NUMBER = "+7 921 946-27-61"  # CLIENT_NUMBER as people read it


def page(client: Client, user: Any, url: str) -> str:
    client.force_login(user)
    response = client.get(url, HTTP_ACCEPT_LANGUAGE="ru")
    assert response.status_code == 200
    return str(response.content.decode())


def dd_after(html: str, label: str) -> str:
    found = re.search(rf"<dt>{label}</dt>\s*<dd[^>]*>(.*?)</dd>", html, re.S)
    assert found is not None, label
    return found.group(1)


def test_the_call_page_names_the_operator_once_without_a_sip_id(client: Client, world: World) -> None:
    operator = world.users["operator"]
    operator.first_name, operator.last_name = "Мария", "Иванова"
    operator.save()
    workplace = world.own_call.workplace
    assert workplace is not None
    workplace.name = "Иванова Мария"
    workplace.save()
    html = page(client, operator, reverse("calls:detail", args=[world.own_call.pk]))
    assert dd_after(html, "Оператор") == "Мария Иванова"
    assert workplace.sip_id not in html


def test_the_call_page_names_a_workplace_that_is_not_the_operators(client: Client, world: World) -> None:
    # Taken on a colleague's seat: the seat is worth a note, by its name.
    seat = world.other_call.workplace
    assert seat is not None
    Call.objects.filter(pk=world.own_call.pk).update(workplace=seat)
    html = page(client, world.users["operator"], reverse("calls:detail", args=[world.own_call.pk]))
    operator = dd_after(html, "Оператор")
    assert operator == 'Operator <span class="muted">· рабочее место «other»</span>'
    # Nobody linked to the seat: the seat's name, and never its SIP ID.
    Call.objects.filter(pk=world.own_call.pk).update(operator=None)
    html = page(client, world.users["operator"], reverse("calls:detail", args=[world.own_call.pk]))
    assert dd_after(html, "Оператор") == 'other <span class="muted">· рабочее место</span>'
    assert seat.sip_id not in html


def test_the_follow_up_assignees_list_the_user_once_as_me(client: Client, world: World) -> None:
    operator = world.users["operator"]
    html = page(client, operator, reverse("calls:detail", args=[world.own_call.pk]))
    select = re.search(r'<select name="follow_up_for"[^>]*>(.*?)</select>', html, re.S)
    assert select is not None
    options = re.findall(r'<option value="(\d*)"[^>]*>([^<]*)</option>', select.group(1))
    assert options[0] == ("", "мне")
    assert str(operator.pk) not in [value for value, _ in options]
    assert ("", "мне") in options and (str(world.other_operator.pk), "Other") in options
    # A colleague is still a choice: the task goes to them.
    client.post(
        reverse("calls:wrap_up", args=[world.own_call.pk]),
        {"follow_up_at": "2030-01-02T10:00", "follow_up_for": world.other_operator.pk, "follow_up_note": "x"},
    )
    assert world.own_call.follow_ups.get().assignee == world.other_operator


def test_the_wrap_up_forms_labels_read_as_on_the_card(client: Client, world: World) -> None:
    """The desk's card labels its fields without Django's colon; the call's page now does too."""
    html = page(client, world.users["operator"], reverse("calls:detail", args=[world.own_call.pk]))
    form = re.search(r'<form[^>]*class="wrap-up-form[^"]*"[^>]*>(.*?)</form>', html, re.S)
    assert form is not None
    labels = re.findall(r"<label[^>]*>([^<]*)</label>", form.group(1))
    assert "Результат" in labels and "Что сделать" in labels
    assert [label for label in labels if label.strip().endswith(":")] == []


def test_a_contact_named_by_its_number_shows_the_number_once(client: Client, world: World) -> None:
    """The CRM made a contact for an unknown caller: its name is the number. The number is said once and
    leads to the contact, on the call's page and in the callbacks list."""
    nameless = Contact.objects.get(pk=world.contact.pk)
    nameless.name = ""
    nameless.save()
    operator = world.users["operator"]
    contact_url = reverse("contacts:detail", args=[nameless.pk])
    for url in (reverse("calls:detail", args=[world.own_call.pk]), reverse("calls:callbacks")):
        html = page(client, operator, url)
        assert html.count(SHOWN_NUMBER) == 1, url
        assert f'<a href="{contact_url}"><span class="phone" data-e164="{CLIENT_NUMBER}">' in html, url
    # A named contact: the name leads to it and the number follows, once each.
    Contact.objects.filter(pk=nameless.pk).update(name="Ольга Смирнова")
    for url in (reverse("calls:detail", args=[world.own_call.pk]), reverse("calls:callbacks")):
        html = page(client, operator, url)
        assert html.count(SHOWN_NUMBER) == 1 and f'<a href="{contact_url}">Ольга Смирнова</a>' in html, url
    # No contact at all: the number alone.
    CallbackTask.objects.update(contact=None)
    html = page(client, operator, reverse("calls:callbacks"))
    assert html.count(SHOWN_NUMBER) == 1 and contact_url not in html


def test_the_call_page_shows_a_recordings_duration_before_playing_and_fetches_nothing(
    client: Client, world: World
) -> None:
    listener = world.users["operator"]
    listener.user_permissions.add(Permission.objects.get(codename="listen_recording"))
    recording = world.recording
    recording.duration_seconds = 9
    recording.save()
    html = page(client, listener, reverse("calls:detail", args=[recording.call_id]))
    section = html[html.index('class="card recordings"') :].split("</section>")[0]
    assert '<span class="recording-duration">0:09</span>' in section
    # The player comes on ▶ (static/js/app.js): opening the page neither loads the file nor logs a listen.
    assert f'class="play-recording" data-src="{recording.get_absolute_url()}"' in section
    assert "<audio" not in html and "<li>" not in section
    assert "{#" not in section and "app.js" not in section  # no template comment leaks onto the page
    assert not RecordingAccess.objects.exists()


def test_a_call_with_no_events_yet_says_so_under_history(world: World) -> None:
    """A call whose notifications have not been applied yet (or the layout world's, made without any) showed
    the history's column headers over nothing: the table now says there are no events."""
    html = page(Client(), world.users["operator"], reverse("calls:detail", args=[world.own_call.pk]))
    assert "Событий пока нет." in html

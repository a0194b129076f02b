"""The screen pop's HTTP side: the workspace page, the resync endpoint, the note endpoint, the live board."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from calls.models import Call, CallbackTask
from contacts.models import Contact, PhoneNumber
from tests.calls import payloads as p

pytestmark = pytest.mark.django_db

Notify = Callable[[dict[str, Any]], Any]


def logged_in(user: Any, **kwargs: Any) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def page_config(response: Any) -> dict[str, Any]:
    match = re.search(
        r'<script id="live-config" type="application/json">(.*?)</script>', response.content.decode()
    )
    assert match, "no live-config on the page"
    return dict(json.loads(match.group(1)))


@pytest.fixture
def ringing(notify: Notify, directory: dict[str, Any]) -> Call:
    for body in p.incoming_answered()[:3]:
        notify(body)
    return Call.objects.get(call_key=p.BASE)


# --- the workspace page --------------------------------------------------------------------------------


def test_workspace_page_carries_the_socket_and_translated_texts(directory: dict[str, Any]) -> None:
    response = logged_in(directory["ivanova"]).get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Рабочее место</h1>" in html
    assert "js/live/main.js" in html and "css/workspace.css" in html
    config = page_config(response)
    assert config["mode"] == "workspace"
    assert config["ws_path"] == "/ws/workspace/"
    assert config["data_url"] == reverse("calls:active") == "/calls/active.json"
    assert config["resync_every_ms"] == 30_000
    assert config["strings"]["status"]["missed"] == "Пропущен"
    assert reverse("calls:board") not in html  # operators get no link to the live board


def test_workspace_lists_the_operators_recent_calls(notify: Notify, directory: dict[str, Any]) -> None:
    for body in p.incoming_missed():
        notify(body)
    for body in p.incoming_answered(base="other", client="+79031234567"):
        notify(body)
    Call.objects.filter(call_key="other").update(operator=directory["petrov"])
    recent = page_config(logged_in(directory["ivanova"]).get("/"))["recent"]
    assert [(c["number"], c["status"], c["phase"]) for c in recent] == [
        ("+79031234567", "answered", "ended"),  # her leg rang, even though another operator is recorded
        ("+78124241500", "missed", "ended"),
    ]
    assert page_config(logged_in(directory["sidorova"]).get("/"))["recent"] == []


def test_staff_get_the_live_board_link(admin_user: Any) -> None:
    assert reverse("calls:board") in logged_in(admin_user).get("/").content.decode()


# --- GET /calls/active.json -----------------------------------------------------------------------------


def test_active_calls_needs_login(client: Client) -> None:
    response = client.get(reverse("calls:active"))
    assert response.status_code == 401
    assert response.json()["ok"] is False


def test_active_calls_lists_only_the_users_live_cards(
    notify: Notify, directory: dict[str, Any], ringing: Call
) -> None:
    body = logged_in(directory["ivanova"]).get(reverse("calls:active")).json()
    assert isinstance(body["server_time"], float)
    [card] = body["calls"]
    assert card["id"] == ringing.pk
    assert card["phase"] == "ringing"
    assert card["number_display"] == "+7 812 424-15-00"
    assert logged_in(directory["petrov"]).get(reverse("calls:active")).json()["calls"] == []
    # A supervisor's own workspace shows their own cards only, not everyone's.
    staff = get_user_model().objects.create_user("boss", password="x-pass-123", is_staff=True)
    assert logged_in(staff).get(reverse("calls:active")).json()["calls"] == []

    for body in p.incoming_answered()[3:]:
        notify(body)
    assert logged_in(directory["ivanova"]).get(reverse("calls:active")).json()["calls"] == []


def test_a_withdrawn_leg_is_no_card_even_while_the_call_goes_on(
    notify: Notify, directory: dict[str, Any]
) -> None:
    for body in p.incoming_missed()[:4]:  # ... showing, hiding: the line leg still rings
        notify(body)
    assert Call.objects.get().status == Call.Status.RINGING
    assert logged_in(directory["ivanova"]).get(reverse("calls:active")).json()["calls"] == []


def test_the_wrap_up_card_comes_back_when_the_calls_final_finished_is_late_or_lost(
    notify: Notify, directory: dict[str, Any], settings: Any
) -> None:
    # Her leg finished, the line leg's finished (MTT's call-level end) has not come: the call is still "in
    # progress", and the resync gives her the wrap-up card the live push showed.
    bodies = p.incoming_answered()
    for body in bodies[:4] + bodies[5:]:
        notify(body)
    call = Call.objects.get()
    assert call.status == Call.Status.IN_PROGRESS and call.operator == directory["ivanova"]
    ivanova = logged_in(directory["ivanova"])
    [card] = ivanova.get(reverse("calls:active")).json()["calls"]
    assert (card["id"], card["phase"], card["status"]) == (call.pk, "ended", "in_progress")
    assert (card["operator_id"], card["wrapped_up"]) == (directory["ivanova"].pk, False)
    assert logged_in(directory["petrov"]).get(reverse("calls:active")).json()["calls"] == []
    # Not after CALLS_WRAPUP_CARD_MINUTES without a word of the call, nor with the feature off.
    Call.objects.filter(pk=call.pk).update(updated_at=timezone.now() - timedelta(minutes=61))
    assert ivanova.get(reverse("calls:active")).json()["calls"] == []
    Call.objects.filter(pk=call.pk).update(updated_at=timezone.now())
    settings.CALLS_WRAPUP_CARD_MINUTES = 0
    assert ivanova.get(reverse("calls:active")).json()["calls"] == []
    settings.CALLS_WRAPUP_CARD_MINUTES = 60
    assert len(ivanova.get(reverse("calls:active")).json()["calls"]) == 1
    # Saved: gone (the late finished, if it comes, changes nothing).
    ivanova.post(reverse("calls:wrap_up", args=[call.pk]), {"comment": "ok"}, HTTP_ACCEPT="application/json")
    assert ivanova.get(reverse("calls:active")).json()["calls"] == []
    notify(bodies[4])
    assert Call.objects.get().status == Call.Status.ANSWERED
    assert ivanova.get(reverse("calls:active")).json()["calls"] == []


def test_a_live_call_nobody_heard_of_for_half_a_day_is_dropped(
    directory: dict[str, Any], ringing: Call
) -> None:
    Call.objects.filter(pk=ringing.pk).update(updated_at=timezone.now() - timedelta(hours=13))
    assert logged_in(directory["ivanova"]).get(reverse("calls:active")).json()["calls"] == []


def test_a_missed_call_comes_back_as_a_notice_until_its_client_is_reached(
    notify: Notify, directory: dict[str, Any], settings: Any
) -> None:
    """The red "missed" notice survives a reload and follows the operator to the next page: the resync lists
    the missed calls that rang them, until a callback reaches the client or the window passes."""
    for body in p.incoming_missed():
        notify(body)
    for body in p.incoming_answered(base="answered", client="+79031234567"):
        notify(body)
    missed = Call.objects.get(call_key=p.BASE)
    assert missed.status == Call.Status.MISSED
    ivanova = logged_in(directory["ivanova"])
    [card] = ivanova.get(reverse("calls:active")).json()["calls"]
    assert (card["id"], card["phase"], card["status"], card["missed_notice"]) == (
        missed.pk,
        "ended",
        "missed",
        True,
    )
    assert card["number_display"] == "+7 812 424-15-00"
    # It rang ivanova's workplace only: nobody else gets the notice.
    assert logged_in(directory["petrov"]).get(reverse("calls:active")).json()["calls"] == []

    # Someone reached the client: the callback is closed, the notice is not brought back.
    CallbackTask.objects.filter(missed_calls=missed).update(closed_at=timezone.now())
    assert ivanova.get(reverse("calls:active")).json()["calls"] == []
    CallbackTask.objects.update(closed_at=None)
    assert len(ivanova.get(reverse("calls:active")).json()["calls"]) == 1
    # Rang longer ago than CALLS_WRAPUP_CARD_MINUTES, or the window off: none.
    settings.CALLS_WRAPUP_CARD_MINUTES = 0
    assert ivanova.get(reverse("calls:active")).json()["calls"] == []
    settings.CALLS_WRAPUP_CARD_MINUTES = 60
    Call.objects.filter(pk=missed.pk).update(ended_at=timezone.now() - timedelta(minutes=61))
    assert ivanova.get(reverse("calls:active")).json()["calls"] == []


# --- POST /calls/<id>/note/ ------------------------------------------------------------------------------


def test_note_is_appended_to_the_contacts_notes(directory: dict[str, Any], ringing: Call) -> None:
    Contact.objects.filter(pk=ringing.contact_id).update(notes="Старая заметка")
    client = logged_in(directory["ivanova"])
    url = reverse("calls:note", kwargs={"pk": ringing.pk})
    response = client.post(url, {"text": "  Хочет счёт на оплату  "})
    assert response.status_code == 200, response.content
    notes = Contact.objects.get(pk=ringing.contact_id).notes
    assert response.json() == {"ok": True, "notes": notes}
    first, second = notes.split("\n")
    assert first == "Старая заметка"
    assert re.fullmatch(r"\[\d\d\.\d\d\.\d{4} \d\d:\d\d, Мария Иванова\] Хочет счёт на оплату", second)


def test_note_needs_a_csrf_token(directory: dict[str, Any], ringing: Call) -> None:
    client = logged_in(directory["ivanova"], enforce_csrf_checks=True)
    url = reverse("calls:note", kwargs={"pk": ringing.pk})
    assert client.post(url, {"text": "x"}).status_code == 403
    token = client.get("/").context["csrf_token"]
    assert client.post(url, {"text": "x"}, HTTP_X_CSRFTOKEN=str(token)).status_code == 200


def test_note_refusals(client: Client, directory: dict[str, Any], ringing: Call) -> None:
    url = reverse("calls:note", kwargs={"pk": ringing.pk})
    assert client.post(url, {"text": "x"}).status_code == 401
    ivanova = logged_in(directory["ivanova"])
    assert ivanova.get(url).status_code == 405
    assert ivanova.post(url, {"text": "   "}).status_code == 400
    assert ivanova.post(url, {"text": "x" * 2001}).status_code == 400
    assert ivanova.post(reverse("calls:note", kwargs={"pk": 999999}), {"text": "x"}).status_code == 404
    # Another operator's call is none of petrov's business.
    assert logged_in(directory["petrov"]).post(url, {"text": "x"}).status_code == 404
    Call.objects.filter(pk=ringing.pk).update(contact=None)
    assert ivanova.post(url, {"text": "x"}).status_code == 409
    assert Contact.objects.filter(notes__contains="x").count() == 0


def test_a_nul_in_a_note_is_dropped(directory: dict[str, Any], ringing: Call) -> None:
    # Found by fuzzing: on PostgreSQL a NUL made saving the notes a DataError (500).
    url = reverse("calls:note", kwargs={"pk": ringing.pk})
    ivanova = logged_in(directory["ivanova"])
    assert ivanova.post(url, {"text": "\x00"}).status_code == 400  # nothing left: empty
    assert ivanova.post(url, {"text": "пере\x00звонить"}).status_code == 200
    assert Contact.objects.get(pk=ringing.contact_id).notes.endswith("] перезвонить")


# --- the live board ---------------------------------------------------------------------------------------


def test_live_board_is_for_supervisors(client: Client, directory: dict[str, Any], admin_user: Any) -> None:
    url = reverse("calls:board")
    assert client.get(url).status_code == 302
    assert logged_in(directory["ivanova"]).get(url).status_code == 403
    assert logged_in(directory["ivanova"]).get(reverse("calls:board_json")).status_code == 403
    response = logged_in(admin_user).get(url)
    assert response.status_code == 200
    config = page_config(response)
    assert (config["mode"], config["ws_path"]) == ("board", "/ws/live/")

    petrov = directory["petrov"]
    petrov.user_permissions.add(Permission.objects.get(codename="view_call", content_type__app_label="calls"))
    assert logged_in(petrov).get(url).status_code == 200


def test_live_board_json_lists_every_active_call(
    notify: Notify, directory: dict[str, Any], admin_user: Any, ringing: Call
) -> None:
    for body in p.outgoing(answered=True)[:3]:
        notify(body)
    rows = logged_in(admin_user).get(reverse("calls:board_json")).json()["calls"]
    assert [(r["direction"], r["status"], r["operators"]) for r in rows] == [
        ("incoming", "ringing", [{"name": "Мария Иванова", "phase": "ringing"}]),
        ("outgoing", "in_progress", [{"name": "Алексей Петров", "phase": "connected"}]),
    ]
    assert rows[0]["contact"]["url"] == f"/contacts/{ringing.contact_id}/"


def test_known_contact_on_the_board(notify: Notify, directory: dict[str, Any], admin_user: Any) -> None:
    contact = Contact.objects.create(name="Ольга Смирнова")
    PhoneNumber.objects.create(contact=contact, e164="+78124241500", raw="78124241500")
    notify(p.incoming_answered()[1])
    [row] = logged_in(admin_user).get(reverse("calls:board_json")).json()["calls"]
    assert row["contact"] == {"name": "Ольга Смирнова", "url": f"/contacts/{contact.pk}/"}

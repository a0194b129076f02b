"""Screen pop over WebSockets, through the whole ASGI stack (origin check, session auth, consumers).

Notifications are POSTed through the real notify URL and applied by the applier (in another thread, as the
applier process does); the push is what the apply sends after commit, through the configured channel layer:
channels-redis when REDIS_URL is set, else channels-lite (a SQLite database of its own) — both cross threads
and processes, as in production.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import Permission
from django.db import connections
from django.test import Client

from calls.models import Call
from calls.realtime import push as push_module
from calls.realtime.push import push_flush
from contacts.models import Contact, PhoneNumber
from integrations.applier import applier_drain
from integrations.models import Integration, NotificationEvent
from tests.calls import payloads as p
from tests.calls.realtime_fixtures import (
    LAYER_DATABASES,
    TIMEOUT,
    connected,
    nothing,
    own_loop,
    receive,
    socket,
)

pytestmark = [pytest.mark.django_db(transaction=True, databases=LAYER_DATABASES), pytest.mark.live_layer]


Post = Callable[[dict[str, Any]], Awaitable[None]]


@pytest.fixture
def post(integration: Integration) -> Post:
    """POST one notification through the notify URL (stored and answered), then let the applier apply it
    (pushed after its commit)."""

    def _post(body: dict[str, Any]) -> None:
        response = Client().post(
            integration.notify_path,
            data=json.dumps(body, ensure_ascii=False),
            content_type="application/json",
        )
        assert response.status_code == 200, response.content
        try:
            applier_drain()
        finally:
            connections.close_all()

    async def run(body: dict[str, Any]) -> None:
        # In a thread of its own, as the applier is a process of its own: the channel layer's work on the
        # push loop may need asgiref's shared thread, which a thread-sensitive caller would be holding.
        await sync_to_async(_post, thread_sensitive=False)(body)

    return run


# --- who may connect ------------------------------------------------------------------------------------


@own_loop
async def test_anonymous_socket_is_closed_with_4401() -> None:
    comm = await socket(None)
    ok, _ = await comm.connect(timeout=TIMEOUT)
    assert ok  # accepted only to tell the page why it is closed
    assert await comm.receive_output(timeout=TIMEOUT) == {"type": "websocket.close", "code": 4401}


@own_loop
async def test_foreign_origin_is_refused(directory: dict[str, Any]) -> None:
    comm = await socket(directory["ivanova"], origin=b"https://evil.example")
    ok, _code = await comm.connect(timeout=TIMEOUT)
    assert not ok


@own_loop
async def test_missing_origin_is_refused(directory: dict[str, Any]) -> None:
    comm = await socket(directory["ivanova"], origin=None)
    ok, _code = await comm.connect(timeout=TIMEOUT)
    assert not ok


@own_loop
async def test_operator_may_not_open_the_live_board(directory: dict[str, Any]) -> None:
    comm = await socket(directory["ivanova"], path="/ws/live/")
    ok, _ = await comm.connect(timeout=TIMEOUT)
    assert ok
    assert await comm.receive_output(timeout=TIMEOUT) == {"type": "websocket.close", "code": 4403}


# --- the operator's card --------------------------------------------------------------------------------


@own_loop
async def test_incoming_call_shows_updates_and_hides_the_card(directory: dict[str, Any], post: Post) -> None:
    ivanova = await connected(directory["ivanova"])
    line_trying, trying, showing, connected_, line_finished, finished = p.incoming_answered()

    await post(line_trying)  # the parked leg rings the company's number, not a workplace
    await nothing(ivanova)

    await post(trying)
    shown = await receive(ivanova)
    assert shown["type"] == "call.show"
    card = shown["call"]
    assert card["phase"] == "ringing"
    assert card["direction"] == "incoming"
    assert card["number"] == "+78124241500"
    assert card["number_display"] == "+7 812 424-15-00"
    assert card["line_display"] == "+7 499 649-78-03"
    # An auto-created contact has no name yet: the card offers to name it in place (no second contact).
    assert card["contact"]["name"] == ""
    assert card["create_contact_url"] is None
    assert card["name_contact_url"] == f"/contacts/{card['contact']['id']}/name/"
    assert card["recent"] == []
    assert card["recording_url"] is None
    assert card["note_url"] == f"/calls/{card['id']}/note/"
    assert isinstance(shown["sent_at"], float)
    assert len(json.dumps(shown)) < 4096  # small payloads

    await post(showing)
    again = await receive(ivanova)
    assert (again["type"], again["call"]["phase"]) == ("call.show", "ringing")

    await post(connected_)
    talking = await receive(ivanova)
    assert talking["type"] == "call.update"
    assert talking["call"]["phase"] == "connected"
    assert talking["call"]["connected_at"] == "2020-06-02T08:18:25+00:00"  # startTime, Moscow → UTC

    await post(line_finished)
    await nothing(ivanova)

    await post(finished)
    hidden = await receive(ivanova)
    assert hidden["type"] == "call.hide"
    assert hidden["call"]["phase"] == "ended"
    assert hidden["call"]["status"] == "answered"
    versions = [m["call"]["version"] for m in (shown, again, talking, hidden)]
    assert versions == sorted(versions) and len(set(versions)) == 4
    await ivanova.disconnect()


@own_loop
async def test_missed_call_hides_on_hiding(directory: dict[str, Any], post: Post) -> None:
    ivanova = await connected(directory["ivanova"])
    line_trying, trying, showing, hiding, *_rest = p.incoming_missed()
    for body in (line_trying, trying, showing):
        await post(body)
    assert (await receive(ivanova))["type"] == "call.show"
    assert (await receive(ivanova))["type"] == "call.show"
    await post(hiding)
    hidden = await receive(ivanova)
    assert (hidden["type"], hidden["call"]["phase"]) == ("call.hide", "ended")
    await ivanova.disconnect()


@own_loop
async def test_card_of_a_known_client_has_contact_history_and_notes(
    directory: dict[str, Any], post: Post
) -> None:
    def make_contact() -> Contact:
        contact = Contact.objects.create(
            name="Ольга Смирнова",
            company="ООО Ромашка",
            notes="Просила перезвонить после обеда.",
            personal_manager=directory["sidorova"],
        )
        PhoneNumber.objects.create(contact=contact, e164="+79219462761", raw="+79219462761")
        return contact

    contact = await database_sync_to_async(make_contact)()
    for body in p.incoming_missed(base="earlier", client="+79219462761"):
        await post(body)
    ivanova = await connected(directory["ivanova"])
    await post(p.incoming_answered(base="now", client="89219462761")[1])
    card = (await receive(ivanova))["call"]
    assert card["number_display"] == "+7 921 946-27-61"
    assert card["contact"] == {
        "id": contact.pk,
        "name": "Ольга Смирнова",
        "company": "ООО Ромашка",
        "manager": "Анна Сидорова",
        "notes": "Просила перезвонить после обеда.",
        "url": f"/contacts/{contact.pk}/",
    }
    assert card["create_contact_url"] is None
    assert [(c["status"], c["direction"], c["recording_url"]) for c in card["recent"]] == [
        ("missed", "incoming", None)
    ]
    await ivanova.disconnect()


@own_loop
async def test_click_to_call_shows_the_same_card(directory: dict[str, Any], post: Post) -> None:
    petrov = await connected(directory["petrov"])
    trying, showing, connected_, hiding, _finished = p.outgoing(answered=True)
    await post(trying)
    shown = await receive(petrov)
    assert (shown["type"], shown["call"]["direction"]) == ("call.show", "outgoing")
    assert shown["call"]["number"] == "+79219462761"
    await post(showing)
    await receive(petrov)
    await post(connected_)
    assert (await receive(petrov))["call"]["phase"] == "connected"
    await post(hiding)
    assert (await receive(petrov))["type"] == "call.hide"
    await petrov.disconnect()


@own_loop
async def test_an_operator_never_receives_another_operators_cards(
    directory: dict[str, Any], post: Post
) -> None:
    ivanova = await connected(directory["ivanova"])
    petrov = await connected(directory["petrov"])
    for body in p.incoming_answered()[:4]:
        await post(body)
    assert [(await receive(ivanova))["type"] for _ in range(3)] == ["call.show", "call.show", "call.update"]
    await nothing(petrov)
    await ivanova.disconnect()
    await petrov.disconnect()


@own_loop
async def test_every_tab_of_the_operator_shows_and_closes_the_card(
    directory: dict[str, Any], post: Post
) -> None:
    tabs = [await connected(directory["ivanova"]) for _ in range(2)]
    _line, trying, _showing, hiding, *_ = p.incoming_missed()
    await post(trying)
    for tab in tabs:
        assert (await receive(tab))["type"] == "call.show"
    await post(hiding)
    for tab in tabs:
        assert (await receive(tab))["type"] == "call.hide"
    for tab in tabs:
        await tab.disconnect()


@own_loop
async def test_a_terminal_of_the_workplace_reaches_its_operator(
    directory: dict[str, Any], post: Post
) -> None:
    ivanova = await connected(directory["ivanova"])
    # 883140777380595 is a terminal of Иванова's workplace (the mobile app, say).
    trying = p.note(
        "viaterminal~2o",
        "showing",
        type="incoming",
        caller=p.client_party(),
        callee=p.workplace_party(sip_id="883140777380595"),
    )
    await post(trying)
    assert (await receive(ivanova))["type"] == "call.show"
    await ivanova.disconnect()


# --- resync -----------------------------------------------------------------------------------------------


@own_loop
async def test_page_resyncs_active_calls_after_connecting(directory: dict[str, Any], post: Post) -> None:
    # The card was pushed while no tab was open; the page asks for it when its socket (re)connects.
    for body in p.incoming_answered()[:4]:
        await post(body)

    def fetch(user: Any) -> Any:
        client = Client()
        client.force_login(user)
        return client.get("/calls/active.json").json()

    ivanova = await connected(directory["ivanova"])
    body = await database_sync_to_async(fetch)(directory["ivanova"])
    assert [(c["phase"], c["number"]) for c in body["calls"]] == [("connected", "+78124241500")]
    assert (await database_sync_to_async(fetch)(directory["petrov"]))["calls"] == []
    await ivanova.disconnect()


# --- supervisors -----------------------------------------------------------------------------------------


@own_loop
async def test_supervisors_see_every_call_live(
    directory: dict[str, Any], admin_user: Any, post: Post
) -> None:
    board = await connected(admin_user, "/ws/live/")
    for body in p.incoming_missed()[:3]:
        await post(body)
    updates = [await receive(board) for _ in range(3)]
    assert {m["type"] for m in updates} == {"board.update"}
    row = updates[-1]["call"]
    assert row["number_display"] == "+7 812 424-15-00"
    assert row["operators"] == [{"name": "Мария Иванова", "phase": "ringing"}]
    for body in p.incoming_missed()[3:]:
        await post(body)
    last = [await receive(board) for _ in range(3)][-1]
    assert last["type"] == "board.remove"
    assert last["call"]["status"] == "missed"
    await board.disconnect()


@own_loop
async def test_the_permission_opens_the_live_board(directory: dict[str, Any], post: Post) -> None:
    def grant() -> Any:
        user = directory["petrov"]
        user.user_permissions.add(
            Permission.objects.get(codename="view_call", content_type__app_label="calls")
        )
        return user

    petrov = await database_sync_to_async(grant)()
    board = await connected(petrov, "/ws/live/")
    await post(p.incoming_missed()[1])
    assert (await receive(board))["type"] == "board.update"
    await board.disconnect()


# --- failures never fail the notification ---------------------------------------------------------------


@own_loop
async def test_a_failing_channel_layer_still_records_the_call(
    directory: dict[str, Any], post: Post, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(group: str, message: dict[str, Any]) -> None:
        raise ConnectionError("redis went away")

    monkeypatch.setattr(get_channel_layer(), "group_send", broken)
    caplog.set_level(logging.WARNING, logger="calls.realtime.push")
    await post(p.incoming_answered()[1])
    await sync_to_async(push_flush, thread_sensitive=False)()

    assert await database_sync_to_async(Call.objects.filter(call_key=p.BASE).exists)()
    statuses = await database_sync_to_async(
        lambda: list(NotificationEvent.objects.values_list("status", flat=True))
    )()
    assert statuses == ["applied"]
    warnings = [r for r in caplog.records if r.name == "calls.realtime.push" and r.levelno == logging.WARNING]
    assert warnings, caplog.text
    assert "redis went away" in warnings[0].getMessage()
    assert warnings[0].args  # %-style arguments, not a pre-formatted string


@own_loop
async def test_no_channel_layer_at_all_still_records_the_call(
    directory: dict[str, Any], post: Post, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def missing() -> Any:
        raise RuntimeError("CHANNEL_LAYERS misconfigured")

    monkeypatch.setattr(push_module, "get_channel_layer", missing)
    caplog.set_level(logging.WARNING, logger="calls.realtime.push")
    await post(p.incoming_answered()[1])
    await sync_to_async(push_flush, thread_sensitive=False)()
    assert await database_sync_to_async(Call.objects.filter(call_key=p.BASE).exists)()
    assert "CHANNEL_LAYERS misconfigured" in caplog.text


@own_loop
async def test_a_missed_call_reaches_the_operator_as_missed(directory: dict[str, Any], post: Post) -> None:
    ivanova = await connected(directory["ivanova"])
    line_trying, trying, showing, hiding, finished, line_finished = p.incoming_missed()
    for body in (line_trying, trying, showing, hiding, finished):
        await post(body)
    messages = [await receive(ivanova) for _ in range(4)]
    assert messages[-1]["type"] == "call.hide"
    # The call was still ringing the company's line when her leg ended: not "missed" yet.
    assert messages[-1]["call"]["status"] in Call.LIVE_STATUSES
    await post(line_finished)
    final = await receive(ivanova)
    assert (final["type"], final["call"]["phase"], final["call"]["status"]) == (
        "call.hide",
        "ended",
        "missed",
    )
    await ivanova.disconnect()

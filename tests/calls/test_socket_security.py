"""The live connections follow the right to them (issue 18's probes 2–4, and the board per team).

Through the whole ASGI stack (origin check, session, consumers) with channels' test communicator, as
tests/calls/test_realtime.py drives it.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import Permission
from django.contrib.sessions.models import Session
from django.db import connections
from django.test import Client

from calls.realtime import consumers
from calls.realtime.groups import SUPERVISORS_GROUP, operator_group
from calls.realtime.push import push, push_flush
from contacts.models import AccessSettings
from mttcrm.asgi import application
from tests.calls.realtime_fixtures import LAYER_DATABASES, ORIGIN, TIMEOUT, nothing, own_loop, receive, socket
from tests.personas import World, set_visibility

pytestmark = [pytest.mark.django_db(transaction=True, databases=LAYER_DATABASES), pytest.mark.live_layer]

CLOSED_4401 = {"type": "websocket.close", "code": 4401}
CLOSED_4403 = {"type": "websocket.close", "code": 4403}


def _logged_in_client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


async def _socket_of(client: Client, path: str = "/ws/workspace/") -> WebsocketCommunicator:
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    headers = [
        (b"host", b"testserver"),
        (b"origin", ORIGIN),
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
    ]
    comm = WebsocketCommunicator(application, path, headers=headers)
    ok, _ = await comm.connect(timeout=TIMEOUT)
    assert ok
    assert await comm.receive_nothing(timeout=0.1), "expected to stay open"
    return comm


async def _in_thread(fn: Any) -> None:
    """Run ``fn`` (a change to users, sessions, settings) in a thread of its own, as a web process would:
    not in asgiref's thread for the ORM, which the channel layer of the push may need (channels-lite)."""

    def run() -> None:
        try:
            fn()
        finally:
            connections.close_all()

    await sync_to_async(run, thread_sensitive=False)()
    await sync_to_async(push_flush, thread_sensitive=False)()


async def _card_to(user_id: int, call_id: int = 1) -> None:
    """A card pushed to the operator's group, as the applier does."""
    message = {"type": "call.show", "call": {"id": call_id, "version": 1, "phase": "ringing"}}
    await sync_to_async(push, thread_sensitive=False)([(operator_group(user_id), message)])


async def _row(people: list[int], call_id: int) -> None:
    message = {"type": "board.update", "call": {"id": call_id, "version": 1}, "people": people}
    await sync_to_async(push, thread_sensitive=False)([(SUPERVISORS_GROUP, message)])
    await sync_to_async(push_flush, thread_sensitive=False)()


# --- probe 2: the origin, exactly -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [
        b"http://127.0.0.1:9999",  # the site's host, another port
        b"https://127.0.0.1:8000",  # another scheme
        b"http://127.0.0.1",  # no port: 80
        b"ws://127.0.0.1:8000",
        b"http://localhost:8000",  # another name of the same machine
        b"null",  # a sandboxed frame or a file:// page
        b"http://127.0.0.1:8000.evil.example",
    ],
)
def test_an_origin_must_match_scheme_host_and_port(world: World, origin: bytes) -> None:
    assert ORIGIN == b"http://127.0.0.1:8000"  # the test settings' SITE_URL

    @own_loop
    async def run() -> None:
        for path in ("/ws/workspace/", "/ws/live/"):
            comm = await socket(world.users["admin"], path=path, origin=origin)
            ok, _ = await comm.connect(timeout=TIMEOUT)
            assert not ok, (origin, path)

    run()


# --- probe 3: sockets do not outlive the session --------------------------------------------------------


def test_logout_closes_the_sockets_of_that_session_only(world: World) -> None:
    operator = world.users["operator"]
    first, second = _logged_in_client(operator), _logged_in_client(operator)  # two browsers

    @own_loop
    async def run() -> None:
        tab1 = await _socket_of(first)
        tab2 = await _socket_of(first)
        elsewhere = await _socket_of(second)
        await _in_thread(first.logout)
        assert await tab1.receive_output(timeout=TIMEOUT) == CLOSED_4401
        assert await tab2.receive_output(timeout=TIMEOUT) == CLOSED_4401
        # The other browser's login is still good: its socket stays and gets the next card.
        await _card_to(operator.pk)
        assert (await receive(elsewhere))["type"] == "call.show"
        await elsewhere.disconnect()

    run()


def test_a_deactivated_user_loses_every_socket_at_once(world: World) -> None:
    operator, supervisor = world.users["operator"], world.users["supervisor"]
    client, boss = _logged_in_client(operator), _logged_in_client(supervisor)

    @own_loop
    async def run() -> None:
        desk = await _socket_of(client)
        board = await _socket_of(boss, "/ws/live/")

        def deactivate() -> None:
            operator.is_active = False
            operator.save()

        await _in_thread(deactivate)
        assert await desk.receive_output(timeout=TIMEOUT) == CLOSED_4401
        # Somebody else's deactivation closes nothing of the supervisor's.
        await _row([supervisor.pk], 7)
        assert (await receive(board))["type"] == "board.update"
        await board.disconnect()

    run()


def test_losing_the_board_permission_closes_the_board(world: World) -> None:
    supervisor = world.users["supervisor"]
    boss = _logged_in_client(supervisor)

    @own_loop
    async def run() -> None:
        board = await _socket_of(boss, "/ws/live/")
        desk = await _socket_of(boss)

        def demote() -> None:
            supervisor.is_staff = False
            supervisor.save()
            supervisor.groups.clear()
            supervisor.user_permissions.remove(*Permission.objects.filter(codename="view_call"))

        await _in_thread(demote)
        assert await board.receive_output(timeout=TIMEOUT) == CLOSED_4403
        # Still a user of the CRM: the desk's socket stays.
        await _card_to(supervisor.pk)
        assert (await receive(desk))["type"] == "call.show"
        await desk.disconnect()

    run()


def test_a_session_gone_without_a_signal_is_noticed_before_the_next_card(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sessions deleted behind Django's back (clearsessions, an admin emptying the table): the socket checks
    # again before it forwards anything once its last check is older than RECHECK_SECONDS.
    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.0)
    operator = world.users["operator"]
    client = _logged_in_client(operator)

    @own_loop
    async def run() -> None:
        desk = await _socket_of(client)
        await _in_thread(lambda: Session.objects.all().delete())
        await _card_to(operator.pk)
        assert await desk.receive_output(timeout=TIMEOUT) == CLOSED_4401

    run()


def test_a_password_change_elsewhere_closes_the_old_sessions_sockets(world: World) -> None:
    operator = world.users["operator"]
    client = _logged_in_client(operator)

    @own_loop
    async def run() -> None:
        desk = await _socket_of(client)

        def new_password() -> None:
            operator.set_password("a-new-long-password-1")
            operator.save()

        await _in_thread(new_password)
        # Django's session hash no longer matches: the session is void, as it is for pages.
        assert await desk.receive_output(timeout=TIMEOUT) == CLOSED_4401

    run()


# --- probe 4: frames nobody should send -----------------------------------------------------------------


def test_malformed_frames_are_ignored_with_one_warning(
    world: World, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumers, "bad_frames", consumers._BadFrames())
    operator = world.users["operator"]
    client = _logged_in_client(operator)
    frames: list[dict[str, Any]] = [
        {"text_data": "not json"},
        {"bytes_data": b"\x00\x01binary"},
        {"text_data": '{"type":"ack","id":' + "7" * 5000 + ',"version":1}'},
        {"text_data": "[" * 100_000},
        {"text_data": '{"type":"ack","id":"1","version":null}'},
        {"text_data": '"just a string"'},
        {"text_data": "null"},
    ]

    @own_loop
    async def run() -> None:
        desk = await _socket_of(client)
        with caplog.at_level(logging.WARNING, logger="calls.realtime.consumers"):
            for frame in frames:
                await desk.send_to(**frame)
            await nothing(desk)  # not closed (no 1011), no answer
        await _card_to(operator.pk)
        assert (await receive(desk))["type"] == "call.show"  # still serving
        await desk.disconnect()

    run()
    warnings = [r for r in caplog.records if r.name == "calls.realtime.consumers"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "ignored" in warnings[0].getMessage()
    assert all(r.exc_info is None for r in caplog.records)  # no traceback in the log
    assert consumers.bad_frames.quiet == 3  # the other frames that could not be read were counted


# --- the live board, per team ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [AccessSettings.Visibility.ALL, AccessSettings.Visibility.TEAM])
def test_the_live_board_shows_a_supervisor_only_their_teams_calls_in_team_mode(
    world: World, mode: str
) -> None:
    set_visibility(mode)
    supervisor, admin = world.users["supervisor"], world.users["admin"]
    operator, outsider = world.users["operator"], world.users["outsider"]
    boss, root = _logged_in_client(supervisor), _logged_in_client(admin)

    @own_loop
    async def run() -> None:
        board = await _socket_of(boss, "/ws/live/")
        everything = await _socket_of(root, "/ws/live/")
        await _row([outsider.pk], 1)  # team B's call
        await _row([operator.pk], 2)  # team A's call
        seen = [(await receive(everything))["call"]["id"] for _ in range(2)]
        assert sorted(seen) == [1, 2]  # the admin sees every call
        first = await receive(board)
        if mode == AccessSettings.Visibility.TEAM:
            assert first["call"]["id"] == 2
            await nothing(board)
        else:
            second = await receive(board)
            assert sorted([first["call"]["id"], second["call"]["id"]]) == [1, 2]
        assert "people" not in first  # whose call it is never reaches the page
        await board.disconnect()
        await everything.disconnect()

    run()


def test_switching_to_team_mode_applies_to_open_boards(world: World) -> None:
    supervisor, outsider = world.users["supervisor"], world.users["outsider"]
    boss = _logged_in_client(supervisor)

    @own_loop
    async def run() -> None:
        board = await _socket_of(boss, "/ws/live/")
        await _in_thread(lambda: set_visibility(AccessSettings.Visibility.TEAM))
        await _row([outsider.pk], 3)
        await nothing(board)
        await board.disconnect()

    run()

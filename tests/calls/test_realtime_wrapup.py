"""A saved wrap-up reaches every device of whoever has the call's card (``call.wrapped_up``), whichever way it
was saved (the desk's card, the call's page, the REST API), after the save commits; through the whole ASGI
stack and the configured channel layer, as tests/calls/test_realtime.py. Only those who have the card and
may see the call hear of it; a rolled-back or refused save says nothing; a channel layer that is down or
stuck never fails or holds up the save (the page's resync is the fallback).
"""

from __future__ import annotations

import asyncio
import logging
import socket as sockets
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.db import connections, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from calls.models import Call, CallLeg, CallResult
from calls.realtime import push as push_module
from calls.realtime.cards import call_version
from calls.realtime.groups import operator_group
from calls.realtime.push import push_flush
from calls.wrapup import call_wrap_up
from contacts.models import AccessSettings
from tests.api.tokens import token_client
from tests.calls.realtime_fixtures import LAYER_DATABASES, connected, nothing, own_loop, receive
from tests.personas import World, build_world, set_visibility

pytestmark = [pytest.mark.django_db(transaction=True, databases=LAYER_DATABASES), pytest.mark.live_layer]

T = TypeVar("T")


@pytest.fixture
def world(integration: Any) -> World:
    """The personas (tests/personas.py); the operator's own call also rang the other operator's workplace.
    The results list too: a transactional test empties the tables the migration seeded."""
    CallResult.objects.get_or_create(name="Продажа")
    world = build_world(integration)
    CallLeg.objects.create(
        call=world.own_call,
        integration=integration,
        leg_id="own-call~offered",
        workplace=world.other_operator.workplace,
        offered_at=timezone.now(),
    )
    return world


def _sale() -> CallResult:
    return CallResult.objects.get(name="Продажа")


def _save(path: str, user: Any, call_id: int, comment: str) -> int:
    """Save the call's wrap-up as ``user`` the way ``path`` does; the call's version after the save."""
    fields = {"result": _sale().pk, "comment": comment}
    url = reverse("calls:wrap_up", args=[call_id])
    if path == "api":
        answer: Any = token_client(user).post(f"/api/v1/calls/{call_id}/wrap-up/", fields, format="json")
        assert answer.status_code == 200, answer.content
    else:
        client = Client()
        client.force_login(user)
        if path == "card":
            answer = client.post(url, fields, HTTP_ACCEPT="application/json")
            assert answer.status_code == 200, answer.content
        else:  # the call's page: a form, a redirect back
            answer = client.post(url, fields)
            assert answer.status_code == 302, answer.content
    saved = Call.objects.get(pk=call_id)
    assert saved.comment == comment
    if path == "card":
        assert answer.json()["call"]["version"] == call_version(saved)  # the save's own answer says the same
    return call_version(saved)


def closing(work: Callable[..., T]) -> Callable[..., T]:
    """``work`` for another thread: its database connection closed after it (or the test database
    cannot be dropped at the end)."""

    def run(*args: Any) -> T:
        try:
            return work(*args)
        finally:
            connections.close_all()

    return run


async def in_thread(work: Callable[..., T], *args: Any) -> T:
    # A thread of its own (a web process of its own): the push loop may need asgiref's shared thread.
    return await sync_to_async(closing(work), thread_sensitive=False)(*args)


async def save(path: str, user: Any, call_id: int, comment: str) -> int:
    return await in_thread(_save, path, user, call_id, comment)


@pytest.mark.parametrize(
    ("path", "role", "already_wrapped_up"),
    [
        ("card", "operator", False),  # the desk's card on the operator's first device
        ("page", "supervisor", False),  # a supervisor wraps up a colleague's call on its page
        ("api", "admin", True),  # a supervisor's script changes the operator's saved wrap-up
    ],
)
@own_loop
async def test_a_saved_wrap_up_reaches_every_device_of_those_who_have_the_card(
    world: World, path: str, role: str, already_wrapped_up: bool
) -> None:
    operator, call_id = world.users["operator"], world.own_call.pk
    if already_wrapped_up:
        await in_thread(
            lambda: call_wrap_up(call=world.own_call, user=operator, result=None, comment="Первый")
        )
        await sync_to_async(push_flush, thread_sensitive=False)()  # sent before anyone listens: gone
    # Two devices of the operator (two login sessions), the other operator the call rang, and people who
    # have no card of this call: a teammate, another team's operator, the supervisor's own desk.
    laptop, phone = await connected(operator), await connected(operator)
    rung = await connected(world.other_operator)
    bystanders = [await connected(world.users[name]) for name in ("manager", "outsider", "supervisor")]

    version = await save(path, world.users[role], call_id, "Выставить счёт")

    expected = {"type": "call.wrapped_up", "call": {"id": call_id, "version": version}}
    for device in (laptop, phone, rung):
        message = await receive(device)
        assert isinstance(message.pop("sent_at"), float)
        assert message == expected  # small: the id and the version, nothing of the wrap-up itself
    for device in (laptop, phone, rung, *bystanders):
        await nothing(device)
    for device in (laptop, phone, rung, *bystanders):
        await device.disconnect()


@pytest.mark.parametrize("mode", [AccessSettings.Visibility.TEAM, AccessSettings.Visibility.ALL])
@own_loop
async def test_only_card_holders_who_may_see_the_call_hear_of_it(world: World, mode: str) -> None:
    operator, other = world.users["operator"], world.other_operator
    await in_thread(set_visibility, mode)
    laptop = await connected(operator)
    rung = await connected(other)
    outsider = await connected(world.users["outsider"])  # no card of the call (another team's, in team mode)
    # The other operator is deactivated behind the socket's back (no signal closes it): they may see
    # nothing any more, so the push must leave them out itself.
    user_model = get_user_model()
    await in_thread(lambda: user_model._default_manager.filter(pk=other.pk).update(is_active=False))

    version = await save("page", world.users["supervisor"], world.own_call.pk, "Исправлено руководителем")

    message = await receive(laptop)
    assert (message["type"], message["call"]) == (
        "call.wrapped_up",
        {"id": world.own_call.pk, "version": version},
    )
    for device in (laptop, rung, outsider):
        await nothing(device)
    for device in (laptop, rung, outsider):
        await device.disconnect()


@own_loop
async def test_a_rolled_back_or_refused_save_says_nothing(world: World) -> None:
    operator, call = world.users["operator"], world.own_call
    laptop = await connected(operator)

    def rolled_back() -> None:
        with pytest.raises(RuntimeError), transaction.atomic():
            call_wrap_up(call=call, user=operator, result=_sale(), comment="Не сохранится")
            raise RuntimeError("the caller's transaction fails after the wrap-up")
        assert Call.objects.get(pk=call.pk).wrapped_up_at is None

    await in_thread(rolled_back)
    await nothing(laptop)

    await save("card", operator, call.pk, "Купил")
    assert (await receive(laptop))["type"] == "call.wrapped_up"

    def refused() -> None:
        client = Client()
        client.force_login(world.users["manager"])  # a teammate may not overwrite the operator's wrap-up
        answer = client.post(
            reverse("calls:wrap_up", args=[call.pk]), {"comment": "Не так"}, HTTP_ACCEPT="application/json"
        )
        assert answer.status_code == 403

    await in_thread(refused)
    await nothing(laptop)
    await laptop.disconnect()


# --- the channel layer down or stuck: the save does not care ----------------------------------------------


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A port bound but not listening: every connection to it is refused (Redis down), nobody else's."""
    with sockets.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        yield int(taken.getsockname()[1])


def test_the_save_succeeds_when_redis_is_down(
    world: World, settings: Any, refusing_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{refusing_port}/0"]},
        }
    }
    caplog.set_level(logging.WARNING, logger="calls.realtime.push")
    operator = world.users["operator"]

    version = _save("card", operator, world.own_call.pk, "Сохранено без Redis")
    push_flush()

    assert Call.objects.get(pk=world.own_call.pk).wrapped_up_by == operator
    assert version > 0
    failed = [r.getMessage() for r in caplog.records if r.name == "calls.realtime.push"]
    assert any("call.wrapped_up" in m and operator_group(operator.pk) in m for m in failed), caplog.text


def test_the_save_does_not_wait_for_a_stuck_channel_layer(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = get_channel_layer()
    assert layer is not None
    release = threading.Event()
    sending: list[tuple[str, dict[str, Any]]] = []

    async def stuck(group: str, message: dict[str, Any]) -> None:
        sending.append((group, message))
        await asyncio.get_running_loop().run_in_executor(None, release.wait)

    monkeypatch.setattr(layer, "group_send", stuck)
    monkeypatch.setattr(push_module, "SEND_TIMEOUT", 600)  # no give-up before the test releases it
    operator = world.users["operator"]
    pool = ThreadPoolExecutor(1)
    try:
        # Answered while the layer still holds the send; a save that waited for it would never answer.
        version = pool.submit(closing(_save), "card", operator, world.own_call.pk, "Быстро").result(
            timeout=30
        )
    finally:
        release.set()
        pool.shutdown()
    push_flush()
    wrapped = {"id": world.own_call.pk, "version": version}
    assert [(group, message["type"], message["call"]) for group, message in sending] == [
        (operator_group(operator.pk), "call.wrapped_up", wrapped),
        (operator_group(world.other_operator.pk), "call.wrapped_up", wrapped),
    ]

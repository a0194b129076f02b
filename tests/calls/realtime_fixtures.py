"""The workspace and live-board sockets under test: a socket through the whole ASGI stack, its own event loop,
and what arrives on it (tests/calls/test_realtime.py and the other socket tests)."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections
from django.test import Client

from calls.realtime.push import push_flush
from mttcrm.asgi import application

# channels-lite keeps its messages in a database of its own ("channels", without Redis).
LAYER_DATABASES = sorted({"default", *(["channels"] if "channels" in settings.DATABASES else [])})


# The page's origin: the site itself (WEBSOCKET_ALLOWED_ORIGINS).
ORIGIN = settings.WEBSOCKET_ALLOWED_ORIGINS[0].encode()


TIMEOUT = 3


async def _clear(layer: Any) -> None:
    if not hasattr(
        layer, "ring_size"
    ):  # not channels-redis: its own flush (channels-lite's empties its tables)
        await layer.flush()
        return
    # channels-redis' flush() also closes the pools of every event loop, including the push loop's
    # (another thread): delete the keys only.
    for index in range(layer.ring_size):
        await layer.connection(index).eval(
            "local k = redis.call('keys', ARGV[1]) for i=1,#k,5000 do "
            "redis.call('del', unpack(k, i, math.min(i+4999, #k))) end",
            0,
            layer.prefix + "*",
        )


def own_loop(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an async test on its own event loop in its own thread, from an empty channel layer.

    Not pytest-asyncio's runner: the browser tests' session-wide Playwright keeps an event loop running
    in the main thread, and a loop cannot be started inside a running one.
    """

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        async def main() -> None:
            layer = get_channel_layer()
            # Groups are named after user ids, which tests reuse: start every test from an empty layer.
            await _clear(layer)
            try:
                await test(*args, **kwargs)
            finally:
                await sync_to_async(push_flush, thread_sensitive=False)()
                await _clear(layer)
                # The ORM ran in asgiref's worker thread: close its connection, or the test database
                # cannot be dropped at the end (CONN_MAX_AGE keeps it open on PostgreSQL).
                await database_sync_to_async(connections.close_all)()

        failure: list[BaseException] = []

        def target() -> None:
            try:
                asyncio.run(main())
            except BaseException as exc:
                failure.append(exc)

        thread = threading.Thread(target=target, name=f"test-{test.__name__}")
        thread.start()
        thread.join(60)
        assert not thread.is_alive(), "the test did not finish in 60 s"
        if failure:
            raise failure[0]

    return wrapper


def _cookie_for(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return str(client.cookies[settings.SESSION_COOKIE_NAME].value)


async def socket(
    user: Any = None, path: str = "/ws/workspace/", origin: bytes | None = ORIGIN
) -> WebsocketCommunicator:
    headers = [(b"host", b"testserver")]
    if origin is not None:
        headers.append((b"origin", origin))
    if user is not None:
        cookie = await database_sync_to_async(_cookie_for)(user)
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def connected(user: Any, path: str = "/ws/workspace/") -> WebsocketCommunicator:
    comm = await socket(user, path)
    ok, _ = await comm.connect(timeout=TIMEOUT)
    assert ok
    return comm


async def receive(comm: WebsocketCommunicator) -> dict[str, Any]:
    message = await comm.receive_json_from(timeout=TIMEOUT)
    assert isinstance(message, dict)
    return message


async def nothing(comm: WebsocketCommunicator) -> None:
    await sync_to_async(push_flush, thread_sensitive=False)()
    assert await comm.receive_nothing(timeout=0.3), "unexpected message"

"""The notify URL's fast lane: an ordinary notification stored on the server's event loop.

A notification POST through Django costs the web process about twice a trivial view (BENCHMARKS.md,
"What a request costs"): three hand-offs between the event loop and a request thread (Django's
``request_started``, the view, ``request_finished``), the whole middleware chain (sessions, language,
CSRF, messages, CSP, django-axes — none of which a notification from MTT's servers uses), and a pooled
connection checked out and set up for one statement. Here, in front of Django (an ASGI middleware,
mttcrm/asgi.py), the common case — a notification for the applier process, for an integration whose
token this process knows — is parsed, stored and answered on the event loop, on an async connection of
a small pool of its own: the same ``INSERT ... ON CONFLICT DO NOTHING`` with ``pg_notify`` as the notify
view (integrations/inbox.py), committed before the answer, the same answer, the same metrics.

Everything else goes to the notify view with the body as it was read, so that the view's answers stay
the only ones for it (it spools, refuses, counts and logs as before):

* ``NOTIFY_FAST_LANE=false``, or ``NOTIFY_APPLY_IN=request`` (the view applies in the request), or
  SQLite (no LISTEN/NOTIFY), or a GET (the OAuth callback), or a path that is not a notify URL;
* an allow-list (``NOTIFY_ALLOWED_NETWORKS``: the view tells the client's address, proxies included),
  or a ``Host`` that ``ALLOWED_HOSTS`` refuses (the view answers 400);
* a token this process has not cached (the view reads the database and caches it for five seconds);
* a body over ``MTT_NOTIFY_MAX_BYTES``, or one that is not a notification (the view answers 400 with the
  reason), or an urgent one (a parked call's ``trying``: applied before the answer), or one whose
  urgency cannot be told without the database (a cold cache: Django refuses the ORM on the loop);
* the database known down (the view spools), or any error while storing — the view then stores it
  (a copy stored already is recognized by its fingerprint) or spools it.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost, SynchronousOnlyOperation
from django.core.handlers.asgi import ASGIRequest
from django.db import DEFAULT_DB_ALIAS, connections

from mttcrm import metrics
from mttcrm.clientip import parse_networks
from mttcrm.dbdown import database_marked_down

from .inbox import notification_for_applier, notification_receive_async
from .mtt.notifications import NotificationError, parse_body
from .selectors import integration_for_notification_cached

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Connections of the fast lane's pool, per web process (its statements take a millisecond).
POOL_SIZE = 4
# How long a notification may wait for one before the notify view takes it (which waits for its own).
POOL_WAIT_SECONDS = 0.5

# event loop -> its pool (a server has one loop; tests have one per test).
_POOLS: dict[asyncio.AbstractEventLoop, Any] = {}


def enabled() -> bool:
    # NOTIFY_APPLY_IN=applier implies PostgreSQL: settings.py refuses it on SQLite.
    return (
        settings.NOTIFY_FAST_LANE
        and settings.NOTIFY_APPLY_IN == "applier"
        # Set where sync database calls on the loop are allowed (a test harness): the lane's guard
        # against them (Django's SynchronousOnlyOperation) would not hold.
        and not os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    )


async def _pool() -> Any:
    loop = asyncio.get_running_loop()
    pool = _POOLS.get(loop)
    if pool is None:
        from mttcrm.pgbackend.base import async_pool

        pool = async_pool(connections[DEFAULT_DB_ALIAS], max_size=POOL_SIZE, timeout=POOL_WAIT_SECONDS)
        _POOLS[loop] = pool
        await pool.open()
    return pool


async def fast_lane_close() -> None:
    """Close this event loop's pool (tests; a server's ends with its process)."""
    pool = _POOLS.pop(asyncio.get_running_loop(), None)
    if pool is not None:
        await pool.close()


class NotifyFastLane:
    """ASGI middleware in front of Django's handler (see the module's docstring)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app
        self._prefix: str | None = None

    def _token(self, scope: Scope) -> str | None:
        if self._prefix is None:
            from django.urls import reverse

            # "/mtt/<token>/", wherever the URLconf puts it.
            self._prefix = reverse("integrations:notify", args=["t"])[:-2]
        path: str = scope.get("path", "")
        if not path.startswith(self._prefix) or not path.endswith("/"):
            return None
        token = path[len(self._prefix) : -1]
        return token if token and "/" not in token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = None
        if scope["type"] == "http" and scope.get("method") == "POST" and enabled():
            token = self._token(scope)
        if token is None:
            await self.app(scope, receive, send)
            return
        read: list[Message] = []
        body = await _read_body(scope, receive, read)
        answer = None if body is None else await _store(token, body, scope)
        if answer is None:
            await self.app(scope, _replaying(read, receive), send)
            return
        content = json.dumps(answer).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(content)).encode()),
                    (b"x-content-type-options", b"nosniff"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})


async def _read_body(scope: Scope, receive: Receive, read: list[Message]) -> bytes | None:
    """The whole body, or None where the view should see it (too large, the client gone); every
    message read is kept in ``read`` for the view."""
    limit = settings.MTT_NOTIFY_MAX_BYTES
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                if int(value) > limit:
                    return None
            except ValueError:
                return None
    size = 0
    while True:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":
            return None
        size += len(message.get("body", b""))
        if size > limit:
            return None
        if not message.get("more_body", False):
            return b"".join(m.get("body", b"") for m in read)


def _replaying(read: list[Message], receive: Receive) -> Receive:
    pending = list(read)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def _host_allowed(scope: Scope) -> bool:
    """Django's ALLOWED_HOSTS check, as the view's request makes it (``get_host``: the Host header, or
    X-Forwarded-Host with USE_X_FORWARDED_HOST): a request for another host is the view's to refuse."""
    try:
        ASGIRequest(scope, io.BytesIO()).get_host()
    except DisallowedHost:
        return False
    return True


async def _store(token: str, body: bytes, scope: Scope) -> dict[str, Any] | None:
    """Store one notification and return the answer, or None: the notify view takes it."""
    if parse_networks(tuple(settings.NOTIFY_ALLOWED_NETWORKS)) or database_marked_down():
        return None
    if not _host_allowed(scope):
        return None
    integration = integration_for_notification_cached(token)
    if integration is None:
        return None
    try:
        envelope = parse_body(body)
    except NotificationError:
        return None
    try:
        if not notification_for_applier(integration=integration, envelope=envelope):
            return None
    except SynchronousOnlyOperation:
        return None  # an urgency check wanted the database (its cache is cold): the view fills it
    try:
        pool = await _pool()
        async with pool.connection() as connection:
            event_id, created = await notification_receive_async(
                integration=integration, envelope=envelope, connection=connection
            )
    except Exception as exc:
        logger.info("Notify URL fast lane: not stored (%s: %s); the view takes it", type(exc).__name__, exc)
        return None
    metrics.notification_received(duplicate=not created)
    if created:
        metrics.notification_dispatched("applier")
    return {"ok": True, "id": event_id, "duplicate": not created}

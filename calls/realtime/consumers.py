"""WebSocket consumers of the screen pop: thin, they join groups and forward what push.py sends.

Both sit behind ExactOriginValidator(AuthMiddlewareStack(...)) (mttcrm/asgi.py, mttcrm/wsorigin.py): an
origin that is not exactly one of ``WEBSOCKET_ALLOWED_ORIGINS`` (scheme, host, port) never reaches them.
An anonymous socket is accepted and closed at once with 4401, so that the page can tell "log in again"
from a network failure (a refused handshake only shows the browser 1006).

A socket lives no longer than the right to it (README "Security model"):

- it joins its user's group and its login session's group (``groups.user_group``, ``session_group``): a
  logout closes the session's sockets, a deactivated or deleted user's sockets close, and a change of the
  user's permissions, groups or teams makes each socket check again (``calls/realtime/access.py``);
- before forwarding anything, a socket whose last check is older than ``RECHECK_SECONDS`` checks again:
  the session still exists and still belongs to an active user (Channels' ``get_user`` on a freshly loaded
  session, Django's own session-hash check included), who may still open this socket;
- frames the page never sends (binary, not JSON, a number of 5,000 digits, nesting too deep) are ignored,
  with one warning per minute per process at most: a user cannot flood the log or crash the socket.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from importlib import import_module
from typing import Any

from channels.auth import get_user
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from contacts.access import users_visible_to
from monitoring import metrics

from ..visibility import people_visible
from .groups import SUPERVISORS_GROUP, operator_group, session_group, user_group, user_is_supervisor

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
# Cards a socket may still acknowledge (the newest ones); an older acknowledgement is ignored.
ACK_WINDOW = 100
# How old a socket's last check of its session and permissions may be when it forwards a message.
RECHECK_SECONDS = 60.0
# At most one warning about ignored frames per this many seconds per process.
BAD_FRAME_WARNING_SECONDS = 60.0


class _BadFrames:
    """Frames nobody should send: counted, warned about at most once per interval (per process)."""

    def __init__(self) -> None:
        self.warn_after = 0.0
        self.quiet = 0

    def ignored(self, reason: str, user_id: int | None) -> None:
        now = time.monotonic()
        if now < self.warn_after:
            self.quiet += 1
            return
        more = f"; {self.quiet} more ignored since the last warning" if self.quiet else ""
        logger.warning("Live connection: a frame from user %s ignored (%s)%s", user_id, reason, more)
        self.warn_after = now + BAD_FRAME_WARNING_SECONDS
        self.quiet = 0


bad_frames = _BadFrames()


def _fresh_session(key: str) -> Any:
    # The session as it is in the store now (the scope's copy was loaded when the socket opened).
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)


class _GroupConsumer(AsyncJsonWebsocketConsumer):
    joined: list[str]
    user_id: int | None = None
    session_key: str | None = None
    checked_at = 0.0
    closing = False

    # --- who may hold this socket ---------------------------------------------------------------------

    async def _refusal(self, user: Any) -> int | None:
        """The close code for ``user`` (authenticated and active) on this socket, or None: allowed.
        Subclasses keep what they need of the user (the board: whose calls it may show)."""
        return None

    async def _groups(self, user: Any) -> list[str]:
        raise NotImplementedError

    async def connect(self) -> None:
        user = self.scope.get("user")
        session = self.scope.get("session")
        key = getattr(session, "session_key", None)
        if user is None or not user.is_authenticated or not key:
            await self._refuse(CLOSE_UNAUTHENTICATED)
            return
        code = await self._refusal(user)
        if code is not None:
            await self._refuse(code)
            return
        self.user_id, self.session_key = int(user.pk), key
        self.checked_at = time.monotonic()
        groups = [*await self._groups(user), user_group(user.pk), session_group(key)]
        await self._join(groups)

    async def _recheck(self) -> bool:
        """Check the session and the user's rights again; close the socket when they are gone."""
        if self.closing:
            return False
        user = None
        if self.session_key:
            fresh: Any = {"session": _fresh_session(self.session_key)}
            user = await get_user(fresh)
        if user is None or not user.is_authenticated or user.pk != self.user_id:
            await self._close(CLOSE_UNAUTHENTICATED)
            return False
        code = await self._refusal(user)
        if code is not None:
            await self._close(code)
            return False
        self.checked_at = time.monotonic()
        return True

    async def _still_allowed(self) -> bool:
        if self.closing:
            return False
        if time.monotonic() - self.checked_at < RECHECK_SECONDS:
            return True
        return await self._recheck()

    async def _close(self, code: int) -> None:
        self.closing = True
        await self.close(code=code)

    # --- groups -------------------------------------------------------------------------------------------

    async def _join(self, groups: list[str]) -> None:
        self.joined = groups
        for group in groups:
            try:
                await self.channel_layer.group_add(group, self.channel_name)
            except Exception:
                # Redis restarted: the layer's pooled connection is dead and fails once; a second try
                # opens a fresh one. A second failure closes the socket and the page retries later.
                await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def _refuse(self, code: int) -> None:
        self.joined = []
        self.closing = True
        await self.accept()
        await self.close(code=code)

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    # --- what the server sends ------------------------------------------------------------------------------

    async def session_end(self, event: dict[str, Any]) -> None:
        """``session.end``: the user logged out of this session, or was deactivated or deleted."""
        await self._close(CLOSE_UNAUTHENTICATED)

    async def access_check(self, event: dict[str, Any]) -> None:
        """``access.check``: the user's permissions, groups or teams, or the visibility mode, changed."""
        await self._recheck()

    async def _forward(self, event: dict[str, Any]) -> None:
        if not await self._still_allowed():
            return
        await self.send_json({"type": event["type"], "call": event["call"], "sent_at": event.get("sent_at")})

    # --- what the page sends ----------------------------------------------------------------------------

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        if text_data is None:
            bad_frames.ignored("a binary frame", self.user_id)
            return
        try:
            content = await self.decode_json(text_data)
        except (ValueError, RecursionError) as exc:
            # ValueError: not JSON, or an integer past Python's 4,300 digits; RecursionError: too deep.
            bad_frames.ignored(f"not JSON we read: {type(exc).__name__}", self.user_id)
            return
        await self.receive_json(content, **kwargs)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # The page talks to the server over HTTP (resync, notes); nothing is expected here.
        return None


class WorkspaceConsumer(_GroupConsumer):
    """/ws/workspace/: the operator's cards, in every tab they have open (group ``operator.<id>``), and the
    word that a call's wrap-up was saved (``call.wrapped_up``).

    The page acknowledges each ``call.show`` it has put on screen (``{"type": "ack", "id", "version"}``);
    the consumer times it from the notification's arrival, which it kept from the push (the page never
    sees that time, and can acknowledge only what this socket sent, once): the screen-pop latency.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.awaiting_ack: OrderedDict[tuple[int, int], float] = OrderedDict()

    async def _groups(self, user: Any) -> list[str]:
        return [operator_group(user.pk)]

    async def call_show(self, event: dict[str, Any]) -> None:
        self._expect_ack(event)
        await self._forward(event)

    def _expect_ack(self, event: dict[str, Any]) -> None:
        call = event.get("call") or {}
        received_at = event.get("received_at")
        if not isinstance(received_at, int | float) or not isinstance(call.get("id"), int):
            return
        self.awaiting_ack[(call["id"], int(call.get("version") or 0))] = float(received_at)
        while len(self.awaiting_ack) > ACK_WINDOW:
            self.awaiting_ack.popitem(last=False)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict) or content.get("type") != "ack":
            return
        call_id, version = content.get("id"), content.get("version")
        if not isinstance(call_id, int) or not isinstance(version, int):
            return
        received_at = self.awaiting_ack.pop((call_id, version), None)
        if received_at is not None:
            metrics.screen_pop_shown(received_at=received_at)

    async def call_update(self, event: dict[str, Any]) -> None:
        await self._forward(event)

    async def call_hide(self, event: dict[str, Any]) -> None:
        await self._forward(event)

    async def call_wrapped_up(self, event: dict[str, Any]) -> None:
        """``call.wrapped_up``: the call's wrap-up was saved (here, on another device, by a supervisor,
        through the API); ``call`` is its id and version after the save. The page closes the wrap-up card."""
        await self._forward(event)


class LiveBoardConsumer(_GroupConsumer):
    """/ws/live/: the active calls a supervisor may see (group ``supervisors``; in the "team" mode each
    row goes only to the sockets of those who may see one of its people, ``calls.visibility``)."""

    visible: frozenset[int] | None = frozenset()

    async def _refusal(self, user: Any) -> int | None:
        allowed, visible = await database_sync_to_async(_board_access)(user)
        if not allowed:
            return CLOSE_FORBIDDEN
        self.visible = visible
        return None

    async def _groups(self, user: Any) -> list[str]:
        return [SUPERVISORS_GROUP]

    async def _forward_row(self, event: dict[str, Any]) -> None:
        if not await self._still_allowed():
            return
        if people_visible(self.visible, event.get("people") or ()):
            await self._forward(event)

    async def board_update(self, event: dict[str, Any]) -> None:
        await self._forward_row(event)

    async def board_remove(self, event: dict[str, Any]) -> None:
        await self._forward_row(event)


def _board_access(user: Any) -> tuple[bool, frozenset[int] | None]:
    if not user_is_supervisor(user):
        return False, frozenset()
    return True, users_visible_to(user)

"""WebSocket consumers of the screen pop: thin, they only join groups and forward what realtime.py sends.

Both sit behind AllowedHostsOriginValidator(AuthMiddlewareStack(...)) (mttcrm/asgi.py): a foreign
Origin never reaches them. An anonymous socket is accepted and closed at once with 4401, so that the
page can tell "log in again" from a network failure (a refused handshake only shows the browser 1006).
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .realtime import SUPERVISORS_GROUP, operator_group, user_is_supervisor

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


class _GroupConsumer(AsyncJsonWebsocketConsumer):
    joined: list[str]

    async def _join(self, groups: list[str]) -> None:
        self.joined = groups
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def _refuse(self, code: int) -> None:
        self.joined = []
        await self.accept()
        await self.close(code=code)

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # The page talks to the server over HTTP (resync, notes); nothing is expected here.
        return None

    async def _forward(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": event["type"], "call": event["call"], "sent_at": event.get("sent_at")})


class WorkspaceConsumer(_GroupConsumer):
    """/ws/workspace/: the operator's cards, in every tab they have open (group ``operator.<id>``)."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self._refuse(CLOSE_UNAUTHENTICATED)
            return
        await self._join([operator_group(user.pk)])

    async def call_show(self, event: dict[str, Any]) -> None:
        await self._forward(event)

    async def call_update(self, event: dict[str, Any]) -> None:
        await self._forward(event)

    async def call_hide(self, event: dict[str, Any]) -> None:
        await self._forward(event)


class LiveBoardConsumer(_GroupConsumer):
    """/ws/live/: every active call of the company, for supervisors (group ``supervisors``)."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self._refuse(CLOSE_UNAUTHENTICATED)
            return
        if not await database_sync_to_async(user_is_supervisor)(user):
            await self._refuse(CLOSE_FORBIDDEN)
            return
        await self._join([SUPERVISORS_GROUP])

    async def board_update(self, event: dict[str, Any]) -> None:
        await self._forward(event)

    async def board_remove(self, event: dict[str, Any]) -> None:
        await self._forward(event)

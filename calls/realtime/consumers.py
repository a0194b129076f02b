"""WebSocket consumers of the screen pop: thin, they only join groups and forward what push.py sends.

Both sit behind OriginValidator(AuthMiddlewareStack(...)) (mttcrm/asgi.py): a foreign origin never
reaches them. An anonymous socket is accepted and closed at once with 4401, so that the
page can tell "log in again" from a network failure (a refused handshake only shows the browser 1006).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from monitoring import metrics

from .groups import SUPERVISORS_GROUP, operator_group, user_is_supervisor

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
# Cards a socket may still acknowledge (the newest ones); an older acknowledgement is ignored.
ACK_WINDOW = 100


class _GroupConsumer(AsyncJsonWebsocketConsumer):
    joined: list[str]

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
    """/ws/workspace/: the operator's cards, in every tab they have open (group ``operator.<id>``).

    The page acknowledges each ``call.show`` it has put on screen (``{"type": "ack", "id", "version"}``);
    the consumer times it from the notification's arrival, which it kept from the push (the page never
    sees that time, and can acknowledge only what this socket sent, once): the screen-pop latency.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.awaiting_ack: OrderedDict[tuple[int, int], float] = OrderedDict()

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self._refuse(CLOSE_UNAUTHENTICATED)
            return
        await self._join([operator_group(user.pk)])

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

"""WebSocket routes (served by mttcrm/asgi.py behind the origin check and the session auth)."""

from __future__ import annotations

from typing import Any

from django.urls import path

from calls.consumers import LiveBoardConsumer, WorkspaceConsumer

websocket_urlpatterns: list[Any] = [
    path("ws/workspace/", WorkspaceConsumer.as_asgi(), name="ws_workspace"),
    path("ws/live/", LiveBoardConsumer.as_asgi(), name="ws_live"),
]

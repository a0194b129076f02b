"""WebSocket routes. The screen-pop consumer (calls/consumers.py) is added by the screen-pop issue."""

from __future__ import annotations

from typing import Any

websocket_urlpatterns: list[Any] = []

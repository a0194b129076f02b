"""The live connections' routes (served by Daphne, mttcrm/asgi.py, behind the origin check and the
session)."""

from __future__ import annotations

from typing import Any

from django.urls import path

from .consumers import LiveBoardConsumer, WorkspaceConsumer

# channels routes ASGI applications with Django's path(); django-stubs knows only views.
websocket_urlpatterns: list[Any] = [
    path("ws/workspace/", WorkspaceConsumer.as_asgi(), name="ws_workspace"),  # type: ignore[arg-type]
    path("ws/live/", LiveBoardConsumer.as_asgi(), name="ws_live"),  # type: ignore[arg-type]
]

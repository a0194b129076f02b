"""URLs of the screen pop (included under calls/ before calls.urls)."""

from __future__ import annotations

from django.urls import path

from . import views_live

app_name = "calls_live"

urlpatterns = [
    path("active.json", views_live.active_calls, name="active"),
    path("<int:pk>/note/", views_live.call_note, name="note"),
    path("live/", views_live.live_board, name="board"),
    path("live.json", views_live.live_board_json, name="board_json"),
]

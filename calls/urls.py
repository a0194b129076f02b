"""The calls app's pages, one namespace ("calls"): the operator's workspace at /, the call log and its export,
the live board, click-to-call, the callback queue, recordings, reports."""

from __future__ import annotations

from django.urls import path

from . import views, views_callbacks, views_dial, views_live, views_wrapup
from .recordings import views as recording_views
from .reports import views as report_views

app_name = "calls"

urlpatterns = [
    path("", views_live.workspace, name="workspace"),
    path("calls/", views.call_log, name="log"),
    path("calls/export.csv", views.call_export_csv, name="export_csv"),
    path("calls/export.xlsx", views.call_export_xlsx, name="export_xlsx"),
    path("calls/<int:pk>/", views.call_detail, name="detail"),
    path("calls/active.json", views_live.active_calls, name="active"),
    path("calls/<int:pk>/note/", views_live.call_note, name="note"),
    path("calls/<int:pk>/wrap-up/", views_wrapup.wrap_up, name="wrap_up"),
    path("calls/desk.json", views_wrapup.desk_state, name="desk"),
    path("tasks/", views_wrapup.task_list, name="tasks"),
    path("tasks/<int:pk>/done/", views_wrapup.task_done, name="task_done"),
    path("calls/live/", views_live.live_board, name="board"),
    path("calls/live.json", views_live.live_board_json, name="board_json"),
    path("calls/dial/", views_dial.dial, name="dial"),
    path("calls/callbacks/", views_callbacks.callback_list, name="callbacks"),
    path("calls/callbacks/<int:pk>/take/", views_callbacks.callback_take_view, name="callback_take"),
    path("recordings/<int:pk>/", recording_views.recording_media, name="recording"),
    path("reports/", report_views.dashboard, name="reports"),
    path("reports/<slug:table>.csv", report_views.table_csv, name="report_csv"),
    path("reports/<slug:table>.xlsx", report_views.table_xlsx, name="report_xlsx"),
]

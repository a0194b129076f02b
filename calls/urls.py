from __future__ import annotations

from django.urls import path

from . import views

app_name = "calls"

urlpatterns = [
    path("", views.call_log, name="log"),
    path("export.csv", views.call_export_csv, name="export_csv"),
    path("export.xlsx", views.call_export_xlsx, name="export_xlsx"),
    path("<int:pk>/", views.call_detail, name="detail"),
]

from __future__ import annotations

from django.urls import path

from . import views

app_name = "reports"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("<slug:table>.csv", views.table_csv, name="csv"),
    path("<slug:table>.xlsx", views.table_xlsx, name="xlsx"),
]

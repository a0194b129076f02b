from __future__ import annotations

from django.urls import path

from . import views

app_name = "monitoring"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("ping", views.ping, name="ping"),
    path("metrics", views.metrics, name="metrics"),
]

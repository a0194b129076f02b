from __future__ import annotations

from django.urls import path

from .recordings import views

app_name = "recordings"

urlpatterns = [
    path("<int:pk>/", views.recording_media, name="media"),
]

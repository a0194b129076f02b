from __future__ import annotations

from django.urls import path

from . import views

app_name = "integrations"

urlpatterns = [
    path("<str:token>/", views.notify, name="notify"),
    # The same URL without its trailing slash (pasted into MTT's portal that way): answered here, because a
    # POST cannot be redirected (APPEND_SLASH) without losing the notification.
    path("<str:token>", views.notify, name="notify_no_slash"),
]

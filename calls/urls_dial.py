"""Click-to-call and the callback queue; included at /calls/ before calls.urls (mttcrm/urls.py)."""

from __future__ import annotations

from django.urls import path

from . import views_callbacks, views_dial

app_name = "calls_dial"

urlpatterns = [
    path("dial/", views_dial.dial, name="dial"),
    path("callbacks/", views_callbacks.callback_list, name="callbacks"),
    path("callbacks/<int:pk>/take/", views_callbacks.callback_take_view, name="callback_take"),
]

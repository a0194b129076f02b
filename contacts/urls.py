from __future__ import annotations

from django.urls import path

from . import views

app_name = "contacts"

urlpatterns = [
    path("", views.contact_list, name="list"),
    path("new/", views.contact_create_view, name="create"),
    path("merge/", views.contact_merge_view, name="merge"),
    path("<int:pk>/", views.contact_detail, name="detail"),
    path("<int:pk>/edit/", views.contact_edit, name="edit"),
    path("<int:pk>/name/", views.contact_name_view, name="name"),
]

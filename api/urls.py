"""/api/v1/ (the REST API), /api/schema/ (OpenAPI 3) and /api/docs/ (Swagger UI)."""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from . import views

app_name = "api"

router = SimpleRouter(use_regex_path=False)
router.register("calls", views.CallViewSet, basename="call")
router.register("contacts", views.ContactViewSet, basename="contact")
router.register("recordings", views.RecordingViewSet, basename="recording")
router.register("callbacks", views.CallbackTaskViewSet, basename="callback")
router.register("follow-ups", views.FollowUpTaskViewSet, basename="follow-up")
router.register("call-results", views.CallResultViewSet, basename="call-result")

urlpatterns = [
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its script as a file of its own: the CSP allows no inline script.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
]

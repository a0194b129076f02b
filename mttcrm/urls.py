from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from . import health, views, views_metrics

admin.site.site_header = "mttcrm"
admin.site.site_title = "mttcrm"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("ping", views.ping, name="ping"),
    path("metrics", views_metrics.metrics, name="metrics"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("mtt/", include("integrations.urls")),
    path("calls/", include("calls.urls_live")),
    path("calls/", include("calls.urls_dial")),
    path("calls/", include("calls.urls")),
    path("contacts/", include("contacts.urls")),
    path("recordings/", include("calls.urls_recordings")),
    path("reports/", include("calls.reports.urls")),
]

if settings.DEBUG:
    from django.contrib.staticfiles.urls import staticfiles_urlpatterns

    urlpatterns += staticfiles_urlpatterns()

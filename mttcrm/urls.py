"""The project's URLs: each app's, under one namespace per app."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.templatetags.static import static
from django.urls import URLPattern, URLResolver, include, path
from django.views.generic import RedirectView

admin.site.site_header = "mttcrm"
admin.site.site_title = "mttcrm"


class FaviconView(RedirectView):
    """Browsers ask for /favicon.ico on pages that name no icon (the admin's, Swagger's): the site's icon,
    looked up when asked (its static name carries a hash in production)."""

    permanent = True
    http_method_names = ["get", "head"]

    def get_redirect_url(self, *args: object, **kwargs: object) -> str:
        return static("favicon.svg")


urlpatterns: list[URLPattern | URLResolver] = [
    path("favicon.ico", FaviconView.as_view()),
    # The operator's workspace (/), the call log, the live board, click-to-call, callbacks, recordings,
    # reports.
    path("", include("calls.urls")),
    path("contacts/", include("contacts.urls")),
    # The REST API (/api/v1/), its OpenAPI schema and Swagger UI (README "Using the API").
    path("api/", include("api.urls")),
    path("mtt/", include("integrations.urls")),
    path("", include("monitoring.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]

# A URL that matches nothing answers JSON under /api/ (API clients parse every answer), the page elsewhere.
handler404 = "api.views.not_found"
# A request refused before any view (a body too large, too many fields): in words, JSON under /api/.
handler400 = "api.views.bad_request"

if settings.DEBUG:
    urlpatterns += staticfiles_urlpatterns()

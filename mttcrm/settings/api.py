"""The REST API (``api``: Django REST framework, drf-spectacular) and outgoing webhooks (``webhooks``).

README "Using the API" and "Webhooks" explain them; every variable is in README's "Settings" table.
"""

from __future__ import annotations

from .base import INSTALLED_APPS, env
from .services import CELERY_BEAT_SCHEDULE

INSTALLED_APPS += [
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "api",
    "webhooks",
]

# --- The API ------------------------------------------------------------------------------------
# Requests per token (or per logged-in user without a token) and minute, counted in the default cache.
API_THROTTLE_RATE = env.str("API_THROTTLE_RATE", default="600/min")
# Rows per page of the lists (cursor pagination).
API_PAGE_SIZE = env.int("API_PAGE_SIZE", default=50)
if API_PAGE_SIZE < 1:
    raise ValueError("API_PAGE_SIZE must be positive")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # A per-user token ("Authorization: Bearer mttcrm_…", Admin → API tokens), or the CRM's login
        # session (the Swagger UI at /api/docs/ in a logged-in browser; CSRF checked on writes).
        "api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.TokenScope"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.ApiTokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_token": API_THROTTLE_RATE},
    "DEFAULT_PAGINATION_CLASS": "api.pagination.ApiCursorPagination",
    "PAGE_SIZE": API_PAGE_SIZE,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's JSONParser, with a body nested too deeply a 400 (api/parsers.py).
    "DEFAULT_PARSER_CLASSES": ["api.parsers.ApiJSONParser"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Errors in words in the CRM's language, a 404 the same whether the row is missing or unseen.
    "EXCEPTION_HANDLER": "api.exceptions.api_exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "mttcrm API",
    "DESCRIPTION": (
        "Calls, contacts, recordings, callback and follow-up tasks of the CRM, and click-to-call. "
        "Authenticate with a personal API token (Admin → API tokens): `Authorization: Bearer <token>`. "
        "Every answer shows only what the token's user may see in the CRM's pages."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and the Swagger UI for logged-in users and token holders (anonymous: 401).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from this server's static files (drf-spectacular-sidecar): the CSP allows only 'self'.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "CallStatusEnum": "calls.models.calls.Call.Status",
        "DirectionEnum": "calls.models.calls.Direction",
        "RecordingStatusEnum": "calls.models.recordings.Recording.Status",
    },
}

# --- Webhooks -----------------------------------------------------------------------------------
# A delivery that keeps failing is retried with exponential backoff and jitter for this long, then given up
# (and its subscription disabled: "persistent failure").
WEBHOOKS_RETRY_FOR_SECONDS = env.int("WEBHOOKS_RETRY_FOR_SECONDS", default=24 * 3600)
# The first retry after about this many seconds; each next one waits twice as long (up to an hour).
WEBHOOKS_BACKOFF_SECONDS = env.float("WEBHOOKS_BACKOFF_SECONDS", default=30.0)
WEBHOOKS_BACKOFF_MAX_SECONDS = env.float("WEBHOOKS_BACKOFF_MAX_SECONDS", default=3600.0)
# Seconds to connect to and to hear from a receiver.
WEBHOOKS_TIMEOUT_SECONDS = env.float("WEBHOOKS_TIMEOUT_SECONDS", default=10.0)
# Plain http:// subscription URLs (otherwise https only).
WEBHOOKS_ALLOW_HTTP = env.bool("WEBHOOKS_ALLOW_HTTP", default=False)
# How long a process trusts its cached list of subscribed events (the applier's hot path asks it for each
# notification): an admin's change applies within this many seconds.
WEBHOOKS_SUBSCRIPTIONS_CACHE_SECONDS = env.float("WEBHOOKS_SUBSCRIPTIONS_CACHE_SECONDS", default=10.0)
# Beat sends what is due (retries, and deliveries whose task was lost) this often.
WEBHOOKS_SWEEP_SECONDS = env.float("WEBHOOKS_SWEEP_SECONDS", default=30.0)
# Delivered and failed deliveries (with their attempts) are deleted after this many days (the sweep).
WEBHOOKS_KEEP_DAYS = env.int("WEBHOOKS_KEEP_DAYS", default=30)
if WEBHOOKS_RETRY_FOR_SECONDS < 0 or WEBHOOKS_BACKOFF_SECONDS <= 0 or WEBHOOKS_SWEEP_SECONDS <= 0:
    raise ValueError("WEBHOOKS_* durations must be positive")
if WEBHOOKS_KEEP_DAYS < 1:
    raise ValueError("WEBHOOKS_KEEP_DAYS must be at least 1")
CELERY_BEAT_SCHEDULE["webhooks-sweep"] = {
    "task": "webhooks.tasks.sweep_webhook_deliveries",
    "schedule": WEBHOOKS_SWEEP_SECONDS,
}

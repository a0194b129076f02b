"""Settings for mttcrm. Every value comes from the environment through one ``environ.Env``.

With nothing set, the embedded defaults run the whole app on one machine with no services:
SQLite, the in-memory channel layer, Celery over kombu's ``filesystem://`` transport and the local
sandbox as MTT. Production sets ``DATABASE_URL`` and ``REDIS_URL`` (see README, "Settings").
"""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Runtime state of the embedded defaults (SQLite file, Celery folders, media) lives here.
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="dev-insecure-secret-key-change-me-in-production-0123456789")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Public base URL of this deployment, used to build the notify URL (Redirect URI) shown to admins.
PORT = env.int("PORT", default=8000)
SITE_URL = env.str("SITE_URL", default=f"http://127.0.0.1:{PORT}").rstrip("/")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "mttcrm.apps.CoreConfig",
    "integrations",
    "contacts",
    "calls",
    "sandbox",
    "monitoring",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before the session: a database outage anywhere further in becomes a translated 503 page.
    "mttcrm.dbdown.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "mttcrm.middleware.DefaultLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last: turns django-axes' lockout into our login page with the reason (mttcrm/security.py).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "mttcrm.urls"
ASGI_APPLICATION = "mttcrm.asgi.application"
WSGI_APPLICATION = "mttcrm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "calls.context_processors.callbacks",
                "monitoring.context_processors.health_badge",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
DATABASES["default"].setdefault("ATOMIC_REQUESTS", False)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share the file: wait for locks instead of failing at once, and take the
    # write lock at BEGIN so that read-then-write transactions cannot deadlock (Django 5.1+).
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    # The reports' covering indexes (Index(include=...), calls/models.py) are plain indexes on SQLite,
    # which has no INCLUDE: right, only a little slower. Django warns about each (models.W040) on every
    # start of `make run`; the warning says nothing a developer on SQLite can act on.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
else:
    # Under ASGI every request may run in its own thread with its own connection: persistent
    # connections then pile up to PostgreSQL's max_connections. A psycopg pool per process instead
    # (Django 5.1+), DB_POOL_MAX_SIZE connections at most; 0 turns it off (a connection per request).
    _pool_max = env.int("DB_POOL_MAX_SIZE", default=10)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # The pool checks a connection before handing it out (after a PostgreSQL restart its old
    # connections are dead, and without the check each would fail one request, mttcrm/dbdown.py) —
    # unless it was in use within the last second: our backend's pool (mttcrm/pgbackend/base.py).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = _pool_max > 0
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"]["ENGINE"] = "mttcrm.pgbackend"
    if _pool_max > 0:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": _pool_max,
            "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a locked-out username+address before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Russian is the language of the UI; English is available (LocaleMiddleware + the language switch).
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="ru")
LANGUAGES = [("ru", _("Russian")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="Europe/Moscow")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve straight from the app folders when collectstatic has not run (make run, tests).
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
STORAGES: dict[str, dict[str, object]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Redis, channel layer, Celery --------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 reads with a 5 s socket timeout by default, as long as channels-redis's
                # blocking BZPOPMIN waits (5 s): on a busy event loop the read times out, the consumer
                # dies and the operator's socket closes with 1011 (channels_redis#422; seen under
                # bench/load.py). A longer timeout keeps the wait; a dead Redis still fails in 15 s.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
                "capacity": env.int("CHANNEL_LAYER_CAPACITY", default=1000),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_DIR = VAR_DIR / "celery"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # A broker that needs no server: queues are folders shared by web, worker and beat.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.05,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A task taken by a worker that then died (SIGKILL, OOM) is delivered again after this long. It
    # must exceed the longest retry countdown (recording downloads: 30 min), or a task waiting for its
    # retry would be delivered twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
    }
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
MTT_REFRESH_EVERY_SECONDS = env.float("MTT_REFRESH_EVERY_SECONDS", default=1800.0)
CELERY_BEAT_SCHEDULE = {
    "mtt-refresh-tokens": {
        "task": "integrations.tasks.refresh_tokens",
        # Access tokens live 2 h and refresh tokens 3 days (API.md): a refresh every 30 minutes keeps
        # both alive even when nothing else talks to MTT.
        "schedule": MTT_REFRESH_EVERY_SECONDS,
    },
    "mtt-sweep-inbox": {
        "task": "integrations.tasks.sweep_inbox",
        "schedule": env.float("INBOX_SWEEP_EVERY_SECONDS", default=30.0),
    },
    "mtt-replay-spool": {
        "task": "integrations.tasks.spool_replay",
        "schedule": env.float("NOTIFY_SPOOL_REPLAY_EVERY_SECONDS", default=30.0),
    },
    "mtt-sync-directory": {
        "task": "integrations.tasks.sync_all",
        "schedule": env.float("MTT_SYNC_EVERY_SECONDS", default=3600.0),
    },
    # Old notify URLs past their grace period are refused on arrival; this forgets them.
    "mtt-expire-notify-tokens": {
        "task": "integrations.tasks.expire_notify_tokens",
        "schedule": 3600.0,
    },
}

# --- MTT ---------------------------------------------------------------------------------------
MTT_OAUTH_URL = env.str("MTT_OAUTH_URL", default="https://oauth.mtt.ru")
# The guide names the API methods but gives no host (API.md): it is a setting, also per integration.
MTT_API_URL = env.str("MTT_API_URL", default="https://openapi.mtt.ru")
MTT_OAUTH_SCOPE = "https://mtt.ru/auth.tokens.readwrite"
MTT_TIMEZONE = env.str("MTT_TIMEZONE", default="Europe/Moscow")
MTT_CONNECT_TIMEOUT = env.float("MTT_CONNECT_TIMEOUT", default=3.05)
MTT_READ_TIMEOUT = env.float("MTT_READ_TIMEOUT", default=10.0)
# API.md "Known limits" 7: 5 requests per second per integration, all methods together.
MTT_RATE_LIMIT = env.int("MTT_RATE_LIMIT", default=5)
MTT_RATE_LIMIT_MAX_WAIT = env.float("MTT_RATE_LIMIT_MAX_WAIT", default=10.0)
# Refresh the access token this long before it expires.
MTT_TOKEN_REFRESH_MARGIN = env.int("MTT_TOKEN_REFRESH_MARGIN", default=300)
# vpbxNotifications numbersChanged/workplacesChanged: one sync per integration per this many seconds.
MTT_SYNC_DEBOUNCE_SECONDS = env.float("MTT_SYNC_DEBOUNCE_SECONDS", default=2.0)
# OAuth over plain http is refused by oauthlib; allowed only for a local sandbox (DEBUG by default).
MTT_ALLOW_INSECURE_OAUTH = env.bool("MTT_ALLOW_INSECURE_OAUTH", default=DEBUG)
# The inbox sweep re-applies notifications still pending this long after arrival, up to N attempts.
INBOX_SWEEP_AFTER_SECONDS = env.float("INBOX_SWEEP_AFTER_SECONDS", default=10.0)
INBOX_MAX_ATTEMPTS = env.int("INBOX_MAX_ATTEMPTS", default=10)
# Where a stored notification is applied (integrations/inbox.py, notification_dispatch):
# "request" — in the notify URL's request, before the answer (one process does it all: `make run`);
# "applier" — the notify URL answers MTT once the notification is stored, and the applier process
#   (`python manage.py mtt applier`, PostgreSQL LISTEN/NOTIFY) applies it a moment later: the web
#   processes only store. Needs PostgreSQL, and a Redis channel layer for the screen pops.
# A parked call's `trying` (a routing decision within MTT's 5 s) is applied in the request either way.
NOTIFY_APPLY_IN = env.str("NOTIFY_APPLY_IN", default="request")
if NOTIFY_APPLY_IN not in ("request", "applier"):
    raise ImproperlyConfigured(f"NOTIFY_APPLY_IN must be 'request' or 'applier', not {NOTIFY_APPLY_IN!r}")
if NOTIFY_APPLY_IN == "applier" and DATABASES["default"]["ENGINE"] != "mttcrm.pgbackend":
    raise ImproperlyConfigured("NOTIFY_APPLY_IN=applier needs PostgreSQL (LISTEN/NOTIFY)")
# With NOTIFY_APPLY_IN=applier on PostgreSQL: ordinary notifications are stored on the web server's event
# loop, in front of Django's middleware and view (integrations/fastlane.py); false sends them all
# through the notify view.
NOTIFY_FAST_LANE = env.bool("NOTIFY_FAST_LANE", default=True)
# Largest notification body accepted on the notify URL.
MTT_NOTIFY_MAX_BYTES = env.int("MTT_NOTIFY_MAX_BYTES", default=256 * 1024)
# Database down: the notify URL writes notifications here and answers 200; the replay (beat, worker
# start, `mtt spool-replay`, the web process when the database answers again) stores them later.
# Past either cap it answers 503 (integrations/spool.py). Web and worker must share the folder.
NOTIFY_SPOOL_DIR = Path(env.str("NOTIFY_SPOOL_DIR", default=str(VAR_DIR / "spool")))
NOTIFY_SPOOL_MAX_FILES = env.int("NOTIFY_SPOOL_MAX_FILES", default=50_000)
NOTIFY_SPOOL_MAX_BYTES = env.int("NOTIFY_SPOOL_MAX_BYTES", default=256 * 1024 * 1024)
# `mtt rotate-notify-token` / the admin action: the old notify URL keeps working this many hours,
# time to paste the new one into the MTT portal; after that it is refused like an unknown token.
NOTIFY_TOKEN_GRACE_HOURS = env.float("NOTIFY_TOKEN_GRACE_HOURS", default=24.0)
# Networks (CIDRs, comma-separated) allowed to POST notifications; empty allows every address.
NOTIFY_ALLOWED_NETWORKS: list[str] = env.list("NOTIFY_ALLOWED_NETWORKS", default=[])

# The local MTT stand-in (sandbox/): where make run starts it, and the demo client it knows.
SANDBOX_PORT = env.int("SANDBOX_PORT", default=8001)
SANDBOX_URL = env.str("SANDBOX_URL", default=f"http://127.0.0.1:{SANDBOX_PORT}").rstrip("/")
SANDBOX_CLIENT_ID = env.str("SANDBOX_CLIENT_ID", default="demo-client")
SANDBOX_CLIENT_SECRET = env.str("SANDBOX_CLIENT_SECRET", default="demo-secret")
SANDBOX_LOGIN = env.str("SANDBOX_LOGIN", default="demo")
SANDBOX_PASSWORD = env.str("SANDBOX_PASSWORD", default="demo")

# --- Call recordings -------------------------------------------------------------------------
# MTT keeps a record only 90 days (guide §10.1.3): the worker copies each one into our storage.
# Host entries are "host", "host:port" or "*.domain" (any subdomain of domain).
RECORDINGS_ALLOWED_HOSTS: list[str] = env.list("RECORDINGS_ALLOWED_HOSTS", default=["mtt.ru", "*.mtt.ru"])
# The integration's Bearer token goes only to these hosts (over https), never elsewhere.
RECORDINGS_TOKEN_HOSTS: list[str] = env.list("RECORDINGS_TOKEN_HOSTS", default=["mtt.ru", "*.mtt.ru"])
# Allowed hosts that may resolve to private, loopback or link-local addresses (the local sandbox).
RECORDINGS_ALLOW_PRIVATE_HOSTS: list[str] = env.list("RECORDINGS_ALLOW_PRIVATE_HOSTS", default=[])
if env.bool("RECORDINGS_ALLOW_SANDBOX", default=DEBUG):
    # The demo: the sandbox (SANDBOX_URL, on 127.0.0.1) serves the records of its scenarios.
    _sandbox = urlsplit(SANDBOX_URL)
    _sandbox_host = f"[{_sandbox.hostname}]" if ":" in (_sandbox.hostname or "") else _sandbox.hostname
    _sandbox_entry = f"{_sandbox_host}:{_sandbox.port or (443 if _sandbox.scheme == 'https' else 80)}"
    RECORDINGS_ALLOWED_HOSTS = [*RECORDINGS_ALLOWED_HOSTS, _sandbox_entry]
    RECORDINGS_ALLOW_PRIVATE_HOSTS = [*RECORDINGS_ALLOW_PRIVATE_HOSTS, _sandbox_entry]
RECORDINGS_ALLOW_HTTP = env.bool("RECORDINGS_ALLOW_HTTP", default=DEBUG)
RECORDINGS_MAX_BYTES = env.int("RECORDINGS_MAX_BYTES", default=200 * 1024 * 1024)
RECORDINGS_CONNECT_TIMEOUT = env.float("RECORDINGS_CONNECT_TIMEOUT", default=5.0)
RECORDINGS_READ_TIMEOUT = env.float("RECORDINGS_READ_TIMEOUT", default=30.0)
# A download taking longer than this is abandoned (and retried): a trickling server cannot hold a worker.
RECORDINGS_DOWNLOAD_MAX_SECONDS = env.float("RECORDINGS_DOWNLOAD_MAX_SECONDS", default=900.0)
RECORDINGS_MTT_KEEP_DAYS = env.int("RECORDINGS_MTT_KEEP_DAYS", default=90)
RECORDINGS_EXPIRY_WARNING_DAYS = env.int("RECORDINGS_EXPIRY_WARNING_DAYS", default=7)
# Local copies older than this many days are deleted daily; empty keeps them forever.
_recordings_keep = env.str("RECORDINGS_KEEP_DAYS", default="").strip()
RECORDINGS_KEEP_DAYS: int | None = int(_recordings_keep) if _recordings_keep else None
RECORDINGS_SWEEP_EVERY_SECONDS = env.float("RECORDINGS_SWEEP_EVERY_SECONDS", default=900.0)
# A "downloading" claim older than this belongs to a dead worker and is taken back by the sweep.
RECORDINGS_STALE_CLAIM_SECONDS = env.float("RECORDINGS_STALE_CLAIM_SECONDS", default=1800.0)
# S3-compatible storage for the copies (needs django-storages[s3]); empty: MEDIA_ROOT/recordings/.
RECORDINGS_S3_BUCKET = env.str("RECORDINGS_S3_BUCKET", default="")
if RECORDINGS_S3_BUCKET:
    STORAGES["recordings"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": RECORDINGS_S3_BUCKET,
            "endpoint_url": env.str("RECORDINGS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("RECORDINGS_S3_REGION", default="") or None,
            "access_key": env.str("RECORDINGS_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("RECORDINGS_S3_SECRET_ACCESS_KEY", default="") or None,
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": True,
        },
    }
else:
    # Never routed: MEDIA_URL is not served; the media view checks the permission and streams.
    STORAGES["recordings"] = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
CELERY_BEAT_SCHEDULE.update(
    {
        "recordings-sweep": {
            "task": "calls.tasks.sweep_recordings",
            "schedule": RECORDINGS_SWEEP_EVERY_SECONDS,
        },
        "recordings-retention": {
            "task": "calls.tasks.recordings_retention",
            "schedule": crontab(hour=3, minute=30),
        },
    }
)

# --- Contacts ----------------------------------------------------------------------------------
# Region for numbers written without a country code (9219462761, 89219462761).
PHONE_DEFAULT_REGION = env.str("PHONE_DEFAULT_REGION", default="RU")
# A call from an unknown number creates a contact, so no call is orphaned.
CONTACTS_AUTO_CREATE = env.bool("CONTACTS_AUTO_CREATE", default=True)

# --- Click-to-call, routing of parked calls, callbacks ---------------------------------------
# How makeCall's calleid is written: "digits" = E.164 without "+" (Russian numbers as 11 digits
# starting with 7, what the PBX itself sends), "trunk8" = Russian numbers as 8XXXXXXXXXX, "e164" = +7….
CLICK_TO_CALL_NUMBER_FORMAT = env.str("CLICK_TO_CALL_NUMBER_FORMAT", default="digits")
# A second click on the same number by the same user within this many seconds places no second call.
CLICK_TO_CALL_DEDUPE_SECONDS = env.float("CLICK_TO_CALL_DEDUPE_SECONDS", default=5.0)
# A parked call waits 5 s (guide §10.2): no routing command leaves later than this after the
# notification arrived; a later one is dropped and recorded as too late.
ROUTING_DEADLINE_SECONDS = env.float("ROUTING_DEADLINE_SECONDS", default=4.5)
# Threads per process sending routing commands after commit; 0 = send in the applying thread.
ROUTING_WORKERS = env.int("ROUTING_WORKERS", default=10)
# Numbers (any format, comma-separated) whose parked calls are released to the PBX's routing at once.
ROUTING_BLOCKLIST: list[str] = env.list("ROUTING_BLOCKLIST", default=[])
# "HH:MM-HH:MM" (TIME_ZONE, every day): outside these hours parked calls are released at once.
# Empty: always route to the personal manager.
ROUTING_HOURS = env.str("ROUTING_HOURS", default="")

# --- Secrets at rest ---------------------------------------------------------------------------
# Fernet keys (urlsafe base64, 32 bytes), comma-separated; the first encrypts, all decrypt.
# `python manage.py mtt rotate-keys` re-encrypts every secret with the first key.
FIELD_ENCRYPTION_KEYS: list[str] = env.list("FIELD_ENCRYPTION_KEYS", default=[])
if not FIELD_ENCRYPTION_KEYS and DEBUG:
    # Development only: a key derived from SECRET_KEY so a fresh clone runs. The system check
    # integrations.E001 refuses to run with DEBUG=False and no dedicated key.
    FIELD_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(hashlib.sha256(b"mttcrm-fields:" + SECRET_KEY.encode()).digest()).decode()
    ]

# --- Mail (warnings to admins) -----------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="mttcrm@localhost")
ADMINS = [tuple(a.split(":", 1)) for a in env.list("ADMINS", default=[]) if ":" in a]

# --- Integration health (monitoring/) ----------------------------------------------------------
# Beat evaluates every integration this often: warning episodes, one mail each to ADMINS (or, when
# ADMINS is empty, to the active superusers with an e-mail address). README "Integration health".
HEALTH_CHECK_EVERY_SECONDS = env.float("HEALTH_CHECK_EVERY_SECONDS", default=300.0)
# Warn when no notification arrived for this many hours of business hours; 0 turns it off.
HEALTH_SILENCE_HOURS = env.float("HEALTH_SILENCE_HOURS", default=2.0)
# When notifications are expected (TIME_ZONE): "09:00-18:00", "mon-fri 09:00-18:00", "mon-fri";
# empty: always. Only these hours count towards HEALTH_SILENCE_HOURS (monitoring/hours.py).
HEALTH_BUSINESS_HOURS = env.str("HEALTH_BUSINESS_HOURS", default="")
# Warn when a notification has waited longer than this many minutes to be applied; 0 turns it off.
HEALTH_INBOX_BACKLOG_MINUTES = env.float("HEALTH_INBOX_BACKLOG_MINUTES", default=10.0)
# Warn when at least this many recordings failed (or were refused) in the last 24 h; 0 turns it off.
HEALTH_RECORDINGS_FAILED = env.int("HEALTH_RECORDINGS_FAILED", default=3)
CELERY_BEAT_SCHEDULE["integration-health"] = {
    "task": "monitoring.tasks.check_health",
    "schedule": HEALTH_CHECK_EVERY_SECONDS,
}

# --- Security (production) ---------------------------------------------------------------------
# `manage.py check --deploy` passes with no warning once the HTTPS settings below are set (README,
# "Production settings"); tests/mttcrm/test_deploy_check.py runs it.
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
# Our scripts take the CSRF token from the page's form ({% csrf_token %}), never from the cookie.
CSRF_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# The container health check, /ping and Prometheus ask over plain http from inside the stack (the TLS
# proxy is for people): never redirected.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^ping$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
)
# Addresses (CIDRs, comma-separated) of the reverse proxies in front of the app: only from them is
# X-Forwarded-For believed (the right-most address not in this list is the client). Used by the
# notify URL's allow-list and by the login throttling. Empty: the peer's own address (REMOTE_ADDR).
TRUSTED_PROXIES: list[str] = env.list("TRUSTED_PROXIES", default=[])

# Content-Security-Policy (django-csp): nothing inline, everything from this host. The screen pop's
# WebSocket goes to the same host ('self' covers ws/wss in current browsers; SITE_URL's for the rest).
_site = urlsplit(SITE_URL)
_ws_origin = f"{'wss' if _site.scheme == 'https' else 'ws'}://{_site.netloc}"
_csp_policy = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF, _ws_origin],
        "media-src": [SELF],
        "object-src": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [SELF],
    }
}
# CSP_REPORT_ONLY=true: browsers report violations (console) but block nothing, to try a change.
if env.bool("CSP_REPORT_ONLY", default=False):
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _csp_policy
else:
    CONTENT_SECURITY_POLICY = _csp_policy

# Login throttling (django-axes): after LOGIN_FAILURE_LIMIT wrong passwords for one username from one
# address, that pair is refused for LOGIN_LOCKOUT_MINUTES, even with the right password. Attempts live
# in the database, so every web process sees them. The address honours TRUSTED_PROXIES.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LOGIN_LOCKOUT_MINUTES", default=15.0))
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF_TIME.total_seconds() <= 0:
    # axes reads a zero cool-off as "locked until an admin unlocks": never by accident.
    raise ValueError("LOGIN_FAILURE_LIMIT and LOGIN_LOCKOUT_MINUTES must be positive")
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "mttcrm.clientip.client_ip"
AXES_LOCKOUT_CALLABLE = "mttcrm.security.lockout_response"
# Failed attempts are logged by axes at WARNING; successful logins need no row each.
AXES_DISABLE_ACCESS_LOG = True

# --- Metrics and logs --------------------------------------------------------------------------
# GET /metrics (Prometheus) answers a request with "Authorization: Bearer <METRICS_TOKEN>" or from a
# logged-in staff user; empty turns the endpoint off (404).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# prometheus_client's multiprocess mode: every process (web, worker) writes its counters here and a
# scrape adds them up. make run and compose set it; empty counts per process only (mttcrm/metrics.py).
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# "text" (one plain line) or "json" (one JSON object per line: time, level, logger, message, extra
# fields). Both mask the notify URL's token and token-like values (mttcrm/logs.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="text").strip().lower()
if LOG_FORMAT not in ("text", "json"):
    raise ValueError(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"()": "mttcrm.logs.TextFormatter"},
        "json": {"()": "mttcrm.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "daphne": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        # requests-oauthlib logs token bodies at DEBUG: never let that through.
        "requests_oauthlib": {"level": "WARNING"},
        "oauthlib": {"level": "WARNING"},
    },
}

# --- Trust the guide, not our own sandbox (issue 17) -------------------------------------------
# The MTT sandbox's behaviour (manage.py mtt_sandbox): "friendly" agrees with the CRM wherever the
# guide leaves room (make run's demo); "realistic" does everything the guide allows (ids, spellings,
# number forms, records behind the token, copies, order: sandbox/quirks.py); or quirk names, commas.
SANDBOX_MODE = env.str("SANDBOX_MODE", default="friendly")

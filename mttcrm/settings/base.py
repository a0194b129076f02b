"""The core: the environment, hosts and URLs, apps and middleware, templates, users, languages, files."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# A blank variable whose default depends on another setting (DEBUG, VAR_DIR, PORT, REDIS_URL) means that
# default, as an unset one does: .env.example lists them blank, and a copy of it (README's compose steps,
# compose's env_file) must change nothing — not turn on plain-http OAuth or put the spool in the cwd.


def env_flag(name: str, *, default: bool) -> bool:
    """A true/false variable; blank means ``default``."""
    return env.bool(name, default=default) if env.str(name, default="").strip() else default


# Runtime state of the embedded defaults (SQLite files, Celery folders, media, spool) lives here.
VAR_DIR = Path(env.str("VAR_DIR", default="") or BASE_DIR / "var")

DEBUG = env.bool("DEBUG", default=True)
# Public (it is in this repository): the system check mttcrm.E003 refuses it with DEBUG=false.
DEVELOPMENT_SECRET_KEY = "dev-insecure-secret-key-change-me-in-production-0123456789"
SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Where `make run` serves pages (gunicorn) and live connections (Daphne).
PORT = env.int("PORT", default=8000)
WS_PORT = env.int("WS_PORT", default=8002)
# Public base URL of this deployment: the notify URL (MTT's Redirect URI) is built from it.
SITE_URL = (env.str("SITE_URL", default="") or f"http://127.0.0.1:{PORT}").rstrip("/")
# Where browsers open their live connection (ws:// or wss://, no path). Empty: the page's own host, where a
# proxy sends /ws/ to Daphne (docker compose). `make run` sets it to its Daphne (ws://127.0.0.1:WS_PORT).
WEBSOCKET_URL = env.str("WEBSOCKET_URL", default="").rstrip("/")
if WEBSOCKET_URL and urlsplit(WEBSOCKET_URL).scheme not in ("ws", "wss"):
    raise ValueError(f"WEBSOCKET_URL must start with ws:// or wss://, not {WEBSOCKET_URL!r}")

INSTALLED_APPS = [
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
    # django-axes (login throttling), under a Russian name in the admin (mttcrm/apps.py).
    "mttcrm.apps.AxesConfig",
    # The audit trail: who changed what and when (README "Security model"; tracked models in security.py).
    "auditlog",
]

MIDDLEWARE = [
    # Outermost: one access-log line per request, whatever answers it (mttcrm/middleware.py).
    "mttcrm.middleware.AccessLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before the session: a database outage anywhere further in becomes a translated 503 page.
    "mttcrm.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "mttcrm.middleware.DefaultLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # A form's target opened as a page: a 405 in words, in the layout (needs the user: after the session's).
    "mttcrm.middleware.MethodNotAllowedPageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Names the user and the client's address on each audit-trail entry (mttcrm/audit.py).
    "mttcrm.audit.AuditActorMiddleware",
    # Last: turns django-axes' lockout into our login page with the reason (mttcrm/security.py).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "mttcrm.urls"
WSGI_APPLICATION = "mttcrm.wsgi.application"
ASGI_APPLICATION = "mttcrm.asgi.application"

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
                "mttcrm.context_processors.live_connection",
                "calls.context_processors.callbacks",
                "monitoring.context_processors.health_badge",
            ],
        },
    },
]

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
LOGIN_REDIRECT_URL = "calls:workspace"
LOGOUT_REDIRECT_URL = "login"

# Russian is the language of the UI; English is available (the language switch in the header).
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="ru")
LANGUAGES = [("ru", _("Russian")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Our corrections of Django's date formats for a language (mttcrm/formats/ru/formats.py says which and why).
FORMAT_MODULE_PATH = ["mttcrm.formats"]
TIME_ZONE = env.str("TIME_ZONE", default="Europe/Moscow")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default="") or VAR_DIR / "static")
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve straight from the app folders when collectstatic has not run (make run, tests).
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default="") or VAR_DIR / "media")
STORAGES: dict[str, dict[str, object]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

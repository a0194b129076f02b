"""Secrets at rest, mail, HTTPS and cookies, the Content-Security-Policy, live-connection origins, logins."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from urllib.parse import urlsplit

import environ
from csp.constants import NONE, SELF

from .base import CSRF_TRUSTED_ORIGINS, DEBUG, SECRET_KEY, SITE_URL, VAR_DIR, WEBSOCKET_URL, env, env_flag

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

# --- Mail (warnings to admins, password resets) ------------------------------------------------
# Never to the console: a password-reset link in the log lets whoever reads the logs take over the
# account. Empty: with DEBUG (make run) every mail is a file in VAR_DIR/mail, to read there; without
# DEBUG, Django's SMTP to localhost:25 (set EMAIL_URL to your provider's). `check --deploy` refuses the
# console and file backends with DEBUG off (mttcrm/checks.py).
_email_url = env.str("EMAIL_URL", default="")
if _email_url:
    vars().update(environ.Env.email_url_config(_email_url))
elif DEBUG:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(VAR_DIR / "mail")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="mttcrm@localhost")
ADMINS = [tuple(a.split(":", 1)) for a in env.list("ADMINS", default=[]) if ":" in a]

# --- Security (production) ---------------------------------------------------------------------
# `manage.py check --deploy` passes with no warning once the HTTPS settings below are set (README,
# "Production settings"); tests/mttcrm/test_deploy_check.py runs it.
SESSION_COOKIE_SECURE = env_flag("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env_flag("CSRF_COOKIE_SECURE", default=not DEBUG)
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


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# Live connections (WebSockets, mttcrm/asgi.py) are accepted only from pages of these origins, compared
# exactly — scheme, host and port (mttcrm/wsorigin.py): this site, and the origins trusted for forms.
WEBSOCKET_ALLOWED_ORIGINS = sorted({_origin(SITE_URL), *(o.rstrip("/") for o in CSRF_TRUSTED_ORIGINS)})

# Content-Security-Policy (django-csp): nothing inline, everything from this host. The live connection goes
# to WEBSOCKET_URL when set (`make run`: Daphne on its own port), else to this host ('self' covers ws/wss in
# current browsers; SITE_URL's ws(s) origin for the rest).
_site = urlsplit(SITE_URL)
_ws_origin = (
    _origin(WEBSOCKET_URL)
    if WEBSOCKET_URL
    else f"{'wss' if _site.scheme == 'https' else 'ws'}://{_site.netloc}"
)
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

# --- Audit trail --------------------------------------------------------------------------------
# Who sees what is not a setting here but a row edited in the admin (contacts.AccessSettings, README
# "Security model"). The audit trail: django-auditlog records who changed what and when; our middleware
# (mttcrm.audit.AuditActorMiddleware, base.py) names the user and the client's address on each entry.
# Secrets are never written in plain text: a change of the client secret or the notify URL's token shows
# as a fixed mask (mttcrm.audit.hide_secret); tokens (renewed every refresh) and timestamps are left out.
_SECRET_MASK = {"mask_callable": "mttcrm.audit.hide_secret"}
AUDITLOG_INCLUDE_TRACKING_MODELS = (
    # Fields named: a new row's entry would otherwise list its reverse relations (calls, numbers) too.
    {
        "model": "contacts.Contact",
        "include_fields": [
            "name", "company", "email", "notes", "personal_manager", "source", "merged_into", "merged_at",
            "created_by",
        ],
    },
    {"model": "contacts.PhoneNumber", "include_fields": ["contact", "raw", "e164", "kind"]},
    {"model": "contacts.Team", "include_fields": ["name"], "m2m_fields": ["members", "supervisors"]},
    {"model": "contacts.AccessSettings", "include_fields": ["visibility"]},
    {
        "model": "integrations.Integration",
        "include_fields": [
            "name", "client_id", "client_secret", "oauth_url", "api_url", "status", "notify_token",
            "previous_notify_token_expires_at",
        ],
        "mask_fields": ["client_secret", "notify_token"],
        **_SECRET_MASK,
    },
    # Parking is set through MTT with a bulk update: the admin writes its entries (mttcrm.audit.audit_change).
    {"model": "integrations.ExternalNumber", "include_fields": ["is_parking", "is_active"]},
    # Which workplace rings for an operator (a personal manager's calls are transferred there).
    {"model": "integrations.Workplace", "include_fields": ["user"]},
    {
        "model": "auth.User",
        "include_fields": ["username", "is_active", "is_staff", "is_superuser"],
        "m2m_fields": ["groups", "user_permissions"],
    },
    {"model": "auth.Group", "include_fields": ["name"], "m2m_fields": ["permissions"]},
    # Issue 20: who may reach the data from outside, and where events go.
    {"model": "api.ApiToken", "include_fields": ["user", "name", "scope", "prefix", "expires_at"]},
    {
        "model": "webhooks.WebhookSubscription",
        "include_fields": ["name", "url", "events", "secret", "allow_private_network", "is_active"],
        "mask_fields": ["secret"],
        **_SECRET_MASK,
    },
)  # fmt: skip

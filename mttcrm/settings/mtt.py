"""MTT (the PBX's Open API), the notify URL, the sandbox, recordings, contacts, click-to-call and routing."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from celery.schedules import crontab

from .base import DEBUG, STORAGES, TIME_ZONE, VAR_DIR, env, env_flag
from .services import CELERY_BEAT_SCHEDULE

CELERY_TIMEZONE = TIME_ZONE

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
MTT_ALLOW_INSECURE_OAUTH = env_flag("MTT_ALLOW_INSECURE_OAUTH", default=DEBUG)
MTT_REFRESH_EVERY_SECONDS = env.float("MTT_REFRESH_EVERY_SECONDS", default=1800.0)
CELERY_BEAT_SCHEDULE.update(
    {
        "mtt-refresh-tokens": {
            "task": "integrations.tasks.refresh_tokens",
            # Access tokens live 2 h and refresh tokens 3 days (API.md): a refresh every 30 minutes keeps
            # both alive even when nothing else talks to MTT.
            "schedule": MTT_REFRESH_EVERY_SECONDS,
        },
        "mtt-sync-directory": {
            "task": "integrations.tasks.sync_all",
            "schedule": env.float("MTT_SYNC_EVERY_SECONDS", default=3600.0),
        },
        # Old notify URLs past their grace period are refused on arrival; this forgets them.
        "mtt-expire-notify-tokens": {"task": "integrations.tasks.expire_notify_tokens", "schedule": 3600.0},
    }
)

# --- The notify URL ----------------------------------------------------------------------------
# Largest notification body accepted on the notify URL.
MTT_NOTIFY_MAX_BYTES = env.int("MTT_NOTIFY_MAX_BYTES", default=256 * 1024)
# Database down: the notify URL writes notifications here and answers 200; the applier stores them when the
# database answers again (integrations/spool.py). Past either cap it answers 503. The web processes and the
# appliers must share the folder.
NOTIFY_SPOOL_DIR = Path(env.str("NOTIFY_SPOOL_DIR", default="") or VAR_DIR / "spool")
NOTIFY_SPOOL_MAX_FILES = env.int("NOTIFY_SPOOL_MAX_FILES", default=50_000)
NOTIFY_SPOOL_MAX_BYTES = env.int("NOTIFY_SPOOL_MAX_BYTES", default=256 * 1024 * 1024)
# `mtt rotate-notify-token` / the admin action: the old notify URL keeps working this many hours, time to
# paste the new one into the MTT portal; after that it is refused like an unknown token.
NOTIFY_TOKEN_GRACE_HOURS = env.float("NOTIFY_TOKEN_GRACE_HOURS", default=24.0)
# Networks (CIDRs, comma-separated) allowed to POST notifications; empty allows every address.
NOTIFY_ALLOWED_NETWORKS: list[str] = env.list("NOTIFY_ALLOWED_NETWORKS", default=[])

# --- The local MTT stand-in (sandbox/): where make run starts it, and the demo client it knows -----
SANDBOX_PORT = env.int("SANDBOX_PORT", default=8001)
SANDBOX_URL = (env.str("SANDBOX_URL", default="") or f"http://127.0.0.1:{SANDBOX_PORT}").rstrip("/")
SANDBOX_CLIENT_ID = env.str("SANDBOX_CLIENT_ID", default="demo-client")
SANDBOX_CLIENT_SECRET = env.str("SANDBOX_CLIENT_SECRET", default="demo-secret")
SANDBOX_LOGIN = env.str("SANDBOX_LOGIN", default="demo")
SANDBOX_PASSWORD = env.str("SANDBOX_PASSWORD", default="demo")
# The sandbox's control panel and /_sandbox/ API ask for SANDBOX_LOGIN and this password when it is set;
# the sandbox refuses to listen on anything but loopback without it (docker compose sets it).
SANDBOX_CONTROL_PASSWORD = env.str("SANDBOX_CONTROL_PASSWORD", default="")
# The sandbox's behaviour (manage.py mtt_sandbox): "friendly" agrees with the CRM wherever the guide
# leaves room (make run's demo); "realistic" does everything the guide allows (ids, spellings, number
# forms, records behind the token, copies, order: sandbox/quirks.py); or quirk names, commas.
SANDBOX_MODE = env.str("SANDBOX_MODE", default="friendly")
# --- Call recordings ---------------------------------------------------------------------------
# MTT keeps a record only 90 days (guide §10.1.3): the worker copies each one into our storage.
# Host entries are "host", "host:port" or "*.domain" (any subdomain of domain).
RECORDINGS_ALLOWED_HOSTS: list[str] = env.list("RECORDINGS_ALLOWED_HOSTS", default=["mtt.ru", "*.mtt.ru"])
# The integration's Bearer token goes only to these hosts (over https), never elsewhere.
RECORDINGS_TOKEN_HOSTS: list[str] = env.list("RECORDINGS_TOKEN_HOSTS", default=["mtt.ru", "*.mtt.ru"])
# Allowed hosts that may resolve to private, loopback or link-local addresses (the local sandbox).
RECORDINGS_ALLOW_PRIVATE_HOSTS: list[str] = env.list("RECORDINGS_ALLOW_PRIVATE_HOSTS", default=[])
if env_flag("RECORDINGS_ALLOW_SANDBOX", default=DEBUG):
    # The demo: the sandbox (SANDBOX_URL, on 127.0.0.1) serves the records of its scenarios.
    _sandbox = urlsplit(SANDBOX_URL)
    _sandbox_host = f"[{_sandbox.hostname}]" if ":" in (_sandbox.hostname or "") else _sandbox.hostname
    _sandbox_entry = f"{_sandbox_host}:{_sandbox.port or (443 if _sandbox.scheme == 'https' else 80)}"
    RECORDINGS_ALLOWED_HOSTS = [*RECORDINGS_ALLOWED_HOSTS, _sandbox_entry]
    RECORDINGS_ALLOW_PRIVATE_HOSTS = [*RECORDINGS_ALLOW_PRIVATE_HOSTS, _sandbox_entry]
RECORDINGS_ALLOW_HTTP = env_flag("RECORDINGS_ALLOW_HTTP", default=DEBUG)
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
        # Calls whose final notifications never came, clicks no call answered (calls/reconcile.py).
        "calls-reconcile": {"task": "calls.tasks.reconcile_calls", "schedule": 300.0},
    }
)

# --- Contacts ----------------------------------------------------------------------------------
# Region for numbers written without a country code (9219462761, 89219462761).
PHONE_DEFAULT_REGION = env.str("PHONE_DEFAULT_REGION", default="RU")
# A call from an unknown number creates a contact, so no call is orphaned.
CONTACTS_AUTO_CREATE = env.bool("CONTACTS_AUTO_CREATE", default=True)

# --- Click-to-call, routing of parked calls, callbacks ---------------------------------------
# How makeCall's calleid is written: "digits" = E.164 without "+" (Russian numbers as 11 digits
# starting with 7, what the PBX itself sends), "trunk8" = Russian numbers as 8XXXXXXXXXX and foreign ones
# after 8~10 (810375291234567), "e164" = +7….
CLICK_TO_CALL_NUMBER_FORMAT = env.str("CLICK_TO_CALL_NUMBER_FORMAT", default="digits")
# A second click on the same number by the same user within this many seconds places no second call.
CLICK_TO_CALL_DEDUPE_SECONDS = env.float("CLICK_TO_CALL_DEDUPE_SECONDS", default=5.0)
# A parked call waits 5 s (guide §10.2): no routing command leaves later than this after the
# notification arrived; a later one is dropped and recorded as too late.
ROUTING_DEADLINE_SECONDS = env.float("ROUTING_DEADLINE_SECONDS", default=4.5)
# Numbers (any format, comma-separated) whose parked calls are released to the PBX's routing at once.
ROUTING_BLOCKLIST: list[str] = env.list("ROUTING_BLOCKLIST", default=[])
# "HH:MM-HH:MM" (TIME_ZONE, every day): outside these hours parked calls are released at once.
# Empty: always route to the personal manager.
ROUTING_HOURS = env.str("ROUTING_HOURS", default="")

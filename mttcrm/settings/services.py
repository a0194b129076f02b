"""The servers the app talks to: the database, Redis (channel layer, Celery broker); the periodic tasks."""

from __future__ import annotations

from .base import INSTALLED_APPS, VAR_DIR, env

# A statement is prepared on the server from its this-many-th run on a connection (psycopg's default).
PREPARE_AFTER_RUNS = 5

# --- Database ----------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
    ),
}
DATABASES["default"].setdefault("ATOMIC_REQUESTS", False)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, applier, worker and beat share the file: wait for locks instead of failing at once, and take the
    # write lock at BEGIN so that read-then-write transactions cannot deadlock (Django 5.1+).
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    # Tests on SQLite use a file too, not Django's shared in-memory database: its table locks ignore the
    # timeout above, and tests that run the applier in a thread meet them as "database table is locked".
    DATABASES["default"].setdefault("TEST", {}).setdefault("NAME", str(VAR_DIR / "test-db.sqlite3"))
    # The reports' covering indexes (Index(include=...)) are plain indexes on SQLite, which has no INCLUDE:
    # right, only a little slower. The warning (models.W040) says nothing a developer on SQLite can act on.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
else:
    # Django's own connection pool (psycopg_pool, Django 5.1+): each process keeps at most DB_POOL_MAX_SIZE
    # connections, and a request waits at most DB_POOL_TIMEOUT seconds for one — with the database down,
    # a page then answers the 503 and a notification is spooled after that long, not after minutes.
    _pool_max = env.int("DB_POOL_MAX_SIZE", default=10)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A pooled connection is checked before use: after a PostgreSQL restart its old connections are dead.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    # Parameters bound by the server: the notification body is not quoted into the statement in Python.
    _options["server_side_binding"] = True
    # Statements a connection runs again and again (storing a notification, applying one) are prepared on
    # the server after a few runs (psycopg's prepare_threshold): PostgreSQL then neither parses nor plans
    # them again. Django turns this off by default for poolers such as PgBouncer in transaction mode; set
    # DB_PREPARED_STATEMENTS=false behind one of those.
    if env.bool("DB_PREPARED_STATEMENTS", default=True):
        _options.setdefault("prepare_threshold", PREPARE_AFTER_RUNS)
    # A database that does not answer is found out in seconds (libpq's connect_timeout).
    _options.setdefault("connect_timeout", 3)
    if _pool_max > 0:
        _options["pool"] = {
            "min_size": 1,
            "max_size": _pool_max,
            "timeout": env.float("DB_POOL_TIMEOUT", default=3.0),
        }

# --- Redis: the channel layer (live connections) and the Celery broker ---------------------------
REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py reads with a 5 s socket timeout by default, as long as channels-redis's blocking
                # BZPOPMIN waits (5 s): on a busy event loop the read times out and the socket closes with
                # 1011 (channels_redis#422). A longer timeout keeps the wait; a dead Redis fails in 15 s.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
                # channels-redis drops a message to a channel already holding this many (100 by default).
                "capacity": 1000,
            },
        }
    }
else:
    # No Redis: the applier process and Daphne still need to reach each other (the screen pop), so the
    # channel layer is a SQLite file of its own (channels-lite), polled every 50 ms. One machine only.
    INSTALLED_APPS.append("mttcrm.apps.ChannelsLiteConfig")  # channels_lite, under a Russian name
    DATABASES["channels"] = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(VAR_DIR / "channels.sqlite3"),
        "OPTIONS": {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"},
    }
    DATABASE_ROUTERS = [
        "channels_lite.router.ChannelsRouter",
        "mttcrm.routers.ChannelsDatabaseOnlyForChannels",
    ]
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_lite.layers.core.SQLiteChannelLayer",
            "CONFIG": {"database": "channels", "polling_interval": 0.05, "capacity": 1000},
        }
    }

# --- Celery ------------------------------------------------------------------------------------
CELERY_BROKER_DIR = VAR_DIR / "celery"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL or "filesystem://"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # A broker that needs no server: queues are folders shared by web, applier, worker and beat. kombu's
    # filesystem transport, with each message renamed into its queue once written whole (mttcrm/broker.py:
    # kombu's own lets the worker take a half-written file and stop).
    CELERY_BROKER_TRANSPORT = "mttcrm.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.05,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A task taken by a worker that then died (SIGKILL, OOM) is delivered again after this long. It must
    # exceed the longest retry countdown (recording downloads: 30 min), or a task waiting for its retry
    # would be delivered twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    }
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {}

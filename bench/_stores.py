"""What the benchmarks' stack keeps in PostgreSQL and Redis: read and cleared between runs."""

from __future__ import annotations

REDIS_PATTERNS = ("mttcrm:*", "asgi*", "celery*", "_kombu*", "unacked*")


def applier_sessions() -> int:
    """Applier processes listening for new notifications now (their LISTEN sessions in PostgreSQL)."""
    from django.db import connection

    from integrations.inbox import INBOX_CHANNEL

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = %s",
            [f"LISTEN {INBOX_CHANNEL}"],
        )
        return int(cursor.fetchone()[0])


def clear_redis(url: str) -> int:
    """Delete the keys our stack writes (channel layer, broker, limiter) from that Redis database."""
    import redis

    client = redis.Redis.from_url(url)
    removed = 0
    for pattern in REDIS_PATTERNS:
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            removed += int(client.delete(*keys))
    client.close()
    return removed

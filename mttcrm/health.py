"""GET /healthz: does the database, the channel layer and the Celery broker answer? With
NOTIFY_APPLY_IN=applier: is an applier process listening?"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from .dbdown import database_gate, handles_database_errors

logger = logging.getLogger(__name__)

CHECK_TIMEOUT = 3.0


def _check_database() -> None:
    # Fails at once while the database is known down, and waits at most 2 s for a pooled connection:
    # this runs on the thread that serves every synchronous view of the process.
    database_gate()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def applier_sessions() -> int:
    """Applier processes listening for new notifications now (their LISTEN sessions in PostgreSQL)."""
    from integrations.inbox import INBOX_CHANNEL

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = %s",
            [f"LISTEN {INBOX_CHANNEL}"],
        )
        return int(cursor.fetchone()[0])


def _check_applier() -> None:
    # NOTIFY_APPLY_IN=applier and nobody listening: notifications are stored, and applied only by the
    # inbox sweep, seconds late — no screen pop in time.
    database_gate()
    if applier_sessions() == 0:
        raise RuntimeError("no applier process is listening (python manage.py mtt applier)")


def _check_broker() -> None:
    from mttcrm.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=int(CHECK_TIMEOUT))


async def _check_channel_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    # A round trip through the layer proves it both accepts and delivers messages.
    channel = await layer.new_channel("healthz.")
    await layer.send(channel, {"type": "healthz.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "healthz.ping":
        raise RuntimeError("channel layer returned another message")


async def _timed(name: str, check: Callable[[], Any]) -> dict[str, Any]:
    started = time.monotonic()
    try:
        await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT)
    except Exception as exc:
        logger.warning("healthz: %s check failed: %s", name, exc)
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


@handles_database_errors
async def healthz(request: HttpRequest) -> JsonResponse:
    results = {
        "database": await _timed("database", sync_to_async(_check_database, thread_sensitive=True)),
        "channel_layer": await _timed("channel_layer", _check_channel_layer),
        "broker": await _timed("broker", sync_to_async(_check_broker, thread_sensitive=False)),
    }
    if settings.NOTIFY_APPLY_IN == "applier":
        results["applier"] = await _timed("applier", sync_to_async(_check_applier, thread_sensitive=True))
    ok = all(r["ok"] for r in results.values())
    from integrations.spool import spool_usage

    # Notifications received while the database was down and not stored yet (information only).
    spooled = (await sync_to_async(spool_usage, thread_sensitive=False)()).files
    return JsonResponse(
        {"ok": ok, "checks": results, "spooled_notifications": spooled}, status=200 if ok else 503
    )

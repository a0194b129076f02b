"""Celery tasks of the health check. Thin: the work is in monitoring/services.py."""

from __future__ import annotations

from celery import shared_task

from .services import evaluate_health


@shared_task(name="monitoring.tasks.check_health")
def check_health() -> dict[str, int]:
    """Beat, every HEALTH_CHECK_EVERY_SECONDS: warning episodes and their mails (idempotent)."""
    run = evaluate_health()
    return {
        "integrations": run.integrations,
        "open": len(run.open),
        "opened": len(run.opened),
        "cleared": len(run.cleared),
        "mailed": run.mailed,
        "failed": len(run.failed),
    }

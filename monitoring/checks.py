"""System check: a HEALTH_BUSINESS_HOURS the parser cannot read stops start-up with the reason."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, register

from .hours import configured_business_hours


@register()
def business_hours_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        configured_business_hours()
    except ValueError as exc:
        return [
            Error(
                f"HEALTH_BUSINESS_HOURS: {exc}",
                hint="e.g. 09:00-18:00, mon-fri 09:00-18:00 or mon-fri; empty means always.",
                id="monitoring.E001",
            )
        ]
    return []

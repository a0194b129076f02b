"""Template context for every page: where the page opens its live connection (templates/base.html)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def live_connection(request: HttpRequest) -> dict[str, Any]:
    """``websocket_url``: WEBSOCKET_URL, or "" for the page's own host."""
    return {"websocket_url": settings.WEBSOCKET_URL}

"""JSON responses and fault injection shared by the OAuth, API and control endpoints."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from werkzeug.wrappers import Response

from .state import SandboxState

logger = logging.getLogger(__name__)

# Statuses after which a well-behaved client should wait before retrying.
_RETRY_AFTER_STATUSES = (429, 503)


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # UTF-8 on the wire, not \u escapes: workplace names are Russian and tags may hold Cyrillic.
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    response = Response(body, status=status, content_type="application/json; charset=utf-8")
    for key, value in (headers or {}).items():
        if key.lower() != "content-type":
            response.headers[key] = value
    return response


def error_response(status: int, message: str) -> Response:
    """The API's error body: ``{"error": {"code": status, "message": ...}}``."""
    headers = {"Retry-After": "1"} if status in _RETRY_AFTER_STATUSES else {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return json_response({"error": {"code": status, "message": message}}, status, headers)


def apply_fault(state: SandboxState, path: str) -> Response | None:
    """Play an injected fault for ``path``: sleep its delay, then return its error (None: carry on)."""
    fault = state.take_fault(path)
    if fault is None:
        return None
    if fault.delay > 0:
        logger.info("Sandbox: delaying %s by %.1fs (injected)", path, fault.delay)
        time.sleep(fault.delay)
    if fault.status is None:
        return None
    logger.info("Sandbox: answering %s with injected %s", path, fault.status)
    return error_response(fault.status, f"Injected fault (HTTP {fault.status})")

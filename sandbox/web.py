"""JSON responses and fault injection shared by the OAuth, API and control endpoints."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

from werkzeug.wrappers import Response

from .state import Fault, SandboxState

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


def error_response(status: int, message: str, *, retry_after: int | None = None) -> Response:
    """The API's error body: ``{"error": {"code": status, "message": ...}}``."""
    headers = (
        {"Retry-After": str(1 if retry_after is None else retry_after)}
        if status in _RETRY_AFTER_STATUSES
        else {}
    )
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return json_response({"error": {"code": status, "message": message}}, status, headers)


def apply_fault(state: SandboxState, path: str) -> Response | None:
    """Play an injected fault for ``path``: sleep its delay, then return its error (None: carry on)."""
    return play_fault(state, path)[0]


def play_fault(state: SandboxState, path: str) -> tuple[Response | None, Fault | None]:
    """As ``apply_fault``, also returning the fault played (its ``rate`` is for the caller to honour)."""
    fault = state.take_fault(path)
    if fault is None:
        return None, None
    if fault.delay > 0:
        logger.info("Sandbox: delaying %s by %.1fs (injected)", path, fault.delay)
        # Interruptible: a stopping sandbox does not wait for its hung requests.
        state.stopping.wait(fault.delay)
    if fault.status is None:
        return None, fault
    logger.info("Sandbox: answering %s with injected %s", path, fault.status)
    return error_response(
        fault.status, f"Injected fault (HTTP {fault.status})", retry_after=fault.retry_after
    ), fault


def trickle(data: bytes, rate: int, stopping: threading.Event) -> Iterator[bytes]:
    """``data`` at about ``rate`` bytes per second, ten pieces a second (a slow record host)."""
    piece = max(1, rate // 10)
    for start in range(0, len(data), piece):
        if start and stopping.wait(0.1):
            return
        yield data[start : start + piece]

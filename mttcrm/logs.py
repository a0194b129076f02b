"""Logging: text or JSON lines (``LOG_FORMAT``), secrets masked, an access log through ``logging``.

- ``TextFormatter`` / ``JsonFormatter`` (python-json-logger): the JSON form is one object per line with
  ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, the record's ``extra`` fields
  (``integration_id``, ``call_id``, ``mtt_method``, … where the code logs them), the fields bound
  with ``log_context`` (the Celery task), and ``exc_info`` when there is a traceback.
- Both formatters pass their output through ``mask_secrets``: the notify URL ``/mtt/<token>/`` carries
  the integration's only credential (Django's own "Bad Request: /mtt/…/" warnings would print it), and
  a Bearer token or an OAuth token field must never reach a log line even by mistake.
- ``AccessLogMiddleware`` replaces Daphne's access log (run Daphne with ``-v 0``; it prints the raw
  path to stdout, token included): one ``mttcrm.access`` line per HTTP request, path masked, in the
  chosen format. ``mask_daphne_access_log`` masks Daphne's own access log too, for a Daphne started
  without ``-v 0``.
- ``connect_celery``: Celery workers and beat log through Django's ``LOGGING`` (same format, same
  masking) instead of configuring logging themselves, and each task's lines carry ``task`` and
  ``task_id``.

This module is imported while logging is being configured: nothing here may import models.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _BaseJsonFormatter

access_logger = logging.getLogger("mttcrm.access")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "***"

_SECRETS = [
    # The notify URL's token (and anything after it: the OAuth callback's code and state).
    (re.compile(r"/mtt/[^/\s\"'<>\\]+/[^\s\"'<>\\]*"), "/mtt/" + MASK + "/"),
    (re.compile(r"/mtt/[^/\s\"'<>\\]{6,}"), "/mtt/" + MASK),
    (re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE), r"\1" + MASK),
    (
        re.compile(
            r"(\b(?:access_token|refresh_token|client_secret|notify_token)[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+",
            re.IGNORECASE,
        ),
        r"\1" + MASK,
    ),
]


def mask_secrets(text: str) -> str:
    """The text with the notify URL's token, Bearer tokens and OAuth token fields replaced by ***."""
    if not text:
        return text
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


# --- context bound to every log line of a unit of work --------------------------------------------------

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "mttcrm_log_context", default=None
)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every JSON log line written inside the block (this thread / task)."""
    token = bind(**fields)
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> contextvars.Token[dict[str, Any] | None]:
    return _context.set({**(_context.get() or {}), **fields})


def unbind(token: contextvars.Token[dict[str, Any] | None]) -> None:
    _context.reset(token)


def current_context() -> dict[str, Any]:
    return dict(_context.get() or {})


# --- formatters -----------------------------------------------------------------------------------------


class TextFormatter(logging.Formatter):
    """The plain one-line format, secrets masked."""

    def __init__(self, fmt: str | None = TEXT_FORMAT, datefmt: str | None = None, **kwargs: Any) -> None:
        super().__init__(fmt, datefmt, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


class JsonFormatter(_BaseJsonFormatter):
    """One JSON object per line: time, level, logger, message, extra fields; secrets masked."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", "%(levelname)s %(name)s %(message)s")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", "time")
        # Django attaches the request object to its request warnings: its repr says nothing the message
        # does not, and it is not JSON.
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "request", "server_time"])
        kwargs.setdefault("json_ensure_ascii", False)
        super().__init__(**kwargs)

    def add_fields(
        self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_record, record, message_dict)
        for key, value in current_context().items():
            log_record.setdefault(key, value)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        # Masked field by field before serialising: masking the JSON text could eat an escape.
        return {key: _masked(value) for key, value in super().process_log_record(log_data).items()}


_JSON_NATIVE = (int, float, bool, type(None))


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, _JSON_NATIVE):
        return value
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    # Anything else is written as its str() by the encoder: replaced only when that holds a secret.
    text = str(value)
    masked = mask_secrets(text)
    return masked if masked != text else value


# --- the access log -------------------------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# Loose on purpose: Django's ASGIHandler and channels' routers annotate scope/receive/send each their way.
ASGIApp = Callable[..., Awaitable[None]]


class AccessLogMiddleware:
    """ASGI middleware: one ``mttcrm.access`` INFO line per HTTP request, with the path masked."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 0
        size = 0

        async def send_and_note(message: Message) -> None:
            nonlocal status, size
            if message.get("type") == "http.response.start":
                status = int(message.get("status") or 0)
            elif message.get("type") == "http.response.body":
                size += len(message.get("body") or b"")
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            client = scope.get("client") or ("-", 0)
            method = str(scope.get("method") or "-")
            path = mask_secrets(str(scope.get("path") or ""))
            duration_ms = round((time.monotonic() - started) * 1000, 1)
            access_logger.info(
                '%s "%s %s" %s %s %.1fms',
                client[0],
                method,
                path,
                status or "-",
                size,
                duration_ms,
                extra={
                    "client": client[0],
                    "method": method,
                    "path": path,
                    "status": status or None,
                    "bytes": size,
                    "duration_ms": duration_ms,
                },
            )


def mask_daphne_access_log() -> None:
    """Mask secrets in Daphne's own access log (printed to stdout when Daphne runs without ``-v 0``)."""
    try:
        from daphne.access import AccessLogGenerator
    except ImportError:  # pragma: no cover - daphne is a dependency
        return
    original = AccessLogGenerator.write_entry
    if getattr(original, "mttcrm_masked", False):
        return

    def write_entry(self: Any, host: Any, date: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        return original(self, host, date, mask_secrets(str(request)), *args, **kwargs)

    write_entry.mttcrm_masked = True  # type: ignore[attr-defined]
    AccessLogGenerator.write_entry = write_entry  # type: ignore[method-assign]


# --- Celery ---------------------------------------------------------------------------------------------

_task_tokens: dict[str, contextvars.Token[dict[str, Any] | None]] = {}


def connect_celery() -> None:
    """Workers and beat keep Django's LOGGING; every task's log lines carry its name and id."""
    from celery import signals

    def keep_django_logging(**_kwargs: Any) -> None:
        # Connected at all, this receiver stops Celery from replacing the root logger's handlers (its
        # "hijack"): Django configured LOGGING already, with our format and masking.
        return None

    def task_started(task_id: str | None = None, task: Any = None, **_kwargs: Any) -> None:
        if task_id:
            _task_tokens[task_id] = bind(task=getattr(task, "name", ""), task_id=task_id)

    def task_finished(task_id: str | None = None, **_kwargs: Any) -> None:
        token = _task_tokens.pop(task_id or "", None)
        if token is not None:
            try:
                unbind(token)
            except ValueError:  # reset from another context: forget the fields instead
                _context.set(None)

    signals.setup_logging.connect(keep_django_logging, weak=False, dispatch_uid="mttcrm.logs.setup")
    signals.task_prerun.connect(task_started, weak=False, dispatch_uid="mttcrm.logs.task_prerun")
    signals.task_postrun.connect(task_finished, weak=False, dispatch_uid="mttcrm.logs.task_postrun")

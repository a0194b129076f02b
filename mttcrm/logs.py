"""Logging: text or JSON lines (``LOG_FORMAT``), secrets masked, an access log through ``logging``.

- ``TextFormatter`` / ``JsonFormatter`` (python-json-logger): the JSON form is one object per line with
  ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, the record's ``extra`` fields
  (``integration_id``, ``call_id``, ``mtt_method``, … where the code logs them), the fields bound
  with ``log_context`` (the Celery task), and ``exc_info`` when there is a traceback.
- Both formatters pass their output through ``mask_secrets``: the notify URL ``/mtt/<token>/`` carries
  the integration's only credential (Django's own "Bad Request: /mtt/…/" warnings would print it), a
  password-reset link's token is in its path, and a Bearer token, an API token (``mttcrm_…``), a
  webhook signing secret (``whsec_…``) or an OAuth token field must never reach a log line even by mistake.
- ``access_logger``: the access log (one line per request, written by mttcrm.middleware.AccessLogMiddleware
  with the path masked); the servers' own access logs stay off (gunicorn's is off unless asked for, Daphne
  runs with ``-v 0``).
- ``NoTracebackBelow500``: Django's 4xx warnings keep their line but lose the traceback.
- ``connect_celery``: Celery workers and beat log through Django's ``LOGGING`` (same format, same
  masking) instead of configuring logging themselves, and each task's lines carry ``task`` and
  ``task_id``.

This module is imported while logging is being configured: nothing here may import models.
"""

from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import signals
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _BaseJsonFormatter

access_logger = logging.getLogger("mttcrm.access")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "***"

_SECRETS = [
    # The notify URL's token (and anything after it: the OAuth callback's code and state).
    (re.compile(r"/mtt/[^/\s\"'<>\\]+/[^\s\"'<>\\]*"), "/mtt/" + MASK + "/"),
    (re.compile(r"/mtt/[^/\s\"'<>\\]{6,}"), "/mtt/" + MASK),
    (re.compile(r"(\b(?:Bearer|Token)\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE), r"\1" + MASK),
    # A password-reset link's token (Django's /accounts/reset/<uidb64>/<token>/, which the access log
    # would print as the path): whoever reads the log could set the user's password with it.
    (re.compile(r"(/reset/[A-Za-z0-9_-]+/)(?!set-password/)[^/\s\"'<>\\?]+"), r"\1" + MASK),
    # An API token or a webhook signing secret, wherever it turns up (a URL's query, a pasted header).
    (re.compile(r"\bmttcrm_[A-Za-z0-9_-]{6,}"), "mttcrm_" + MASK),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=]{6,}"), "whsec_" + MASK),
    # A credential in a URL's query (a webhook receiver's "?token=…" in a connection error).
    (
        re.compile(
            r"([?&](?:token|secret|key|api_?key|password|passwd|signature|sig|auth|access_key)=)[^&\s\"'<>]+",
            re.IGNORECASE,
        ),
        r"\1" + MASK,
    ),
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


# --- filters -------------------------------------------------------------------------------------------


class NoTracebackBelow500(logging.Filter):
    """Django logs every 4xx answer with its exception (a PermissionDenied, an Http404): a traceback for
    what is an ordinary answer. Keep the line, drop the traceback; 5xx keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True


# --- Celery ---------------------------------------------------------------------------------------------

_task_tokens: dict[str, contextvars.Token[dict[str, Any] | None]] = {}


def connect_celery() -> None:
    """Workers and beat keep Django's LOGGING; every task's log lines carry its name and id."""

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

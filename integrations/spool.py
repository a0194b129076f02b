"""The notification spool: notifications that arrive while the database is down are kept on local disk.

MTT's guide says nothing about resending a notification that got an error, so a notification refused
while the database is down may be lost for good. Instead the notify URL (``spool_when_database_down``
around the view) writes the raw request — the token from the URL, the body bytes, the headers the
view looks at, the sender's address and the time it arrived — to ``NOTIFY_SPOOL_DIR`` and answers
200 ``{"ok": true, "spooled": true}``. Each file appears whole or not at all (a temporary name,
fsync, ``os.replace``, fsync of the folder), so a crash never leaves half a notification.

Without the database the token cannot be checked, so before writing the spool applies every check that
needs none: the sender allow-list (``NOTIFY_ALLOWED_NETWORKS``), the token's shape, the size limit and
the notification's shape — junk is refused exactly as the live view refuses it. What is left — a
well-formed notification for a token that may not exist — is bounded by ``NOTIFY_SPOOL_MAX_FILES`` and
``NOTIFY_SPOOL_MAX_BYTES``; past either, or when the folder cannot be written, the answer is 503.

``spool_replay()`` stores the spooled notifications through the same view as live ones, rebuilding each
request (``inbox.receiving_at`` keeps its original arrival time): the token lookup, the allow-list, the
fingerprint dedupe — a notification both spooled and delivered again is stored and applied once — and
the apply. A file is deleted only after its notification is committed. A refused one (its token no
longer exists: 404; a bad body: 400; …) goes to ``rejected/`` with a log line; while the database is
still down the replay stops and keeps the rest. It runs on beat (``NOTIFY_SPOOL_REPLAY_EVERY_SECONDS``),
when a worker starts, from ``python manage.py mtt spool-replay``, and in the web process that spooled as
soon as its probe sees the database again (mttcrm/dbdown.py). One replay at a time per folder (a lock
file), files in arrival order.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import io
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.handlers.wsgi import WSGIRequest
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.utils import timezone

from mttcrm import metrics
from mttcrm.clientip import client_ip
from mttcrm.dbdown import (
    database_gate,
    database_note_error,
    database_on_recovery,
    describe,
    handles_database_errors,
    is_database_unavailable,
)

from .access import notify_source_allowed
from .inbox import receiving_at
from .mtt.notifications import NotificationError, parse_body

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
REJECTED_DIR = "rejected"
LOCK_FILE = ".replay.lock"
RETRY_AFTER_SECONDS = 30
# Notify tokens are secrets.token_urlsafe(32) (43 characters); the model allows 64.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
# Request headers kept for the replay: every HTTP_* header but credentials MTT never sends.
_DROPPED_HEADERS = frozenset({"HTTP_COOKIE", "HTTP_AUTHORIZATION", "HTTP_PROXY_AUTHORIZATION"})
# The spool's size is counted again at most this often per process (counted up in between).
_RECOUNT_EVERY = 1.0
# A temporary file older than this belongs to a writer that died.
_STALE_TEMP_SECONDS = 60.0
REPLAY_ATTRIBUTE = "mtt_spool_replay"


class SpoolFull(Exception):
    pass


def spool_dir() -> Path:
    return Path(settings.NOTIFY_SPOOL_DIR)


# --- counting ------------------------------------------------------------------------------------


@dataclass
class SpoolUsage:
    files: int = 0
    bytes: int = 0


def spool_usage(directory: Path | None = None) -> SpoolUsage:
    """Files waiting in the spool (``rejected/`` and temporary files not counted)."""
    usage = SpoolUsage()
    try:
        entries = os.scandir(directory or spool_dir())
    except FileNotFoundError:
        return usage
    with entries:
        for entry in entries:
            if entry.name.endswith(".json") and not entry.name.startswith("."):
                try:
                    usage.bytes += entry.stat().st_size
                except FileNotFoundError:
                    continue  # replayed meanwhile
                usage.files += 1
    return usage


class _Counter:
    """A per-process estimate of the spool's size: recounted every second, counted up in between."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.key: tuple[int, str] | None = None
        self.at = 0.0
        self.usage = SpoolUsage()

    def reserve(self, directory: Path, size: int) -> None:
        with self.lock:
            key = (os.getpid(), str(directory))
            now = time.monotonic()
            if key != self.key or now - self.at > _RECOUNT_EVERY:
                self.key, self.at, self.usage = key, now, spool_usage(directory)
            if self.usage.files + 1 > settings.NOTIFY_SPOOL_MAX_FILES:
                raise SpoolFull(f"{self.usage.files} files (NOTIFY_SPOOL_MAX_FILES)")
            if self.usage.bytes + size > settings.NOTIFY_SPOOL_MAX_BYTES:
                raise SpoolFull(f"{self.usage.bytes} bytes (NOTIFY_SPOOL_MAX_BYTES)")
            self.usage.files += 1
            self.usage.bytes += size


_counter = _Counter()


# --- writing -------------------------------------------------------------------------------------


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(directory: Path, name: str, data: bytes) -> Path:
    temp = directory / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
    final = directory / name
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    _fsync_dir(directory)
    return final


def _record(request: HttpRequest, token: str, body: bytes, received_at: datetime) -> dict[str, Any]:
    headers = {
        key: str(value)
        for key, value in request.META.items()
        if key.startswith("HTTP_") and key not in _DROPPED_HEADERS
    }
    return {
        "version": FORMAT_VERSION,
        "received_at": received_at.isoformat(),
        "token": token,
        "path": request.path_info,
        "query": request.META.get("QUERY_STRING", ""),
        "scheme": request.scheme,
        "remote_addr": str(request.META.get("REMOTE_ADDR") or ""),
        "content_type": str(request.META.get("CONTENT_TYPE") or ""),
        "headers": headers,
        "body": base64.b64encode(body).decode("ascii"),
    }


def _refuse(status: int, reason: str, request: HttpRequest) -> JsonResponse:
    logger.warning("Notify URL (database down): notification refused (%s): %s", status, reason)
    metrics.notification_rejected(metrics.rejection_reason(status))
    response = JsonResponse({"ok": False, "error": reason}, status=status)
    if status == 503:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def notification_spool(*, request: HttpRequest, token: str, why: str) -> HttpResponse:
    """Keep one notification on disk for the replay; the answer MTT gets while the database is down."""
    received_at = timezone.now()
    if not notify_source_allowed(request):
        logger.warning(
            "Notify URL: POST from %s refused (not in NOTIFY_ALLOWED_NETWORKS)", client_ip(request) or "?"
        )
        metrics.notification_rejected("forbidden")
        return JsonResponse({"ok": False, "error": "forbidden"}, status=403)
    if not _TOKEN.fullmatch(token):
        return _refuse(404, "not a notify URL", request)
    limit = settings.MTT_NOTIFY_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        # As the live view: no body can be read (Django's request.body would raise, a 500).
        return _refuse(400, "Content-Length is not a number", request)
    if declared > limit:
        return _refuse(413, f"body larger than {limit} bytes", request)
    try:
        body = request.body
    except RequestDataTooBig:
        return _refuse(413, f"body larger than {limit} bytes", request)
    if len(body) > limit:
        return _refuse(413, f"body larger than {limit} bytes", request)
    try:
        parse_body(body)
    except NotificationError as exc:
        return _refuse(400, str(exc), request)
    data = json.dumps(_record(request, token, body, received_at)).encode("utf-8")
    directory = spool_dir()
    name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        _counter.reserve(directory, len(data))
        path = _write_atomically(directory, name, data)
    except SpoolFull as exc:
        logger.error("Notification spool full (%s): notification refused with 503", exc)
        return _refuse(503, "temporarily unavailable", request)
    except OSError as exc:
        logger.error("Notification spool not writable (%s): notification refused with 503", exc)
        return _refuse(503, "temporarily unavailable", request)
    # Never the token in a log line: the file name says which notification it is.
    logger.warning("Notification spooled (%s): %s, %d bytes", why, path.name, len(body))
    # The process that spooled replays as soon as it sees the database again.
    database_on_recovery(replay_in_background)
    return JsonResponse({"ok": True, "spooled": True})


def spool_when_database_down(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Around the notify view: a notification POSTed while the database is down goes to the spool.

    Before the view (the database known down, or no pooled connection in time) and after it (the view
    failed to store for want of the database). GET (the OAuth callback) is left to the 503 page, and a
    replayed request is never spooled again.
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, token: str, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST" or getattr(request, REPLAY_ATTRIBUTE, False):
            return view(request, token, *args, **kwargs)
        try:
            database_gate()
        except DatabaseError as exc:
            return notification_spool(request=request, token=token, why=describe(exc))
        try:
            return view(request, token, *args, **kwargs)
        except DatabaseError as exc:
            # Stored or not, the spool keeps it: the replay's dedupe drops the copy if it was.
            database_note_error(exc)
            logger.warning("Notify URL: storing failed (%s); spooling", describe(exc))
            return notification_spool(request=request, token=token, why=describe(exc))

    return handles_database_errors(wrapper)


# --- replaying -----------------------------------------------------------------------------------


@dataclass
class ReplayResult:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed: int = 0
    left: int = 0
    busy: bool = False
    database_down: bool = False
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.busy:
            return "another replay is running"
        text = (
            f"stored {self.stored}, duplicates {self.duplicates}, rejected {self.rejected}, "
            f"failed {self.failed}, left {self.left}"
        )
        return text + (" (database still unavailable)" if self.database_down else "")


@contextlib.contextmanager
def _replay_lock(directory: Path) -> Iterator[bool]:
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _rebuild(record: dict[str, Any]) -> tuple[WSGIRequest, datetime]:
    """The spooled request as Django would have built it, and when it arrived."""
    if record.get("version") != FORMAT_VERSION:
        raise ValueError(f"unknown spool format {record.get('version')!r}")
    body = base64.b64decode(record["body"], validate=True)
    received_at = datetime.fromisoformat(record["received_at"])
    environ: dict[str, Any] = {
        **{k: v for k, v in record["headers"].items() if k.startswith("HTTP_") and k not in _DROPPED_HEADERS},
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": record["path"],
        "QUERY_STRING": record.get("query", ""),
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "443" if record.get("scheme") == "https" else "80",
        "REMOTE_ADDR": record.get("remote_addr", ""),
        "CONTENT_TYPE": record.get("content_type", ""),
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": record.get("scheme", "http"),
    }
    request = WSGIRequest(environ)
    setattr(request, REPLAY_ATTRIBUTE, True)
    return request, received_at


def _reject(path: Path, reason: str) -> None:
    rejected = path.parent / REJECTED_DIR
    rejected.mkdir(exist_ok=True, mode=0o700)
    os.replace(path, rejected / path.name)
    _fsync_dir(path.parent)
    logger.warning("Spooled notification %s rejected (%s): moved to %s/", path.name, reason, REJECTED_DIR)


def _remove_stale_temporaries(directory: Path) -> None:
    cutoff = time.time() - _STALE_TEMP_SECONDS
    for temp in directory.glob(".*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            if temp.stat().st_mtime < cutoff:
                temp.unlink()


def spool_replay(*, directory: Path | None = None, limit: int | None = None) -> ReplayResult:
    """Store what the spool holds, oldest first, through the notify view; see the module docstring."""
    directory = directory or spool_dir()
    result = ReplayResult()
    if not directory.is_dir():
        return result
    with _replay_lock(directory) as locked:
        if not locked:
            result.busy = True
            return result
        _remove_stale_temporaries(directory)
        files = sorted(p for p in directory.glob("*.json") if not p.name.startswith("."))
        for index, path in enumerate(files):
            if limit is not None and index >= limit:
                result.left = len(files) - index
                break
            outcome = _replay_one(path, result)
            if outcome == "stop":
                result.left = len(files) - index
                break
    if result.stored or result.duplicates or result.rejected or result.failed or result.database_down:
        log = logger.warning if result.rejected or result.failed or result.database_down else logger.info
        log("Notification spool replayed: %s", result)
    return result


def _replay_one(path: Path, result: ReplayResult) -> str:
    try:
        record = json.loads(path.read_bytes())
        request, received_at = _rebuild(record)
        match = resolve(record["path"])
    except FileNotFoundError:
        return "gone"  # replayed by someone else between listing and reading
    except Resolver404:
        result.rejected += 1
        _reject(path, "its URL is no notify URL")
        return "rejected"
    except (ValueError, KeyError, TypeError) as exc:
        result.rejected += 1
        _reject(path, f"unreadable: {type(exc).__name__}")
        return "rejected"
    try:
        with receiving_at(received_at):
            response = match.func(request, *match.args, **match.kwargs)
    except DatabaseError as exc:
        if is_database_unavailable(exc):
            result.database_down = True
            logger.info("Spool replay stopped: the database is still unavailable (%s)", describe(exc))
            return "stop"
        result.failed += 1
        result.errors.append(f"{path.name}: {describe(exc)}")
        logger.exception("Spooled notification %s could not be stored", path.name)
        return "failed"
    except (Http404, PermissionDenied, SuspiciousOperation) as exc:
        # Answers, not failures: what the request would have got (an unknown token is a 404).
        status = 404 if isinstance(exc, Http404) else 403 if isinstance(exc, PermissionDenied) else 400
        result.rejected += 1
        _reject(path, f"HTTP {status}")
        return "rejected"
    except Exception as exc:
        result.failed += 1
        result.errors.append(f"{path.name}: {describe(exc)}")
        logger.exception("Spooled notification %s could not be stored", path.name)
        return "failed"
    status = response.status_code
    if status == 200:
        try:
            duplicate = bool(json.loads(response.content).get("duplicate"))
        except ValueError:
            duplicate = False
        if duplicate:
            result.duplicates += 1
        else:
            result.stored += 1
        # Stored and committed (the view answers after its INSERT): only now the file goes.
        path.unlink()
        _fsync_dir(path.parent)
        return "stored"
    if 400 <= status < 500:
        result.rejected += 1
        _reject(path, f"HTTP {status}")
        return "rejected"
    result.failed += 1
    result.errors.append(f"{path.name}: HTTP {status}")
    logger.warning(
        "Spooled notification %s: the notify view answered %s; kept for the next replay", path.name, status
    )
    return "failed"


def replay_in_background() -> None:
    """Recovery hook (runs in the database probe's thread of the process that spooled)."""
    try:
        spool_replay()
    except Exception:
        logger.exception("Spool replay after the database came back failed")


def spool_pending() -> bool:
    """Whether any notification waits in the spool (cheap: stops at the first file)."""
    try:
        with os.scandir(spool_dir()) as entries:
            return any(e.name.endswith(".json") and not e.name.startswith(".") for e in entries)
    except FileNotFoundError:
        return False

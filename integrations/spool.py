"""The notification spool: notifications that arrive while the database is away are kept on local disk.

MTT's guide says nothing about resending a notification that got an error, so one refused while the database
is away may be lost for good. Instead the notify view writes what it received — the token from the URL, the
body and the time it arrived — to ``NOTIFY_SPOOL_DIR`` and answers 200 ``{"ok": true, "spooled": true}``.
Each file appears whole or not at all (a temporary name, fsync, ``os.replace``, fsync of the folder), so a
crash never leaves half a notification.

Without the database the token cannot be checked, so the view first applies every check that needs none (the
sender allow-list, the token's shape, the size limit): what is refused is refused exactly as while the
database answers, and a body that is not JSON is kept then too. What is left — a notification for a token
that may not exist — is bounded by ``NOTIFY_SPOOL_MAX_FILES`` and ``NOTIFY_SPOOL_MAX_BYTES``; past either,
or when the folder cannot be written, the answer is 503.

``spool_replay()`` — run by the applier process when it finds files (integrations/applier.py), or by hand
with ``python manage.py mtt spool-replay`` — stores each spooled notification with the one way in,
``notification_store``, under its original arrival time (each of several that came as one array): a
notification both spooled and delivered again is stored once (its fingerprint). A file is deleted only
after its notification is committed; one whose token no longer exists goes to ``rejected/`` with a log
line; while the database is still away the replay stops and keeps the rest. One replay at a time per
folder (a lock file), files in arrival order.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError
from django.utils import timezone

from mttcrm.middleware import database_unavailable, describe

from .inbox import notification_store
from .mtt.notifications import parse_notifications
from .selectors import notify_target_for_token

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
REJECTED_DIR = "rejected"
LOCK_FILE = ".replay.lock"
# Notify tokens are secrets.token_urlsafe(32) (43 characters); the model allows 64.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,64}")
# The spool's size is counted again at most this often per process (counted up in between).
_RECOUNT_EVERY = 1.0
# A temporary file older than this belongs to a writer that died.
_STALE_TEMP_SECONDS = 60.0


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


def spool_pending() -> bool:
    """Whether any notification waits in the spool (cheap: stops at the first file)."""
    try:
        with os.scandir(spool_dir()) as entries:
            return any(e.name.endswith(".json") and not e.name.startswith(".") for e in entries)
    except FileNotFoundError:
        return False


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


def notification_spool(*, token: str, body: bytes, received_at: datetime | None = None) -> Path:
    """Keep one notification on disk for the replay. Raises SpoolFull or OSError when it cannot."""
    record = {
        "version": FORMAT_VERSION,
        "received_at": (received_at or timezone.now()).isoformat(),
        "token": token,
        "body": base64.b64encode(body).decode("ascii"),
    }
    data = json.dumps(record).encode("utf-8")
    directory = spool_dir()
    name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    _counter.reserve(directory, len(data))
    return _write_atomically(directory, name, data)


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
    """Store what the spool holds, oldest first; see the module docstring."""
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
            if _replay_one(path, result) == "stop":
                result.left = len(files) - index
                break
    if result.stored or result.duplicates or result.rejected or result.failed or result.database_down:
        log = logger.warning if result.rejected or result.failed or result.database_down else logger.info
        log("Notification spool replayed: %s", result)
    return result


def _read(path: Path) -> tuple[str, bytes, datetime]:
    record: dict[str, Any] = json.loads(path.read_bytes())
    if record.get("version") != FORMAT_VERSION:
        raise ValueError(f"unknown spool format {record.get('version')!r}")
    body = base64.b64decode(record["body"], validate=True)
    return str(record["token"]), body, datetime.fromisoformat(record["received_at"])


def _replay_one(path: Path, result: ReplayResult) -> str:
    try:
        token, body, received_at = _read(path)
    except FileNotFoundError:
        return "gone"  # replayed by someone else between listing and reading
    except (ValueError, KeyError, TypeError) as exc:
        result.rejected += 1
        _reject(path, f"unreadable: {type(exc).__name__}")
        return "rejected"
    try:
        target = notify_target_for_token(token=token, now=received_at)
        if target is None:
            result.rejected += 1
            _reject(path, "its notify URL is not one of ours (any more)")
            return "rejected"
        # Each notification of the body (several when MTT's POST carried an array), as the notify URL does.
        stored = [
            notification_store(
                integration_id=target.integration_id, envelope=envelope, received_at=received_at
            )
            for envelope in parse_notifications(body)
        ]
    except IntegrityError:
        result.rejected += 1
        _reject(path, "its integration was deleted")
        return "rejected"
    except DatabaseError as exc:
        if database_unavailable(exc):
            result.database_down = True
            logger.info("Spool replay stopped: the database is still unavailable (%s)", describe(exc))
            return "stop"
        result.failed += 1
        result.errors.append(f"{path.name}: {describe(exc)}")
        logger.exception("Spooled notification %s could not be stored", path.name)
        return "failed"
    created = sum(one.created for one in stored)
    result.stored += created
    result.duplicates += len(stored) - created
    # Stored and committed (autocommit): only now the file goes.
    path.unlink()
    _fsync_dir(path.parent)
    return "stored"

"""Where the copies live: the "recordings" storage (MEDIA_ROOT by default, S3 through django-storages).

A download is written to a temporary name and only then appears under its final key: on a local
disk a hidden ``.<name>.<random>.part`` beside the final file, renamed with ``os.replace`` (atomic on
one file system); on any other storage an anonymous local temporary file, uploaded whole (an S3 object
appears only once its upload completes). A worker killed mid-download leaves at most a ``.part`` file,
removed by the next attempt on the same key.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, default_storage, storages
from django.utils import timezone

STORAGE_ALIAS = "recordings"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def recordings_storage() -> Storage:
    if STORAGE_ALIAS in settings.STORAGES:
        return storages[STORAGE_ALIAS]
    return default_storage


def recording_storage_key(*, received_at: datetime, name: str, source_url: str) -> str:
    """recordings/YYYY/MM/DD/<call key, sanitised>-<hash of the link>.mp3 — the same every time."""
    day = timezone.localtime(received_at)
    stem = _UNSAFE.sub("_", name).strip("._-")[:80] or "call"
    short = hashlib.sha256(source_url.encode("utf-8")).hexdigest()[:12]
    return f"recordings/{day:%Y/%m/%d}/{stem}-{short}.mp3"


def _local_path(storage: Storage, key: str) -> Path | None:
    # Only a file system storage has a real path (InMemoryStorage.path() returns one, unused).
    if isinstance(storage, FileSystemStorage):
        return Path(storage.path(key))
    return None


class StagedFile:
    """A file being written for ``key``; ``commit()`` publishes it, anything else leaves no trace."""

    def __init__(self, storage: Storage, key: str) -> None:
        self.storage = storage
        self.key = key
        self.final = _local_path(storage, key)
        self.temp: Path | None = None
        self.file: BinaryIO
        if self.final is not None:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            _remove_leftovers(self.final)
            self.temp = self.final.with_name(f".{self.final.name}.{uuid.uuid4().hex}.part")
            mode = getattr(storage, "file_permissions_mode", None) or 0o640
            fd = os.open(self.temp, os.O_RDWR | os.O_CREAT | os.O_EXCL, mode)
            self.file = os.fdopen(fd, "w+b")
        else:
            # Anonymous (already unlinked) on disk: gone with the process whatever happens.
            self.file = tempfile.TemporaryFile(prefix="mttcrm-recording-")  # noqa: SIM115

    def commit(self) -> str:
        """Publish under ``key``; returns the key the storage actually used."""
        self.file.flush()
        if self.final is not None and self.temp is not None:
            os.fsync(self.file.fileno())
            self.file.close()
            os.replace(self.temp, self.final)
            self.temp = None
            return self.key
        self.file.seek(0)
        if self.storage.exists(self.key):
            self.storage.delete(self.key)  # a copy from an attempt whose row was never updated
        saved = self.storage.save(self.key, File(self.file, name=Path(self.key).name))
        self.file.close()
        return saved

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        if self.temp is not None:
            with contextlib.suppress(FileNotFoundError):
                self.temp.unlink()
            self.temp = None


@contextlib.contextmanager
def staged_file(*, key: str, storage: Storage | None = None) -> Iterator[StagedFile]:
    staged = StagedFile(storage or recordings_storage(), key)
    try:
        yield staged
    finally:
        staged.discard()


def _remove_leftovers(final: Path) -> None:
    """Temporary files of earlier attempts on this key (a worker killed mid-download)."""
    for leftover in final.parent.glob(f".{glob_escape(final.name)}.*.part"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def recording_file_delete(*, key: str) -> None:
    recordings_storage().delete(key)


def recording_file_open(*, key: str) -> File:
    return recordings_storage().open(key, "rb")

"""Why a recording download stopped. ``reason`` is a sentence for the admin (stored on the row)."""

from __future__ import annotations


class RecordingError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:500]


class RecordingRefused(RecordingError):
    """Our policy refuses the URL (host, scheme, address, redirect): never fetched."""


class RecordingPermanentError(RecordingError):
    """Repeating will not help: wrong type, not mp3, too big, 4xx. ``gone``: 404/410 at the host."""

    def __init__(self, reason: str, *, gone: bool = False, status_code: int | None = None) -> None:
        super().__init__(reason)
        self.gone = gone
        self.status_code = status_code


class RecordingTransientError(RecordingError):
    """Timeouts, dropped connections, 5xx, 429, DNS failures: retried with backoff."""

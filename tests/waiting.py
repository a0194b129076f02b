"""Waiting for something another process or thread does, in tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def wait_until(
    check: Callable[[], Any],
    timeout: float = 15.0,
    what: str = "",
    log: Path | None = None,
    every: float = 0.1,
) -> Any:
    """``check()``'s first truthy value, asked every ``every`` seconds; AssertionError after ``timeout``
    with ``what`` (and the end of ``log``, a server's log file, when given)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-4000:] if log else ""
            raise AssertionError(f"timed out waiting for {what}\n{tail}".rstrip())
        time.sleep(every)

"""What the calls app needs of a notification under test: how it is posted, and the one call it made."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from calls.models import Call

Notify = Callable[[dict[str, Any]], Any]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def only_call() -> Call:
    calls = list(Call.objects.all())
    assert len(calls) == 1, calls
    return calls[0]

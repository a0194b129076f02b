"""A database that does not answer the notify view, and the spool's files (the spool tests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from django.db import OperationalError
from django.test import Client

LOST = "consuming input failed: server closed the connection unexpectedly"


def post(client: Client, path: str, body: Any) -> Any:
    return client.post(path, data=json.dumps(body, ensure_ascii=False), content_type="application/json")


@contextmanager
def database_down() -> Iterator[None]:
    """The database does not answer: the notify view's first query (the token) fails as psycopg would."""
    with mock.patch("integrations.views.notify_target_for_token", side_effect=OperationalError(LOST)):
        yield


def spooled_files(settings: Any) -> list[Path]:
    return sorted(Path(settings.NOTIFY_SPOOL_DIR).glob("*.json"))

"""Small helpers shared by the sandbox tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from sandbox.testing import RunningSandbox

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mtt"


def load_fixture(relative: str) -> Any:
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


def shape(value: Any) -> Any:
    """The key structure of a JSON value: dict keys recursively, lists by their first item, scalars as '*'."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return "*"


def bearer(sandbox: RunningSandbox) -> dict[str, str]:
    return {"Authorization": f"Bearer {sandbox.tokens()['access_token']}"}


def api_get(sandbox: RunningSandbox, path: str, headers: dict[str, str]) -> requests.Response:
    return requests.get(f"{sandbox.url}{path}", headers=headers, timeout=10)


def api_post(sandbox: RunningSandbox, path: str, headers: dict[str, str], payload: Any) -> requests.Response:
    return requests.post(f"{sandbox.url}{path}", headers=headers, json=payload, timeout=10)

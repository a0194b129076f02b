"""An API client authenticated by a fresh token (the API tests and others that call the API)."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from api.models import ApiToken
from api.services import api_token_create


def token_client(user: Any, scope: str = ApiToken.Scope.WRITE) -> APIClient:
    """An API client authenticated as ``user`` by a fresh token (anonymous: no credentials)."""
    client = APIClient()
    if user is not None:
        _token, raw = api_token_create(user=user, name="test", scope=scope)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client

"""The MTT sandbox's integration, added and connected as an admin does it (tests that drive the sandbox)."""

from __future__ import annotations

from typing import Any

from integrations.models import Integration
from integrations.services import integration_oauth_complete
from integrations.tasks import sync_integration
from sandbox.testing import RunningSandbox


def new_sandbox_integration(sandbox: RunningSandbox, **fields: Any) -> Integration:
    """The sandbox's integration as an admin adds it, not connected yet; ``fields`` set more (a name, a
    status)."""
    values: dict[str, Any] = {
        "name": "Sandbox",
        "client_id": sandbox.config.client_id,
        "client_secret": sandbox.config.client_secret,
        "oauth_url": sandbox.url,
        "api_url": sandbox.url,
    }
    return Integration.objects.create(**{**values, **fields})


def connect(sandbox: RunningSandbox, capture: Any) -> Integration:
    """A real OAuth round trip and directory sync against the sandbox, as an admin's Connect does."""
    integration = new_sandbox_integration(sandbox)
    integration_oauth_complete(integration=integration, code=sandbox.authorize(integration.notify_url))
    sync_integration.delay(integration.pk, reapply_parking=True)  # as the OAuth callback view does
    sandbox.control("DELETE", "requests")
    integration.refresh_from_db()
    return integration

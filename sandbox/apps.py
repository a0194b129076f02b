from __future__ import annotations

from django.apps import AppConfig


class SandboxAppConfig(AppConfig):
    """The sandbox has no models; Django only provides the ``mtt_sandbox`` management command."""

    name = "sandbox"
    verbose_name = "MTT PBX sandbox"

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register


@register()
def encryption_key_check(app_configs: Any, **kwargs: Any) -> list[Error]:
    if not settings.DEBUG and not settings.FIELD_ENCRYPTION_KEYS:
        return [
            Error(
                "FIELD_ENCRYPTION_KEYS is not set.",
                hint="Generate one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'` and set it in the environment.",
                id="integrations.E001",
            )
        ]
    return []

"""Secrets in the admin for those who may only look: a row's page shows a secret to nobody.

The integration's client secret and a webhook subscription's signing secret are write-only fields of their
forms (a password input that renders nothing back). A user with only the *view* permission gets the page
without a form: Django then shows every field read-only, by its value — the secret in plain text, and the
notify URL with its token. ``ReadOnlySecretsAdmin`` swaps each such field, for such a user, for a display
that says only whether it is set (``SECRET_MASK``), the same mask as the audit trail's.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import admin
from django.http import HttpRequest

from .audit import SECRET_MASK


def masked(value: Any) -> str:
    """What a read-only page shows of a secret: the mask when set, a dash when not."""
    return SECRET_MASK if value else "—"


class ReadOnlySecretsAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """``read_only_secrets``: {field shown to those who may change the row: display method shown instead
    to those who may only view it}. The display methods must be ModelAdmin methods (or model attributes)."""

    read_only_secrets: ClassVar[dict[str, str]] = {}

    def _view_only(self, request: HttpRequest, obj: Any) -> bool:
        return obj is not None and not self.has_change_permission(request, obj)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if not self._view_only(request, obj):
            return fieldsets
        return [
            (name, {**options, "fields": self._masked_fields(options["fields"])})
            for name, options in fieldsets
        ]

    def _masked_fields(self, fields: Any) -> Any:
        # A fieldset's line is a name or a tuple of names shown side by side.
        if isinstance(fields, str):
            return self.read_only_secrets.get(fields, fields)
        return type(fields)(self._masked_fields(field) for field in fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if self._view_only(request, obj):
            readonly += [shown for shown in self.read_only_secrets.values() if shown not in readonly]
        return readonly

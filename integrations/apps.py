from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = _("MTT integration")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from . import checks  # noqa: F401  (registers system checks)
        from .models import Integration

        def forget_tokens(sender: type, instance: Integration, **kwargs: object) -> None:
            from .selectors import notify_tokens_forget

            notify_tokens_forget(instance.pk)

        # The notify URL's per-process token cache (selectors.integration_for_notification).
        post_save.connect(forget_tokens, sender=Integration, dispatch_uid="integrations.forget_tokens.save")
        post_delete.connect(
            forget_tokens, sender=Integration, dispatch_uid="integrations.forget_tokens.delete"
        )

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CallsConfig(AppConfig):
    name = "calls"
    verbose_name = _("Calls")

    def ready(self) -> None:
        from contacts.services import MERGE_HOOKS
        from integrations.inbox import register_applier
        from integrations.mtt.notifications import CALL_EVENT

        from .services import call_apply_notification, calls_move_to_contact

        register_applier(CALL_EVENT, lambda event: call_apply_notification(event=event))
        if calls_move_to_contact not in MERGE_HOOKS:
            MERGE_HOOKS.append(calls_move_to_contact)

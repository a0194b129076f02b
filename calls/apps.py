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

        # Screen pop: build the pushes inside the call's transaction, send them after commit.
        from . import realtime
        from .services import IN_TRANSACTION_HOOKS, ON_COMMIT_HOOKS

        if realtime.prepare not in IN_TRANSACTION_HOOKS:
            IN_TRANSACTION_HOOKS.append(realtime.prepare)
        if realtime.push_prepared not in ON_COMMIT_HOOKS:
            ON_COMMIT_HOOKS.append(realtime.push_prepared)

        # Recordings: register the download in the call's transaction, start it after commit.
        from .recordings.services import recording_enqueue_download, recording_register_from_notification

        if recording_register_from_notification not in IN_TRANSACTION_HOOKS:
            IN_TRANSACTION_HOOKS.append(recording_register_from_notification)
        if recording_enqueue_download not in ON_COMMIT_HOOKS:
            ON_COMMIT_HOOKS.append(recording_enqueue_download)

        # Parked calls and the callback queue: decide/record with the call, send routing commands
        # after commit (both first: nothing queues ahead of the 5 s of parking); re-apply parking on connect.
        from integrations.inbox import URGENCY, register_urgency
        from integrations.services import ON_CONNECT_HOOKS

        from .callbacks import callback_on_call
        from .routing import routing_decide, routing_dispatch, routing_is_urgent, routing_reapply_parking

        if routing_is_urgent not in URGENCY.get(CALL_EVENT, []):
            register_urgency(CALL_EVENT, routing_is_urgent)

        if routing_decide not in IN_TRANSACTION_HOOKS:
            IN_TRANSACTION_HOOKS.insert(0, routing_decide)
        if callback_on_call not in IN_TRANSACTION_HOOKS:
            IN_TRANSACTION_HOOKS.append(callback_on_call)
        if routing_dispatch not in ON_COMMIT_HOOKS:
            ON_COMMIT_HOOKS.insert(0, routing_dispatch)
        if routing_reapply_parking not in ON_CONNECT_HOOKS:
            ON_CONNECT_HOOKS.append(routing_reapply_parking)

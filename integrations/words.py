"""MTT's event names (``NotificationEvent.event``) in the words the admin shows. The stored body keeps the
name as sent, for whoever debugs."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from .mtt.notifications import CALL_EVENT, VPBX_EVENTS

EVENT_NAMES = {
    CALL_EVENT: _("a call"),
    # The guide's misspelling too (rows stored before the parser canonicalised names).
    **dict.fromkeys(VPBX_EVENTS, _("PBX settings changed")),
}


def event_words(event: str) -> str:
    return str(EVENT_NAMES.get(event, _("other event")))

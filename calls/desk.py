"""The operator's desk on every page of the CRM: what the page's script needs to keep the tab's live
connection, show the call cards as a panel, the wrap-up after a call, the badges and the reminders.

``desk_config`` is rendered by base.html (``{% desk_config %}``) on every page of a logged-in user; the
workspace (/) adds its recent calls, the supervisors' board has its own config (/ws/live/).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from contacts.people import person_name

from .models import Call, CallResult, Direction
from .wrapup import assignees_for

# The page asks for the active calls again this often even with the socket up: the safety net for a
# push that could not reach it (a full channel, a push dropped while the channel layer was away).
RESYNC_EVERY_MS = 30_000


def page_strings() -> dict[str, Any]:
    """The texts the page's script shows, in the request's language (no JS catalog needed)."""
    return {
        "phase": {
            "ringing_incoming": _("Incoming call"),
            "ringing_outgoing": _("Outgoing call"),
            "connected": _("In conversation"),
            "ended": _("Call ended"),
        },
        "status": {str(value): str(label) for value, label in Call.Status.choices},
        "direction": {str(value): str(label) for value, label in Direction.choices},
        "connection": {
            "connecting": _("Connecting…"),
            "open": _("Live"),
            "retrying": _("Connection lost, reconnecting…"),
            "login": _("Your session has ended. Log in again."),
            "forbidden": _("You may not watch the live board."),
        },
        "unknown_number": _("Unknown number"),
        "company": _("Company"),
        "manager": _("Personal manager"),
        "notes": _("Notes"),
        "recent": _("Last calls"),
        "no_recent": _("No earlier calls."),
        "open_contact": _("Open contact"),
        "create_contact": _("Create contact"),
        "details": _("Call details"),
        "recording": _("Recording"),
        "note_placeholder": _("A note about this call"),
        "save_note": _("Save to the contact's notes"),
        "note_saved": _("Saved to the contact's notes."),
        "note_failed": _("The note was not saved. Try again."),
        "no_contact": _("No contact to add the note to."),
        "notify_title_incoming": _("Incoming call"),
        "notify_title_outgoing": _("Outgoing call"),
        "operators": _("Operators"),
        "nobody": _("not offered yet"),
        # The desk on every page (issue 16): the wrap-up after a call, naming an unknown caller, reminders.
        "desk_title": _("Calls"),
        "wrap_up": _("Wrap-up"),
        "result": _("Result"),
        "no_result": _("— not chosen —"),
        "comment": _("Comment"),
        "follow_up_at": _("Follow up on"),
        "follow_up_for": _("Follow-up for"),
        "follow_up_note": _("What to do"),
        "me": _("me"),
        "save_wrap_up": _("Save the wrap-up"),
        "later": _("Later"),
        "wrap_up_saved": _("The wrap-up is saved."),
        "wrap_up_failed": _("The wrap-up was not saved. Try again."),
        "call_missed": _("Missed call"),
        "name_contact": _("Name this client"),
        "contact_name": _("Name"),
        "save": _("Save"),
        "contact_saved": _("The contact is saved."),
        "contact_failed": _("The contact was not saved. Try again."),
        "tasks_due": _("Tasks due"),
        "task_done": _("Done"),
        "all_tasks": _("All tasks"),
        "close": _("Close"),
        "hide": _("Hide"),
        "to_call_back": _("To call back"),
        "call_back": _("Call back"),
        "open_card": _("Expand"),
        "play": _("Play the recording"),
    }


def live_page_config(*, mode: str, ws_path: str, data_url: str, **extra: Any) -> dict[str, Any]:
    """What the page's script needs (rendered with json_script)."""
    return {
        "mode": mode,
        # WEBSOCKET_URL (make run: Daphne's own port), else the page's own host.
        "ws_url": settings.WEBSOCKET_URL,
        "ws_path": ws_path,
        "data_url": data_url,
        "login_url": reverse("login"),
        "resync_every_ms": RESYNC_EVERY_MS,
        # The zone the server writes its times in (TIME_ZONE): the script writes the same call's time the same
        # way, whatever the zone of the computer the browser runs on.
        "time_zone": timezone.get_current_timezone_name(),
        "strings": page_strings(),
        **extra,
    }


def desk_config(user: Any, *, mode: str = "desk", **extra: Any) -> dict[str, Any]:
    """The operator's desk: /ws/workspace/, the cards' resync, the wrap-up's choices, the badges' URL."""
    return live_page_config(
        mode=mode,
        ws_path="/ws/workspace/",
        data_url=reverse("calls:active"),
        desk_url=reverse("calls:desk"),
        tasks_url=reverse("calls:tasks"),
        callbacks_url=reverse("calls:callbacks"),
        user_id=int(user.pk),
        can_listen=user.has_perm("calls.listen_recording"),
        results=[{"id": r.pk, "name": r.name} for r in CallResult.objects.filter(is_active=True)],
        people=[{"id": u.pk, "name": person_name(u)} for u in assignees_for(user).exclude(pk=user.pk)],
        **extra,
    )

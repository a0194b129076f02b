"""Views of the screen pop: the operator's workspace (/), its resync and note endpoints, and the supervisors'
live board."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from contacts.models import Contact
from contacts.people import person_name

from . import live
from .dates import local_minute
from .desk import RESYNC_EVERY_MS, desk_config, live_page_config
from .models import Call
from .realtime.groups import user_is_supervisor
from .views_wrapup import open_tasks_for

NOTE_MAX_LENGTH = 2000
__all__ = ["RESYNC_EVERY_MS"]


def _json_login_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """401 JSON instead of a redirect to the login page: the caller is the page's script."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return JsonResponse({"ok": False, "error": "login required"}, status=401)
        return view(request, *args, **kwargs)

    return wrapped


def _server_time() -> float:
    return time.time() * 1000


@login_required
def workspace(request: HttpRequest) -> HttpResponse:
    """The operator's workspace: the live screen pop (cards of calls reaching their workplace)."""
    config = desk_config(
        request.user, mode="workspace", recent=live.recent_for_user(user_id=int(request.user.pk or 0))
    )
    context = {
        "workplace": getattr(request.user, "workplace", None),
        "config": config,
        "is_supervisor": user_is_supervisor(request.user),
        # The home of the desk shows the operator's open follow-ups too (the tasks list has them all).
        "tasks": list(open_tasks_for(request.user).select_related("contact")[:10]),
        "now": timezone.now(),
    }
    return render(request, "home.html", context)


@_json_login_required
@never_cache
@require_GET
def active_calls(request: HttpRequest) -> JsonResponse:
    """GET: the cards this operator should see now (asked on every (re)connect and every 30 s)."""
    return JsonResponse({"calls": live.cards_for_user(user=request.user), "server_time": _server_time()})


def contact_note_append(*, contact_id: int, text: str, author: str) -> str:
    """Append a dated line to a contact's notes (newest last) and return the notes."""
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=contact_id)
        stamp = local_minute()
        line = f"[{stamp}, {author}] {text}"
        contact.notes = f"{contact.notes.rstrip()}\n{line}" if contact.notes.strip() else line
        contact.save(update_fields=["notes", "updated_at"])
    return contact.notes


@_json_login_required
@require_POST
def call_note(request: HttpRequest, pk: int) -> JsonResponse:
    """POST text=…: the note field of a finished call's card, saved into its contact's notes (CSRF)."""
    call = Call.objects.filter(pk=pk).first()
    if call is None or not live.user_may_see_call(request.user, call):
        return JsonResponse({"ok": False, "error": _("No such call.")}, status=404)
    # NUL cannot be stored in PostgreSQL's text (a DataError): dropped, as nobody types it.
    text = request.POST.get("text", "").replace("\x00", "").strip()
    if not text:
        return JsonResponse({"ok": False, "error": _("The note is empty.")}, status=400)
    if len(text) > NOTE_MAX_LENGTH:
        return JsonResponse(
            {
                "ok": False,
                "error": _("The note is too long (at most %(n)s characters).") % {"n": NOTE_MAX_LENGTH},
            },
            status=400,
        )
    if call.contact_id is None:
        return JsonResponse({"ok": False, "error": _("No contact to add the note to.")}, status=409)
    user: Any = request.user
    notes = contact_note_append(contact_id=call.contact_id, text=text, author=person_name(user))
    return JsonResponse({"ok": True, "notes": notes})


@login_required
def live_board(request: HttpRequest) -> HttpResponse:
    """The supervisors' board: every active call of the company, live."""
    if not user_is_supervisor(request.user):
        raise PermissionDenied
    return render(
        request,
        "calls/live/board.html",
        {"config": live_page_config(mode="board", ws_path="/ws/live/", data_url=reverse("calls:board_json"))},
    )


@_json_login_required
@never_cache
@require_GET
def live_board_json(request: HttpRequest) -> JsonResponse:
    if not user_is_supervisor(request.user):
        return JsonResponse({"ok": False, "error": "forbidden"}, status=403)
    return JsonResponse({"calls": live.board_rows(user=request.user), "server_time": _server_time()})

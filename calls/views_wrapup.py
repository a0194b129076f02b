"""The wrap-up of a call (from the card after hang-up, or later from the call's page), the follow-up
tasks list, and the desk's small JSON (badge counts, due tasks) that every page of the CRM polls."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from contacts.people import person_name

from .callbacks import callback_open_for_user
from .dates import local_minute
from .forms import WrapUpForm
from .models import Call, FollowUpTask
from .realtime.cards import call_version
from .visibility import call_visible_to, callbacks_visible_to, tasks_visible_to
from .wrapup import (
    WrapUpChanged,
    WrapUpNotYours,
    call_wrap_up,
    follow_up_complete,
    wrap_up_refusal,
    wrap_up_seen,
)

DUE_SHOWN = 5


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def wrap_up_view(call: Call) -> dict[str, Any]:
    """What the card and the API show of a call's wrap-up."""
    return {
        "result": call.result.name if call.result_id and call.result else "",
        "result_id": call.result_id,
        "comment": call.comment,
        "wrapped_up_at": call.wrapped_up_at.isoformat() if call.wrapped_up_at else None,
        "wrapped_up_by": person_name(call.wrapped_up_by) if call.wrapped_up_by_id else "",
    }


@require_POST
def wrap_up(request: HttpRequest, pk: int) -> HttpResponse:
    """POST the wrap-up form (CSRF). The card sends Accept: application/json and gets JSON (401/404/400
    with the errors per field); the call's page gets a redirect back, or the page with the errors."""
    json = _wants_json(request)
    if not request.user.is_authenticated:
        if json:
            return JsonResponse(
                {"ok": False, "error": _("Your session has ended. Log in again.")}, status=401
            )
        return HttpResponseRedirect(f"{reverse('login')}?next={reverse('calls:detail', args=[pk])}")
    call = Call.objects.select_related("result", "contact").filter(pk=pk).first()
    if call is None or not call_visible_to(request.user, call):
        if json:
            return JsonResponse({"ok": False, "error": _("No such call.")}, status=404)
        raise Http404("No such call")
    form = WrapUpForm(request.POST, user=request.user, call=call)
    task = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            done = call_wrap_up(
                call=call,
                user=request.user,
                result=data["result"],
                comment=data["comment"],
                follow_up_at=data["follow_up_at"],
                follow_up_for=data["follow_up_for"],
                follow_up_note=data["follow_up_note"],
                seen=data["seen"],
            )
            task = done.task
        except WrapUpChanged as changed:
            call.refresh_from_db()
            if json:
                # With the token of the wrap-up that stands: the card sends it with its next save, which
                # then replaces that one knowingly (as the page's form does).
                return JsonResponse(
                    {"ok": False, "error": changed.message, "seen": wrap_up_seen(call)}, status=409
                )
            # The page shows the wrap-up that stands and keeps what the user typed; the form now carries
            # the current wrap-up, so saving it again replaces that one knowingly.
            data = request.POST.copy()
            data["seen"] = wrap_up_seen(call)
            form = WrapUpForm(data, user=request.user, call=call)
            form.is_valid()
            form.add_error(None, changed.message)
            return call_detail_page(request, call, form=form, status=409)
        except WrapUpNotYours as refused:
            if json:
                return JsonResponse({"ok": False, "error": refused.message}, status=403)
            call.refresh_from_db()  # the wrap-up that stands, as saved by the one whose it is
            messages.error(request, _("The wrap-up was not saved."))
            # What they wrote is shown back (to copy, to tell the author), never silently dropped.
            unsaved = [text for text in (data["comment"].strip(), data["follow_up_note"].strip()) if text]
            return call_detail_page(request, call, status=403, unsaved=unsaved)
        except PermissionDenied:
            raise Http404("No such call") from None
        except ValidationError as error:
            for field, texts in error.message_dict.items():
                for text in texts:
                    form.add_error(field if field in form.fields else None, text)
    if form.errors:
        if json:
            errors = {field: [str(e) for e in texts] for field, texts in form.errors.items()}
            return JsonResponse(
                {"ok": False, "errors": errors, "error": _("The wrap-up was not saved.")}, status=400
            )
        return call_detail_page(request, call, form=form, status=400)
    if json:
        return JsonResponse(
            {
                "ok": True,
                # The version of the call after the save: the page ignores any older card of it (a resync
                # or a push sent before the save) instead of bringing the wrap-up back.
                "call": {"id": call.pk, "version": call_version(call), **wrap_up_view(call)},
                "task": (
                    {"id": task.pk, "due_at": task.due_at.isoformat(), "assignee": person_name(task.assignee)}
                    if task is not None
                    else None
                ),
            }
        )
    messages.success(request, _("The wrap-up is saved."))
    return HttpResponseRedirect(reverse("calls:detail", args=[call.pk]))


def call_detail_page(
    request: HttpRequest,
    call: Call,
    *,
    form: WrapUpForm | None = None,
    status: int = 200,
    unsaved: list[str] | None = None,
) -> HttpResponse:
    """The call's page with its wrap-up form (calls.views.call_detail, and a refused wrap-up). The form
    is left out, with the reason, when the wrap-up is someone else's to change."""
    refusal = wrap_up_refusal(request.user, call)
    if form is None:
        form = WrapUpForm(
            user=request.user,
            call=call,
            initial={"result": call.result_id, "comment": call.comment},
        )
    legs = call.legs.select_related("workplace__user").order_by("started_at", "leg_id")
    events = call.events.select_related("leg__workplace__user").order_by("occurred_at", "pk")
    tasks = tasks_visible_to(request.user, call.follow_ups.select_related("assignee").order_by("due_at"))
    context = {
        "call": call,
        "legs": legs,
        "events": events,
        "wrap_form": None if refusal else form,
        "wrap_refusal": refusal,
        "wrap_unsaved": unsaved or [],
        "tasks": tasks,
    }
    return render(request, "calls/call_detail.html", context, status=status)


# --- follow-up tasks ------------------------------------------------------------------------------


def open_tasks_for(user: Any) -> Any:
    """The user's own open follow-ups, soonest first (the desk's reminder, the menu's count)."""
    return FollowUpTask.objects.filter(assignee_id=user.pk, done_at__isnull=True).order_by("due_at", "pk")


SHOW = {"open": _lazy("Open tasks"), "due": _lazy("Due now"), "done": _lazy("Done"), "all": _lazy("All")}


@login_required
def task_list(request: HttpRequest) -> HttpResponse:
    """The follow-up tasks the user may see: mine and (supervisors) their teams', due first."""
    show = request.GET.get("show", "open")
    if show not in ("open", "due", "done", "all"):
        show = "open"
    tasks = tasks_visible_to(
        request.user,
        FollowUpTask.objects.select_related("assignee", "contact", "call", "created_by", "done_by"),
    )
    now = timezone.now()
    if show == "open":
        tasks = tasks.filter(done_at__isnull=True).order_by("due_at", "pk")
    elif show == "due":
        tasks = tasks.filter(done_at__isnull=True, due_at__lte=now).order_by("due_at", "pk")
    elif show == "done":
        tasks = tasks.filter(done_at__isnull=False).order_by("-done_at", "-pk")
    else:
        tasks = tasks.order_by("-due_at", "-pk")
    return render(
        request,
        "calls/tasks.html",
        {
            "tasks": list(tasks[:300]),
            "now": now,
            "show": show,
            "choices": [(k, str(v)) for k, v in SHOW.items()],
        },
    )


@require_POST
def task_done(request: HttpRequest, pk: int) -> HttpResponse:
    """POST (CSRF): mark a follow-up done. JSON for the desk's reminder, a redirect for the list."""
    json = _wants_json(request)
    if not request.user.is_authenticated:
        if json:
            return JsonResponse(
                {"ok": False, "error": _("Your session has ended. Log in again.")}, status=401
            )
        return HttpResponseRedirect(f"{reverse('login')}?next={reverse('calls:tasks')}")
    task = FollowUpTask.objects.filter(pk=pk).first()
    try:
        if task is None:
            raise PermissionDenied  # not there, or not theirs: the same answer
        task = follow_up_complete(task, request.user)
    except PermissionDenied:
        if json:
            return JsonResponse({"ok": False, "error": _("No such task.")}, status=404)
        raise Http404("No such task") from None
    if json:
        return JsonResponse({"ok": True})
    if task.done_by_id not in (None, request.user.pk) and task.done_at is not None:
        # A list opened before a colleague (or a supervisor) did it: say so instead of claiming it.
        messages.info(
            request,
            _("%(name)s had already marked this task done at %(when)s.")
            % {
                "name": person_name(task.done_by),
                "when": local_minute(task.done_at),
            },
        )
    else:
        messages.success(request, _("The task is done."))
    # Back to the list the button was on (its filter); only a path of this site, never another host.
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        back = reverse("calls:tasks")
    return HttpResponseRedirect(back)


def _task_item(task: FollowUpTask) -> dict[str, Any]:
    contact = task.contact
    return {
        "id": task.pk,
        "due_at": task.due_at.isoformat(),
        "note": task.note,
        "contact": (contact.name or str(contact)) if contact is not None else "",
        "url": reverse("contacts:detail", args=[contact.pk])
        if contact is not None
        else (reverse("calls:detail", args=[task.call_id]) if task.call_id else reverse("calls:tasks")),
        "done_url": reverse("calls:task_done", args=[task.pk]),
    }


@never_cache
@require_GET
def desk_state(request: HttpRequest) -> JsonResponse:
    """GET: the menu's live counts and the reminders of due tasks (every page asks on each connect, every
    resync and after each call's end)."""
    if not request.user.is_authenticated:
        return JsonResponse({"ok": False, "error": "login required"}, status=401)
    user = request.user
    mine = open_tasks_for(user)
    due = list(mine.filter(due_at__lte=timezone.now()).select_related("contact")[:DUE_SHOWN])
    return JsonResponse(
        {
            "ok": True,
            "callbacks": callbacks_visible_to(user, callback_open_for_user(user_id=user.pk)).count(),
            "tasks_due": mine.filter(due_at__lte=timezone.now()).count(),
            "tasks_open": mine.count(),
            "due": [_task_item(task) for task in due],
        }
    )

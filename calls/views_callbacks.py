"""The "To call back" page: open callback tasks, mine first, with one-click callback."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from contacts.people import person_name

from .callbacks import callback_list_for_user, callback_take
from .models import CallbackTask
from .visibility import callbacks_visible_to


@login_required
def callback_list(request: HttpRequest) -> HttpResponse:
    user_id = request.user.pk
    assert user_id is not None  # login_required
    tasks = list(callbacks_visible_to(request.user, callback_list_for_user(user_id=user_id))[:200])
    return render(request, "calls/callbacks/list.html", {"tasks": tasks})


@login_required
@require_POST
def callback_take_view(request: HttpRequest, pk: int) -> HttpResponse:
    if not callbacks_visible_to(request.user, CallbackTask.objects.filter(pk=pk)).exists():
        raise Http404("No such callback task")  # team mode: another team's client
    if callback_take(task_id=pk, user=request.user):
        messages.success(request, _("The callback is yours now."))
        return HttpResponseRedirect(reverse("calls:callbacks"))
    # Say which it is: the operator decides differently on "reached" (nothing to do) and "taken" (whose).
    task = CallbackTask.objects.select_related("assignee").filter(pk=pk).first()
    if task is None or task.closed_at is not None:
        messages.warning(request, _("The client has been reached already: this callback is closed."))
    else:
        messages.warning(
            request,
            _("%(name)s has taken this callback already.") % {"name": person_name(task.assignee)},
        )
    return HttpResponseRedirect(reverse("calls:callbacks"))

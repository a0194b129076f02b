from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from calls import live, realtime
from calls.views_live import live_page_config
from mttcrm.dbdown import handles_database_errors


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The operator's workspace: the live screen pop (cards of calls reaching their workplace)."""
    workplace = getattr(request.user, "workplace", None)
    config = live_page_config(
        mode="workspace",
        ws_path="/ws/workspace/",
        data_url=reverse("calls_live:active"),
        recent=live.recent_for_user(user_id=int(request.user.pk or 0)),
        can_listen=request.user.has_perm("calls.listen_recording"),
    )
    return render(
        request,
        "home.html",
        {
            "workplace": workplace,
            "config": config,
            "is_supervisor": realtime.user_is_supervisor(request.user),
        },
    )


@handles_database_errors  # it never needs the database: no gate (a pooled connection) before it
@require_safe
def ping(request: HttpRequest) -> HttpResponse:
    """GET /ping: "ok", touching neither the database, nor Redis, nor the session.

    Says only that this process serves requests through the whole middleware stack (/healthz checks the
    services). Unauthenticated and harmless; bench/load.py compares the notify URL's throughput with it.
    """
    return HttpResponse("ok", content_type="text/plain")

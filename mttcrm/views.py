from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The operator's workspace (the screen-pop issue turns it into the live call board)."""
    workplace = getattr(request.user, "workplace", None)
    return render(request, "home.html", {"workplace": workplace})

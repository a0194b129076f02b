"""Template context for every page: the menu's "To call back" and "Tasks" badges (templates/base.html)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from .callbacks import callback_open_for_user
from .models import FollowUpTask
from .visibility import callbacks_visible_to


def callbacks(request: HttpRequest) -> dict[str, Any]:
    """``callbacks_open_count``: open callback tasks assigned to the user plus unassigned ones.

    Lazy: the one COUNT query runs only on pages that render the menu, and only for a logged-in user.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def count() -> int:
        # The same tasks as the list shows (team mode: the user's teams' clients only).
        return callbacks_visible_to(user, callback_open_for_user(user_id=user.pk)).count()

    def tasks_due() -> int:
        # The user's own follow-ups that are due (the menu's "Tasks" badge; the desk updates it live).
        return FollowUpTask.objects.filter(
            assignee_id=user.pk, done_at__isnull=True, due_at__lte=timezone.now()
        ).count()

    return {"callbacks_open_count": SimpleLazyObject(count), "tasks_due_count": SimpleLazyObject(tasks_due)}

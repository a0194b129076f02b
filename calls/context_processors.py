"""Template context for every page: the "To call back" badge of the menu (templates/base.html)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from .callbacks import callback_open_for_user
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

    return {"callbacks_open_count": SimpleLazyObject(count)}

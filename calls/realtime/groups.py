"""Who receives what over the live connection: the channel-layer groups and who may join them."""

from __future__ import annotations

from typing import Any

SUPERVISORS_GROUP = "supervisors"
# The permission that opens the live board to non-staff users. calls.view_call exists with the model
# (no migration needed); a dedicated "view_live_board" permission would need one.
SUPERVISOR_PERMISSION = "calls.view_call"


def operator_group(user_id: int) -> str:
    """The group of every open live connection of one operator (all their tabs)."""
    return f"operator.{user_id}"


def user_is_supervisor(user: Any) -> bool:
    """Staff, or anyone granted ``calls.view_call``: may watch every active call (the live board)."""
    return bool(getattr(user, "is_authenticated", False)) and bool(
        user.is_staff or user.has_perm(SUPERVISOR_PERMISSION)
    )

"""Who receives what over the live connection: the channel-layer groups and who may join them."""

from __future__ import annotations

import hashlib
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


def user_group(user_id: int) -> str:
    """Every live connection of one user, whichever page opened it: closed when the user is deactivated,
    re-checked when their permissions or teams change (calls/realtime/access.py)."""
    return f"user.{user_id}"


def session_group(session_key: str) -> str:
    """The live connections opened with one login session: closed when that session logs out. The key is
    a secret (the session cookie): the group carries a digest of it, never the key."""
    return "session." + hashlib.sha256(session_key.encode()).hexdigest()[:40]

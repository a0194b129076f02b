"""Who may see and change what: the visibility mode, team scopes, the personal-manager permission.

The querysets of what a user may see (calls, contacts, recordings, callbacks) are in calls/visibility.py;
they build on ``users_visible_to`` here. README "Security model" states the rules.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q

from .models import AccessSettings, Team

SEE_ALL_TEAMS = "contacts.view_all_teams"
CHANGE_PERSONAL_MANAGER = "contacts.change_personal_manager"


def visibility_mode() -> str:
    """AccessSettings.Visibility.ALL or .TEAM (one small query: the admin's change applies at once)."""
    mode = AccessSettings.objects.filter(pk=AccessSettings.SINGLETON_ID).values_list("visibility", flat=True)
    return next(iter(mode), AccessSettings.Visibility.ALL)


def _active(user: Any) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_active)


def user_sees_every_team(user: Any) -> bool:
    """Superusers and holders of ``contacts.view_all_teams`` see everything in either mode."""
    return _active(user) and bool(user.is_superuser or user.has_perm(SEE_ALL_TEAMS))


def users_visible_to(user: Any) -> frozenset[int] | None:
    """The users whose calls, contacts and recordings ``user`` sees; None: everybody's (no restriction).

    None in the "all" mode and for users who see every team. In the "team" mode: the user, and the
    members of every team the user is a member or a supervisor of. An anonymous or inactive user: nobody.
    The same answer says which operators' cards and board rows a supervisor may watch live.
    """
    if not _active(user):
        return frozenset()
    if user_sees_every_team(user) or visibility_mode() == AccessSettings.Visibility.ALL:
        return None
    teams = Team.objects.filter(Q(members=user) | Q(supervisors=user)).values("pk")
    members = get_user_model()._default_manager.filter(teams__in=teams).values_list("pk", flat=True)
    return frozenset({int(user.pk), *members})


def user_may_watch(user: Any, operator_id: int | None) -> bool:
    """May ``user`` see what happens to the operator ``operator_id`` (their cards, their board rows)?"""
    visible = users_visible_to(user)
    return visible is None or (operator_id is not None and operator_id in visible)


def user_can_change_personal_manager(user: Any) -> bool:
    """The personal manager routes the client's calls: ``contacts.change_personal_manager`` only."""
    return _active(user) and bool(user.has_perm(CHANGE_PERSONAL_MANAGER))

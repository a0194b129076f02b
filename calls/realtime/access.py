"""Live connections follow the right to them: what closes a user's sockets or makes them check again.

Connected in ``CallsConfig.ready``. Each sends, after the change commits, one message through the channel
layer (``push``, never raising) to the groups every socket joins (``groups.user_group``,
``groups.session_group``); the consumers (consumers.py) close or re-check on it:

- a logout closes the sockets of that login session (``session.end``), whichever tab opened them;
- a user made inactive or deleted: all their sockets close;
- a user's permissions, groups, staff or superuser flags, or teams change, a group's permissions change, or
  the visibility mode changes: their sockets check again (``access.check``) and close if no longer
  allowed; the live board recomputes whose calls it shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model, user_logged_out
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from contacts.models import AccessSettings, Team

from .groups import SUPERVISORS_GROUP, session_group, user_group
from .push import Message, push

END: dict[str, Any] = {"type": "session.end"}
CHECK: dict[str, Any] = {"type": "access.check"}
# m2m_changed actions acted on: before a clear the rows still say whom it concerns (pk_set is None then).
CHANGES = ("post_add", "post_remove", "pre_clear")


def _send_after_commit(messages: list[Message]) -> None:
    if messages:
        transaction.on_commit(lambda: push(messages), robust=True)


def _to_users(user_ids: Iterable[Any], message: dict[str, Any]) -> None:
    _send_after_commit([(user_group(int(pk)), message) for pk in sorted(set(user_ids))])


def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)
    if key:
        # Not after commit: logout() flushes the session right after this signal, outside any transaction
        # of ours, and the sockets must close whatever happens next.
        push([(session_group(key), END)])


def _user_saved(sender: Any, instance: Any, created: bool, update_fields: Any, **kwargs: Any) -> None:
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return  # a new user has no sockets; a login only stamps last_login
    _to_users([instance.pk], CHECK if instance.is_active else END)


def _user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    _to_users([instance.pk], END)


def _user_relations_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **kwargs: Any
) -> None:
    """User.groups / User.user_permissions, from either side."""
    if action not in CHANGES:
        return
    user_model = get_user_model()
    if isinstance(instance, user_model):
        _to_users([instance.pk], CHECK)
    elif isinstance(instance, Group):
        # group.user_set.add(...): pk_set are users; group.permissions are handled below.
        users = pk_set if pk_set is not None else instance.user_set.values_list("pk", flat=True)
        _to_users(users, CHECK)
    else:
        # permission.user_set.add(...)
        _to_users(pk_set or (), CHECK)


def _group_permissions_changed(sender: Any, instance: Any, action: str, reverse: bool, **kwargs: Any) -> None:
    if action not in CHANGES:
        return
    if isinstance(instance, Group):
        _to_users(instance.user_set.values_list("pk", flat=True), CHECK)
    else:
        # permission.group_set.add(groups): the users of those groups.
        groups = kwargs.get("pk_set") or []
        users = get_user_model()._default_manager.filter(groups__in=groups).values_list("pk", flat=True)
        _to_users(users, CHECK)


def _team_changed(sender: Any, instance: Any, action: str, pk_set: set[int] | None, **kwargs: Any) -> None:
    """A team's members or supervisors changed: whose calls its supervisors' boards show changes too."""
    if action not in CHANGES:
        return
    teams = [instance] if isinstance(instance, Team) else list(Team.objects.filter(pk__in=pk_set or []))
    users: set[int] = set()
    if not isinstance(instance, Team):
        users.add(instance.pk)
    for team in teams:
        users.update(team.members.values_list("pk", flat=True))
        users.update(team.supervisors.values_list("pk", flat=True))
    if isinstance(instance, Team) and pk_set:
        users.update(pk_set)  # removed members: they are no longer in the query above
    _to_users(users, CHECK)


def _visibility_changed(sender: Any, **kwargs: Any) -> None:
    _send_after_commit([(SUPERVISORS_GROUP, CHECK)])


def connect_signals() -> None:
    user_model = get_user_model()
    uid = "calls.realtime.access"
    user_logged_out.connect(_logged_out, dispatch_uid=f"{uid}.logout")
    post_save.connect(_user_saved, sender=user_model, dispatch_uid=f"{uid}.user_saved")
    post_delete.connect(_user_deleted, sender=user_model, dispatch_uid=f"{uid}.user_deleted")
    m2m_changed.connect(
        _user_relations_changed, sender=user_model.groups.through, dispatch_uid=f"{uid}.user_groups"
    )
    m2m_changed.connect(
        _user_relations_changed,
        sender=user_model.user_permissions.through,
        dispatch_uid=f"{uid}.user_permissions",
    )
    m2m_changed.connect(
        _group_permissions_changed, sender=Group.permissions.through, dispatch_uid=f"{uid}.group_permissions"
    )
    m2m_changed.connect(_team_changed, sender=Team.members.through, dispatch_uid=f"{uid}.team_members")
    m2m_changed.connect(
        _team_changed, sender=Team.supervisors.through, dispatch_uid=f"{uid}.team_supervisors"
    )
    post_save.connect(_visibility_changed, sender=AccessSettings, dispatch_uid=f"{uid}.visibility")

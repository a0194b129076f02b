"""Personas for permission and fuzz tests: who uses the CRM, as the demo data sets them up.

- anonymous: no login;
- operator: in the operators group of the demo (integrations/demo.py: OPERATORS_GROUP, with its
  permissions), linked to a workplace;
- manager: an operator who is some contacts' personal manager (the code gives them no extra rights);
- supervisor: in the demo's supervisors group (REPORTS_GROUP: calls.view_reports,
  calls.listen_recording and contacts.change_personal_manager) and staff (the
  integration health badge and panel, the live board);
- admin: a superuser;
- outsider: an operator like the first, but of another team (issue 18's team visibility).

Teams (contacts.Team): "Команда А" has the operator, the manager and the other operator as members and
the supervisor as its supervisor; "Команда Б" has the outsider. The visibility mode (AccessSettings) is
the default ("all") unless a test sets it with ``set_visibility``.

Passwords are unusable (no hashing: tests log in with ``force_login``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import transaction
from django.test import Client
from django.utils import timezone

from calls.models import Call, CallbackTask, CallLeg, Direction, Recording
from contacts.models import AccessSettings, Contact, Team
from contacts.services import contact_create
from integrations.demo import (
    OPERATOR_PERMISSIONS,
    OPERATORS_GROUP,
    REPORTS_GROUP,
    SUPERVISOR_PERMISSIONS,
    permissions_named,
)
from integrations.models import ExternalNumber, Integration, Workplace

ROLES = ("anonymous", "operator", "manager", "supervisor", "admin", "outsider")
MODES = (AccessSettings.Visibility.ALL, AccessSettings.Visibility.TEAM)
CLIENT_NUMBER = "+79219462761"
MANAGED_NUMBER = "+78124241500"
OUTSIDER_NUMBER = "+74957001122"
LINE = "74996497803"
MP3 = b"ID3" + b"\x00" * 1021


@dataclass
class World:
    integration: Integration
    users: dict[str, Any]  # role -> user (None for anonymous)
    other_operator: Any
    contact: Contact  # nobody's client
    managed_contact: Contact  # the manager's client
    own_call: Call  # answered by the operator
    other_call: Call  # answered by the other operator
    recording: Recording  # of the other operator's call, stored
    callback: CallbackTask  # open, unassigned
    outsider_contact: Contact  # the outsider's client (they are its personal manager)
    outsider_call: Call  # answered by the outsider
    teams: dict[str, Team] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def _group(name: str, permissions: list[str]) -> Group:
    group, _ = Group.objects.get_or_create(name=name)
    group.permissions.add(*permissions_named(permissions))
    return group


def _user(username: str, **fields: Any) -> Any:
    user = get_user_model().objects.create_user(
        username, password=None, first_name=username.title(), **fields
    )
    return user


def _call(integration: Integration, key: str, workplace: Workplace, contact: Contact) -> Call:
    now = timezone.now()
    call = Call.objects.create(
        integration=integration,
        call_key=key,
        direction=Direction.INCOMING,
        status=Call.Status.ANSWERED,
        client_number=contact.numbers.first().e164 if contact.numbers.exists() else "",  # type: ignore[union-attr]
        contact=contact,
        workplace=workplace,
        operator=workplace.user,
        started_at=now - timedelta(minutes=5),
        answered_at=now - timedelta(minutes=4),
        ended_at=now - timedelta(minutes=3),
        talk_seconds=60,
        wait_seconds=60,
    )
    CallLeg.objects.create(
        call=call,
        integration=integration,
        leg_id=f"{key}~1o",
        workplace=workplace,
        direction=Direction.INCOMING,
    )
    return call


def build_world(integration: Integration) -> World:
    operators = _group(OPERATORS_GROUP, OPERATOR_PERMISSIONS)
    supervisors = _group(REPORTS_GROUP, SUPERVISOR_PERMISSIONS)
    operator = _user("operator")
    manager = _user("manager")
    other = _user("other")
    for user in (operator, manager, other):
        user.groups.add(operators)
    outsider = _user("outsider")
    outsider.groups.add(operators)
    supervisor = _user("supervisor", is_staff=True)
    supervisor.groups.add(supervisors)
    admin = get_user_model().objects.create_superuser("admin", "admin@example.com", password=None)
    team_a = Team.objects.create(name="Команда А")
    team_a.members.add(operator, manager, other)
    team_a.supervisors.add(supervisor)
    team_b = Team.objects.create(name="Команда Б")
    team_b.members.add(outsider)
    workplaces = {
        user.username: Workplace.objects.create(
            integration=integration, sip_id=f"88314000000000{n}", name=user.username, user=user
        )
        for n, user in enumerate((operator, manager, other, outsider), start=1)
    }
    ExternalNumber.objects.create(integration=integration, number=LINE)
    contact = contact_create(name="Ольга Смирнова", numbers=[CLIENT_NUMBER])
    managed = contact_create(name="Дмитрий Козлов", numbers=[MANAGED_NUMBER], personal_manager=manager)
    outsider_contact = contact_create(
        name="Сергей Орлов", numbers=[OUTSIDER_NUMBER], personal_manager=outsider
    )
    own_call = _call(integration, "own-call", workplaces["operator"], contact)
    other_call = _call(integration, "other-call", workplaces["other"], managed)
    outsider_call = _call(integration, "outsider-call", workplaces["outsider"], outsider_contact)
    now = timezone.now()
    recording = Recording.objects.create(
        integration=integration,
        call=other_call,
        leg_call_id="other-call~1o",
        source_url="https://records.mtt.ru/a.mp3",
        storage_key=f"world/{now:%Y%m%d%H%M%S%f}.mp3",
        mtt_expires_at=now + timedelta(days=90),
        status=Recording.Status.STORED,
        size=len(MP3),
        stored_at=now,
    )
    storages["recordings"].save(recording.storage_key, ContentFile(MP3))
    callback = CallbackTask.objects.create(
        client_number=CLIENT_NUMBER, contact=contact, missed_count=1, first_missed_at=now, last_missed_at=now
    )
    return World(
        integration=integration,
        users={
            "anonymous": None,
            "operator": operator,
            "manager": manager,
            "supervisor": supervisor,
            "admin": admin,
            "outsider": outsider,
        },
        other_operator=other,
        contact=contact,
        managed_contact=managed,
        own_call=own_call,
        other_call=other_call,
        recording=recording,
        callback=callback,
        outsider_contact=outsider_contact,
        outsider_call=outsider_call,
        teams={"A": team_a, "B": team_b},
    )


def set_visibility(mode: str) -> None:
    """The admin's "who sees what" setting (contacts.AccessSettings)."""
    AccessSettings.objects.update_or_create(pk=AccessSettings.SINGLETON_ID, defaults={"visibility": mode})


class _Rollback(Exception):
    pass


@contextmanager
def rolled_back() -> Iterator[None]:
    """Undo the block's writes afterwards (a savepoint inside the test's transaction): each example of a
    fuzz test, each role of the permission matrix starts from the same database."""
    try:
        with transaction.atomic():
            yield
            raise _Rollback
    except _Rollback:
        pass


def client_for(world: World, role: str) -> Client:
    client = Client()
    if world.users[role] is not None:
        client.force_login(world.users[role])
    return client


def bare_call(world: World, key: str, **fields: Any) -> Call:
    """A call of the world's integration with only these fields set (missed, a minute ago, by default)."""
    now = timezone.now()
    return Call.objects.create(
        integration=world.integration,
        call_key=key,
        direction=Direction.INCOMING,
        status=Call.Status.MISSED,
        started_at=now - timedelta(minutes=1),
        **fields,
    )

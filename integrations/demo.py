"""Demo data for `make run`: users, and an integration connected to the local sandbox through a real
OAuth round trip (the sandbox's portal login is filled in here, as the admin would in a browser)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q, QuerySet

from contacts.models import Team
from contacts.selectors import contact_find_by_number
from contacts.services import contact_create

from .models import Integration, Workplace
from .services import integration_oauth_complete, integration_oauth_start, integration_sync_directory

DEMO_INTEGRATION = "Sandbox"
OPERATORS_GROUP = "Операторы"
# What the demo operators may do beyond the pages every logged-in user sees ("app_label.codename").
OPERATOR_PERMISSIONS = ["calls.listen_recording"]
# Supervisors: the call reports (operators do not see them).
REPORTS_GROUP = "Руководители"
# Supervisors review calls: the reports, and listening to recordings (quality control); they decide who
# is a client's personal manager (it routes the client's calls: operators may not, issue 18); they may
# correct an operator's wrap-up.
SUPERVISOR_PERMISSIONS = [
    "calls.view_reports",
    "calls.listen_recording",
    "contacts.change_personal_manager",
    "calls.change_others_wrap_up",
]
SUPERVISORS = ["admin", "supervisor"]
# (username, password, first name, last name, role); operators are linked to the sandbox's workplaces in
# this order (sorted by SIP ID). A supervisor is staff (the live board, the health badge), not superuser.
DEMO_USERS = [
    ("admin", "admin", "Админ", "Админов", "admin"),
    ("supervisor", "demo", "Ольга", "Руководитель", "supervisor"),
    ("ivanova", "demo", "Мария", "Иванова", "operator"),
    ("petrov", "demo", "Алексей", "Петров", "operator"),
    ("sidorova", "demo", "Анна", "Сидорова", "operator"),
]
# (team, members, supervisors): with "who sees what" set to teams (Admin → Access settings), Ivanova and
# Petrov see each other's calls but not Sidorova's; the supervisor sees the sales team's.
DEMO_TEAMS = [
    ("Продажи", ["ivanova", "petrov"], ["supervisor"]),
    ("Поддержка", ["sidorova"], []),
]


def permissions_named(names: list[str]) -> QuerySet[Permission]:
    """Permissions by "app_label.codename"."""
    condition = Q(pk__in=[])
    for name in names:
        app_label, codename = name.split(".", 1)
        condition |= Q(content_type__app_label=app_label, codename=codename)
    return Permission.objects.filter(condition)


class DemoError(RuntimeError):
    pass


def _ensure_users() -> list[str]:
    user_model = get_user_model()
    created = []
    for username, password, first, last, role in DEMO_USERS:
        user, was_created = user_model.objects.get_or_create(
            username=username, defaults={"first_name": first, "last_name": last}
        )
        if was_created:
            user.set_password(password)
            user.is_staff = role in ("admin", "supervisor")
            user.is_superuser = role == "admin"
            user.save()
            created.append(username)
    operators, _ = Group.objects.get_or_create(name=OPERATORS_GROUP)
    operators.permissions.add(*permissions_named(OPERATOR_PERMISSIONS))
    for user in user_model.objects.filter(
        username__in=[u for u, *_r, role in DEMO_USERS if role == "operator"]
    ):
        user.groups.add(operators)
    supervisors, _ = Group.objects.get_or_create(name=REPORTS_GROUP)
    supervisors.permissions.add(*permissions_named(SUPERVISOR_PERMISSIONS))
    for user in user_model.objects.filter(username__in=SUPERVISORS):
        user.groups.add(supervisors)
    for name, members, heads in DEMO_TEAMS:
        team, _ = Team.objects.get_or_create(name=name)
        team.members.add(*user_model.objects.filter(username__in=members))
        team.supervisors.add(*user_model.objects.filter(username__in=heads))
    return created


def _wait_for(url: str, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise DemoError(f"The sandbox does not answer at {url}")
        time.sleep(0.3)


def _portal_login(authorize_url: str) -> dict[str, str]:
    """Log in on the sandbox's portal page and return the redirect's query (code, state)."""
    parts = urlsplit(authorize_url)
    form = {k: v[0] for k, v in parse_qs(parts.query).items()}
    form.update({"login": settings.SANDBOX_LOGIN, "password": settings.SANDBOX_PASSWORD})
    answer = requests.post(
        f"{parts.scheme}://{parts.netloc}{parts.path}", data=form, allow_redirects=False, timeout=10
    )
    location = answer.headers.get("Location", "")
    if answer.status_code != 302 or not location:
        raise DemoError(f"The sandbox login did not redirect (HTTP {answer.status_code})")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


# (name, company, number, personal manager's username)
DEMO_CONTACTS = [
    ("Ольга Смирнова", "ООО «Ромашка»", "+79219462761", "ivanova"),
    ("Дмитрий Козлов", "АО «Вектор»", "+78124241500", "petrov"),
    ("Елена Новикова", "", "+79031234567", ""),
]


def _demo_contacts() -> Iterator[str]:
    user_model = get_user_model()
    for name, company, number, manager in DEMO_CONTACTS:
        if contact_find_by_number(number=number) is None:
            contact_create(
                name=name,
                company=company,
                numbers=[number],
                personal_manager=user_model.objects.filter(username=manager).first() if manager else None,
            )
            yield f"Demo contact {name} ({number})"


def demo_setup(*, sandbox_url: str | None = None, wait: float = 30.0) -> Iterator[str]:
    sandbox_url = (sandbox_url or settings.SANDBOX_URL).rstrip("/")
    created = _ensure_users()
    if created:
        yield f"Demo users created: {', '.join(created)}"
    with transaction.atomic():
        integration, _ = Integration.objects.get_or_create(
            name=DEMO_INTEGRATION,
            defaults={
                "client_id": settings.SANDBOX_CLIENT_ID,
                "client_secret": settings.SANDBOX_CLIENT_SECRET,
                "oauth_url": sandbox_url,
                "api_url": sandbox_url,
            },
        )
    _wait_for(sandbox_url + "/", wait)
    # The sandbox keeps its state in memory: connect anew on every start.
    url, state = integration_oauth_start(integration=integration)
    answer = _portal_login(url)
    if answer.get("state") != state or "code" not in answer:
        raise DemoError(f"The sandbox answered the login with {sorted(answer)}")
    integration = integration_oauth_complete(integration=integration, code=answer["code"])
    yield f"Integration {integration.name!r} connected to the sandbox at {sandbox_url}"
    result = integration_sync_directory(integration_id=integration.pk)
    yield f"Directory synced: {result}"
    yield from _demo_contacts()
    user_model = get_user_model()
    workplaces = list(Workplace.objects.filter(integration=integration, is_active=True).order_by("sip_id"))
    operators = [u for u, *_rest, role in DEMO_USERS if role == "operator"]
    for username, workplace in zip(operators, workplaces, strict=False):
        user = user_model.objects.get(username=username)
        if workplace.user_id is None and not Workplace.objects.filter(user=user).exists():
            workplace.user = user
            workplace.save(update_fields=["user"])
            yield f"Workplace {workplace} linked to {username}"

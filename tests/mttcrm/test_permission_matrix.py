"""The permission matrix: every page, endpoint and WebSocket against every persona (tests/personas.py).

Every URL pattern of the root resolver must have an entry in MATRIX (the Django admin's own patterns are
covered by a few representative pages in ADMIN_PAGES), and every WebSocket route one in WS_MATRIX: a new
page or socket fails ``test_every_url_pattern_is_in_the_matrix`` until someone decides who may use it.

Each entry says, per role, what GET and POST answer: a status, or a redirect (LOGIN: to the login page;
ALLOWED: elsewhere, i.e. the action went through). A POST that is allowed need not do anything real, but
it must not be refused; the others must be refused. What the code intends, encoded here:

- every page but the reports, the live board and the admin is for any logged-in user; personal managers
  get no extra rights (a contact's manager may do what any operator may, no more);
- both visibility modes (contacts.AccessSettings, README "Security model") run the whole matrix: in "all"
  every logged-in user sees every call, contact and recording; in "team" the outsider (an operator of
  another team) gets 404 for team A's call, contact, recording and callback, and team A for the
  outsider's (ByMode says where the answer depends on the mode); the admin sees everything in both;
- the call-note endpoint of the screen pop only takes notes on calls that rang the user (or calls a
  supervisor may see);
- recordings need ``calls.listen_recording`` (the demo's operators and supervisors groups have it) and a
  call the user may see; the reports need ``calls.view_reports``; the live board needs staff
  or ``calls.view_call``; merging contacts staff or ``contacts.merge_contact``;
- JSON endpoints answer 401 to anonymous users (the page's script handles it) instead of a redirect;
- the notify URL takes notifications from anyone with the token (MTT), its OAuth callback only the
  admin who pressed Connect (nobody here: 403);
- /metrics is off (404) without METRICS_TOKEN; with it, the token or a staff login.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import responses
from django.conf import settings as django_settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from calls.models import CallResult, FollowUpTask
from calls.realtime.urls import websocket_urlpatterns
from contacts.models import AccessSettings
from tests.calls.test_realtime import TIMEOUT, own_loop, socket
from tests.conftest import load_fixture
from tests.personas import MODES, ROLES, World, build_world, rolled_back, set_visibility

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Redirect:
    """A 302 to a URL starting with ``to``; ``to=None``: anywhere but the login pages."""

    to: str | None = None

    def matches(self, response: Any) -> bool:
        if response.status_code != 302:
            return False
        location = response["Location"]
        if self.to is None:
            return not any(location.startswith(p) for p in ("/accounts/login/", "/admin/login/"))
        return bool(location.startswith(self.to))

    def __repr__(self) -> str:
        return f"302→{self.to or 'allowed'}"


@dataclass(frozen=True)
class ByMode:
    """An answer that depends on the visibility mode ("all" / "team")."""

    all: int | Redirect
    team: int | Redirect

    def __repr__(self) -> str:
        return f"{self.all!r} (all) / {self.team!r} (team)"


LOGIN = Redirect("/accounts/login/")
ADMIN_LOGIN = Redirect("/admin/login/")
ALLOWED = Redirect()
Expect = int | Redirect | ByMode
Roles = dict[str, Expect]
# Team mode hides other teams' rows as if they did not exist.
HIDDEN_IN_TEAM_MODE = ByMode(200, 404)


def roles(
    anonymous: Expect,
    operator: Expect,
    manager: Expect,
    supervisor: Expect,
    admin: Expect,
    outsider: Expect | None = None,
) -> Roles:
    """``outsider`` (an operator of another team) gets what the operator gets unless said otherwise."""
    return {
        "anonymous": anonymous,
        "operator": operator,
        "manager": manager,
        "supervisor": supervisor,
        "admin": admin,
        "outsider": operator if outsider is None else outsider,
    }


def everyone(expect: Expect) -> Roles:
    return roles(expect, expect, expect, expect, expect)


def logged_in(expect: Expect, anonymous: Expect = LOGIN) -> Roles:
    return roles(anonymous, expect, expect, expect, expect)


def team_a(expect: Expect) -> Roles:
    """A row of team A (the operator's, manager's and other operator's team; the supervisor's)."""
    hidden = ByMode(expect, 404)  # type: ignore[arg-type]
    return roles(LOGIN, expect, expect, expect, expect, outsider=hidden)


def team_b(expect: Expect) -> Roles:
    """A row of team B (the outsider's)."""
    hidden = ByMode(expect, 404)  # type: ignore[arg-type]
    return roles(LOGIN, hidden, hidden, hidden, expect, outsider=expect)


def supervisors_only(expect: Expect) -> Roles:
    return roles(LOGIN, 403, 403, expect, expect)


# The REST API (/api/): 401 without a token or a session (never a redirect), JSON bodies.
def api(expect: Expect) -> Roles:
    return roles(401, expect, expect, expect, expect)


def api_team_a(expect: Expect) -> Roles:
    """A row of team A through the API: other teams get 404 in team mode, as on the pages."""
    hidden = ByMode(expect, 404)  # type: ignore[arg-type]
    return roles(401, expect, expect, expect, expect, outsider=hidden)


@dataclass(frozen=True)
class Case:
    """One concrete URL of a pattern, and what each role gets from GET and POST."""

    url: Callable[[World], str]
    get: Roles
    post: Roles
    data: Callable[[World], dict[str, Any]] = lambda w: {}
    # A state-changing POST: refused without a CSRF token (test_state_changing_posts_need_csrf).
    csrf: bool = False
    note: str = ""


@dataclass(frozen=True)
class Entry:
    cases: list[Case]
    only_when_debug: bool = False
    todo: str = ""


def one(*args: Any, **kwargs: Any) -> Entry:
    return Entry([Case(*args, **kwargs)])


def _task(w: World) -> FollowUpTask:
    """The operator's follow-up task (made on first use, inside each role's rolled-back block)."""
    return FollowUpTask.objects.get_or_create(
        assignee=w.users["operator"], note="matrix", defaults={"due_at": timezone.now()}
    )[0]


def _notification(w: World) -> dict[str, Any]:
    return load_fixture("notifications/01_incoming_trying.json")


MATRIX: dict[str, Entry] = {
    "": one(lambda w: "/", get=logged_in(200), post=logged_in(200)),
    "healthz": one(lambda w: "/healthz", get=everyone(200), post=everyone(405)),
    "ping": one(lambda w: "/ping", get=everyone(200), post=everyone(405)),
    "favicon.ico": one(lambda w: "/favicon.ico", get=everyone(301), post=everyone(405)),
    # Off without METRICS_TOKEN; with one: test_metrics_with_a_token.
    "metrics": one(lambda w: "/metrics", get=everyone(404), post=everyone(405)),
    # --- django.contrib.auth.urls
    "accounts/login/": one(lambda w: "/accounts/login/", get=everyone(200), post=everyone(200)),
    "accounts/logout/": one(
        lambda w: "/accounts/logout/", get=everyone(405), post=everyone(LOGIN), csrf=True
    ),
    "accounts/password_change/": one(
        lambda w: "/accounts/password_change/", get=logged_in(200), post=logged_in(200), csrf=True
    ),
    "accounts/password_change/done/": one(
        lambda w: "/accounts/password_change/done/", get=logged_in(200), post=logged_in(405)
    ),
    "accounts/password_reset/": one(
        lambda w: "/accounts/password_reset/",
        get=everyone(200),
        post=everyone(200),
        data=lambda w: {"email": "not an address"},  # a form error: no mail is sent
        csrf=True,
    ),
    "accounts/password_reset/done/": one(
        lambda w: "/accounts/password_reset/done/", get=everyone(200), post=everyone(405)
    ),
    "accounts/reset/<uidb64>/<token>/": one(
        lambda w: "/accounts/reset/MQ/not-a-token/", get=everyone(200), post=everyone(200)
    ),
    "accounts/reset/done/": one(lambda w: "/accounts/reset/done/", get=everyone(200), post=everyone(405)),
    "i18n/setlang/": one(
        lambda w: "/i18n/setlang/",
        get=everyone(ALLOWED),
        post=everyone(ALLOWED),
        data=lambda w: {"language": "en", "next": "/contacts/"},
    ),
    # --- the notify URL: the token is the credential (MTT sends no login, no CSRF token).
    "mtt/<str:token>/": Entry(
        [
            Case(
                lambda w: w.integration.notify_path,
                get=everyone(403),  # the OAuth callback without a Connect pending
                post=everyone(200),
                data=_notification,
            ),
            Case(lambda w: "/mtt/not-the-token/", get=everyone(404), post=everyone(404), data=_notification),
        ]
    ),
    # The same URL pasted without its trailing slash: answered, not redirected (a POST would be lost).
    "mtt/<str:token>": one(
        lambda w: w.integration.notify_path.rstrip("/"),
        get=everyone(403),
        post=everyone(200),
        data=_notification,
    ),
    # --- the screen pop
    "calls/active.json": one(
        lambda w: "/calls/active.json", get=logged_in(200, 401), post=logged_in(405, 401)
    ),
    "calls/<int:pk>/note/": Entry(
        [
            Case(
                lambda w: f"/calls/{w.own_call.pk}/note/",
                get=logged_in(405, 401),
                post=roles(401, 200, 404, 200, 200, outsider=404),
                data=lambda w: {"text": "перезвонить"},
                csrf=True,
                note="the operator's own call",
            ),
            Case(
                lambda w: f"/calls/{w.other_call.pk}/note/",
                get=logged_in(405, 401),
                # The manager's client, answered by another operator: the manager gets nothing extra.
                post=roles(401, 404, 404, 200, 200),
                data=lambda w: {"text": "перезвонить"},
                note="another operator's call",
            ),
        ]
    ),
    # --- the desk (issue 16): the wrap-up, the badges and reminders, the tasks list
    "calls/<int:pk>/wrap-up/": Entry(
        [
            Case(
                lambda w: f"/calls/{w.other_call.pk}/wrap-up/",
                get=everyone(405),
                post=team_a(ALLOWED),
                data=lambda w: {"comment": "перезвонить в пятницу"},
                csrf=True,
            ),
            Case(
                lambda w: f"/calls/{w.outsider_call.pk}/wrap-up/",
                get=everyone(405),
                post=team_b(ALLOWED),
                data=lambda w: {"comment": "перезвонить в пятницу"},
            ),
        ]
    ),
    "calls/desk.json": one(lambda w: "/calls/desk.json", get=logged_in(200, 401), post=everyone(405)),
    "tasks/": one(lambda w: "/tasks/", get=logged_in(200), post=logged_in(200)),
    "tasks/<int:pk>/done/": one(
        lambda w: f"/tasks/{_task(w).pk}/done/",
        get=everyone(405),
        post=team_a(ALLOWED),
        csrf=True,
        note="a task of the operator's",
    ),
    "calls/live/": one(lambda w: "/calls/live/", get=supervisors_only(200), post=supervisors_only(200)),
    "calls/live.json": one(
        lambda w: "/calls/live.json", get=roles(401, 403, 403, 200, 200), post=logged_in(405, 401)
    ),
    "calls/dial/": one(
        lambda w: "/calls/dial/",
        get=everyone(405),
        # Supervisor and admin have no workplace: allowed, but the PBX cannot ring them (409).
        post=roles(401, 200, 200, 409, 409),
        data=lambda w: {"number": "+79031234567"},
        csrf=True,
    ),
    "calls/callbacks/": one(lambda w: "/calls/callbacks/", get=logged_in(200), post=logged_in(200)),
    "calls/callbacks/<int:pk>/take/": one(
        lambda w: f"/calls/callbacks/{w.callback.pk}/take/",
        get=logged_in(405),
        post=roles(LOGIN, ALLOWED, ALLOWED, ALLOWED, ALLOWED, outsider=ByMode(ALLOWED, 404)),
        csrf=True,
    ),
    "calls/": one(lambda w: "/calls/", get=logged_in(200), post=logged_in(200)),
    "calls/export.csv": one(lambda w: "/calls/export.csv", get=logged_in(200), post=logged_in(200)),
    "calls/export.xlsx": one(lambda w: "/calls/export.xlsx", get=logged_in(200), post=logged_in(200)),
    "calls/<int:pk>/": Entry(
        [
            Case(lambda w: f"/calls/{w.other_call.pk}/", get=team_a(200), post=team_a(200)),
            Case(lambda w: f"/calls/{w.outsider_call.pk}/", get=team_b(200), post=team_b(200)),
            Case(lambda w: "/calls/999999/", get=logged_in(404), post=logged_in(404)),
        ]
    ),
    # --- contacts
    "contacts/": one(lambda w: "/contacts/", get=logged_in(200), post=logged_in(200)),
    "contacts/new/": one(
        lambda w: "/contacts/new/",
        get=logged_in(200),
        post=logged_in(ALLOWED),
        data=lambda w: {"name": "Новый клиент", "numbers": "+7 903 765-43-21"},
        csrf=True,
    ),
    "contacts/merge/": one(
        lambda w: "/contacts/merge/",
        get=logged_in(405),
        post=roles(LOGIN, 403, 403, ALLOWED, ALLOWED),
        data=lambda w: {"source": w.contact.pk, "target": w.managed_contact.pk},
        csrf=True,
    ),
    "contacts/<int:pk>/": Entry(
        [
            Case(lambda w: f"/contacts/{w.managed_contact.pk}/", get=team_a(200), post=team_a(200)),
            Case(lambda w: f"/contacts/{w.outsider_contact.pk}/", get=team_b(200), post=team_b(200)),
        ]
    ),
    "contacts/<int:pk>/name/": Entry(
        [
            Case(
                lambda w: f"/contacts/{w.managed_contact.pk}/name/",
                get=everyone(405),
                post=roles(401, 200, 200, 200, 200, outsider=ByMode(200, 404)),
                data=lambda w: {"name": "Дмитрий Козлов", "company": "ООО Ромашка"},
                csrf=True,
            ),
        ]
    ),
    "contacts/<int:pk>/edit/": Entry(
        [
            Case(
                lambda w: f"/contacts/{w.managed_contact.pk}/edit/",
                get=team_a(200),
                post=team_a(ALLOWED),
                data=lambda w: {"name": "Дмитрий Козлов", "numbers": "+78124241500"},
                csrf=True,
            ),
            Case(
                lambda w: f"/contacts/{w.outsider_contact.pk}/edit/",
                get=team_b(200),
                post=team_b(ALLOWED),
                data=lambda w: {"name": "Сергей Орлов", "numbers": "+74957001122"},
            ),
        ]
    ),
    # --- recordings: the permission, and (team mode) a call the user may see.
    "recordings/<int:pk>/": one(
        lambda w: f"/recordings/{w.recording.pk}/", get=team_a(200), post=everyone(405)
    ),
    # --- reports
    "reports/": one(lambda w: "/reports/", get=supervisors_only(200), post=everyone(405)),
    "reports/<slug:table>.csv": Entry(
        [
            Case(lambda w: "/reports/series.csv", get=supervisors_only(200), post=everyone(405)),
            Case(lambda w: "/reports/nothing.csv", get=supervisors_only(404), post=everyone(405)),
        ]
    ),
    "reports/<slug:table>.xlsx": Entry(
        [
            Case(lambda w: "/reports/lines.xlsx", get=supervisors_only(200), post=everyone(405)),
            Case(lambda w: "/reports/nothing.xlsx", get=supervisors_only(404), post=everyone(405)),
        ]
    ),
    # --- the REST API (README "Using the API"): tokens or a login session, the pages' visibility.
    "api/schema/": one(lambda w: "/api/schema/", get=api(200), post=api(405)),
    "api/docs/": one(lambda w: "/api/docs/", get=api(200), post=api(405)),
    "api/v1/calls/": one(lambda w: "/api/v1/calls/", get=api(200), post=api(405)),
    "api/v1/calls/<int:pk>/": one(
        lambda w: f"/api/v1/calls/{w.own_call.pk}/", get=api_team_a(200), post=api(405)
    ),
    "api/v1/calls/dial/": one(
        lambda w: "/api/v1/calls/dial/",
        get=api(405),
        # Supervisor and admin have no workplace: allowed, but the PBX cannot ring them (409).
        post=roles(401, 200, 200, 409, 409),
        data=lambda w: {"number": "+79031234567"},
        csrf=True,
    ),
    "api/v1/contacts/": one(
        lambda w: "/api/v1/contacts/",
        get=api(200),
        post=api(201),
        data=lambda w: {"name": "Новый клиент", "numbers": ["+79035550101"]},
        csrf=True,
    ),
    "api/v1/contacts/<int:pk>/": one(
        lambda w: f"/api/v1/contacts/{w.contact.pk}/", get=api_team_a(200), post=api(405)
    ),
    "api/v1/recordings/": one(lambda w: "/api/v1/recordings/", get=api(200), post=api(405)),
    "api/v1/recordings/<int:pk>/": one(
        lambda w: f"/api/v1/recordings/{w.recording.pk}/", get=api_team_a(200), post=api(405)
    ),
    "api/v1/recordings/<int:pk>/audio/": one(
        lambda w: f"/api/v1/recordings/{w.recording.pk}/audio/", get=api_team_a(200), post=api(405)
    ),
    "api/v1/callbacks/": one(lambda w: "/api/v1/callbacks/", get=api(200), post=api(405)),
    "api/v1/callbacks/<int:pk>/": one(
        lambda w: f"/api/v1/callbacks/{w.callback.pk}/", get=api_team_a(200), post=api(405)
    ),
    "api/v1/callbacks/<int:pk>/take/": one(
        lambda w: f"/api/v1/callbacks/{w.callback.pk}/take/", get=api(405), post=api_team_a(200), csrf=True
    ),
    # Only with DEBUG (mttcrm/urls.py): django.contrib.staticfiles' own view.
    "^static/(?P<path>.*)$": Entry([], only_when_debug=True),
}

# Representative pages of the Django admin (its ~150 patterns are Django's, with Django's checks).
ADMIN_ONLY = roles(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403, 200)
STAFF = roles(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 200, 200)
ADMIN_PAGES: dict[str, tuple[Callable[[World], str], Roles]] = {
    "index": (lambda w: "/admin/", STAFF),
    "login": (lambda w: "/admin/login/", roles(200, 200, 200, ALLOWED, ALLOWED)),
    "integrations": (lambda w: "/admin/integrations/integration/", ADMIN_ONLY),
    "integration": (lambda w: f"/admin/integrations/integration/{w.integration.pk}/change/", ADMIN_ONLY),
    "notifications": (lambda w: "/admin/integrations/notificationevent/", ADMIN_ONLY),
    "workplaces": (lambda w: "/admin/integrations/workplace/", ADMIN_ONLY),
    "calls": (lambda w: "/admin/calls/call/", ADMIN_ONLY),
    "contacts": (lambda w: "/admin/contacts/contact/", ADMIN_ONLY),
    "users": (lambda w: "/admin/auth/user/", ADMIN_ONLY),
    # Issue 18: teams, "who sees what" (one row: the list goes to its page) and the audit trail.
    "teams": (lambda w: "/admin/contacts/team/", ADMIN_ONLY),
    "access settings": (
        lambda w: "/admin/contacts/accesssettings/",
        roles(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403, Redirect("/admin/contacts/accesssettings/add/")),
    ),
    "audit log": (lambda w: "/admin/auditlog/logentry/", ADMIN_ONLY),
    "a contact's audit log": (lambda w: f"/admin/contacts/contact/{w.contact.pk}/auditlog/", ADMIN_ONLY),
    # The integration health panel and its history: any staff user (README "Integration health").
    "health": (lambda w: "/admin/monitoring/integrationhealth/", STAFF),
    "health warnings": (lambda w: "/admin/monitoring/healthwarning/", STAFF),
    # Issue 20: API tokens, webhook subscriptions and their delivery log.
    "api tokens": (lambda w: "/admin/api/apitoken/", ADMIN_ONLY),
    "add an api token": (lambda w: "/admin/api/apitoken/add/", ADMIN_ONLY),
    "webhook subscriptions": (lambda w: "/admin/webhooks/webhooksubscription/", ADMIN_ONLY),
    "webhook deliveries": (lambda w: "/admin/webhooks/webhookdelivery/", ADMIN_ONLY),
}

# WebSockets: "open" = accepted and kept; a number = accepted and closed with that code at once.
WS_MATRIX: dict[str, Roles] = {
    "ws/workspace/": roles(4401, 0, 0, 0, 0),
    "ws/live/": roles(4401, 4403, 4403, 0, 0),
}


def _follow_up(w: World) -> Any:
    """A follow-up task of team A (the other operator's), made once per world."""
    if "follow_up" not in w.extra:
        w.extra["follow_up"] = FollowUpTask.objects.create(
            call=w.other_call,
            assignee=w.other_operator,
            created_by=w.other_operator,
            due_at=timezone.now() + timedelta(days=1),
        )
    return w.extra["follow_up"]


def _result(w: World) -> Any:
    return CallResult.objects.get_or_create(name="Консультация")[0]


MATRIX.update(
    {
        "api/v1/calls/<int:pk>/wrap-up/": one(
            lambda w: f"/api/v1/calls/{w.own_call.pk}/wrap-up/",
            get=api(405),
            post=api_team_a(200),
            data=lambda w: {"comment": "Перезвонить в пятницу"},
            csrf=True,
        ),
        "api/v1/follow-ups/": one(lambda w: "/api/v1/follow-ups/", get=api(200), post=api(405)),
        "api/v1/follow-ups/<int:pk>/": one(
            lambda w: f"/api/v1/follow-ups/{_follow_up(w).pk}/", get=api_team_a(200), post=api(405)
        ),
        "api/v1/follow-ups/<int:pk>/complete/": one(
            lambda w: f"/api/v1/follow-ups/{_follow_up(w).pk}/complete/",
            get=api(405),
            post=api_team_a(200),
            csrf=True,
        ),
        "api/v1/call-results/": one(lambda w: "/api/v1/call-results/", get=api(200), post=api(405)),
        "api/v1/call-results/<int:pk>/": one(
            lambda w: f"/api/v1/call-results/{_result(w).pk}/", get=api(200), post=api(405)
        ),
    }
)


# --- walking the resolver ------------------------------------------------------------------------------


def url_patterns(patterns: list[Any] | None = None, prefix: str = "") -> Iterator[str]:
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            yield from url_patterns(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def test_every_url_pattern_is_in_the_matrix() -> None:
    found = {p for p in url_patterns() if not p.startswith("admin/")}
    debug_only = {route for route, entry in MATRIX.items() if entry.only_when_debug}
    missing = sorted(found - set(MATRIX))
    assert not missing, f"URL patterns with no entry in the permission matrix: {missing}"
    stale = sorted(set(MATRIX) - found - debug_only)
    assert not stale, f"Matrix entries for URL patterns that no longer exist: {stale}"
    ws_found = {str(p.pattern) for p in websocket_urlpatterns}
    assert ws_found == set(WS_MATRIX), f"WebSocket routes vs WS_MATRIX: {sorted(ws_found ^ set(WS_MATRIX))}"


def test_the_admin_is_included_once() -> None:
    admin = [p for p in url_patterns() if p.startswith("admin/")]
    assert "admin/" in admin and "admin/login/" in admin


# --- HTTP ---------------------------------------------------------------------------------------------


@pytest.fixture
def world(integration: Any) -> World:
    return build_world(integration)


@pytest.fixture(autouse=True)
def _mtt(settings: Any) -> Iterator[None]:
    """Click-to-call reaches a mocked MTT (makeCall answers with the guide's example)."""
    settings.MTT_RATE_LIMIT_KEY_PREFIX = "test-matrix:"
    settings.MTT_RATE_LIMIT = 100_000
    settings.METRICS_TOKEN = ""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post("http://mtt.test/makeCall", json=load_fixture("api/makeCall_response.json"))
        yield


def client_for(world: World, role: str, **kwargs: Any) -> Client:
    client = Client(**kwargs)
    user = world.users[role]
    if user is not None:
        client.force_login(user)
    return client


def _in_mode(expected: Expect, mode: str) -> int | Redirect:
    if isinstance(expected, ByMode):
        return expected.team if mode == "team" else expected.all
    return expected


def _check(response: Any, expected: Expect, mode: str = "all") -> bool:
    expected = _in_mode(expected, mode)
    if isinstance(expected, Redirect):
        return expected.matches(response)
    return bool(response.status_code == expected)


def _outcome(response: Any) -> str:
    if response.status_code in (301, 302):
        return f"{response.status_code}→{response['Location']}"
    return str(response.status_code)


def _consume(response: Any) -> None:
    if response.streaming:
        b"".join(response.streaming_content)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("route", sorted(r for r, e in MATRIX.items() if e.cases))
def test_the_matrix(world: World, route: str, mode: str) -> None:
    set_visibility(mode)
    wrong: list[str] = []
    for case in MATRIX[route].cases:
        url = case.url(world)
        for role in ROLES:
            for method, expected in (("GET", case.get[role]), ("POST", case.post[role])):
                with rolled_back():
                    client = client_for(world, role)
                    if method == "GET":
                        response = client.get(url)
                    elif route.startswith(("mtt/", "api/")):
                        response = client.post(
                            url, json.dumps(case.data(world)), content_type="application/json"
                        )
                    else:
                        response = client.post(url, case.data(world))
                    _consume(response)
                    if not _check(response, expected, mode):
                        wrong.append(
                            f"{method} {url} as {role} ({mode}): expected {_in_mode(expected, mode)!r}, "
                            f"got {_outcome(response)}"
                        )
    assert not wrong, "\n".join(wrong)


OTHER_METHODS = ("HEAD", "OPTIONS", "PUT", "PATCH", "DELETE")
# What another method may answer where GET is refused: the same refusal, or "not this method" (405 says
# nothing about the row: it comes before any lookup).
REFUSALS = {401: {401, 405}, 403: {403, 405}, 404: {404, 405}}


@pytest.mark.parametrize("route", sorted(r for r, e in MATRIX.items() if e.cases))
def test_other_methods_reveal_nothing_more_than_get(world: World, route: str) -> None:
    """HEAD, OPTIONS, PUT, PATCH and DELETE on every URL, as every role, in the "team" mode (its refusals
    include the other mode's): never a 5xx; where
    GET is refused (anonymous, another team's row, a page for supervisors) so is every other method —
    no OPTIONS or HEAD that tells a hidden row exists, no PUT/PATCH/DELETE that gets around the check;
    HEAD answers what GET answers (or 405: the JSON endpoints of the pages' scripts take GET only)."""
    mode = AccessSettings.Visibility.TEAM
    set_visibility(mode)
    wrong: list[str] = []
    for case in MATRIX[route].cases:
        url = case.url(world)
        for role in ROLES:
            expected = _in_mode(case.get[role], mode)
            for method in OTHER_METHODS:
                with rolled_back():
                    client = client_for(world, role)
                    body = json.dumps(case.data(world))
                    response = client.generic(method, url, body, content_type="application/json")
                    _consume(response)
                status = response.status_code
                if status >= 500:
                    ok = False
                elif method == "HEAD":
                    ok = _check(response, expected, mode) or status == 405
                elif isinstance(expected, Redirect) and expected.to in ("/accounts/login/", "/admin/login/"):
                    ok = LOGIN.matches(response) or ADMIN_LOGIN.matches(response) or status in (401, 405)
                elif isinstance(expected, int) and expected in REFUSALS:
                    ok = status in REFUSALS[expected]
                else:
                    ok = True
                if not ok:
                    wrong.append(
                        f"{method} {url} as {role} ({mode}): GET gives {expected!r}, got {_outcome(response)}"
                    )
    assert not wrong, "\n".join(wrong)


# What the lists contain in each mode (which rows, not whether the page opens): tests/calls/test_visibility.py.


@pytest.mark.parametrize("page", sorted(ADMIN_PAGES))
def test_the_admin_pages(world: World, page: str) -> None:
    url_of, expected = ADMIN_PAGES[page]
    url = url_of(world)
    wrong = []
    for role in ROLES:
        response = client_for(world, role).get(url)
        if not _check(response, expected[role]):
            wrong.append(f"GET {url} as {role}: expected {expected[role]!r}, got {_outcome(response)}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("route", "index"),
    [(r, i) for r, e in sorted(MATRIX.items()) for i, c in enumerate(e.cases) if c.csrf],
)
def test_state_changing_posts_need_csrf(world: World, route: str, index: int) -> None:
    """The same POST as the matrix's, as the admin (allowed everywhere), without a CSRF token."""
    case = MATRIX[route].cases[index]
    client = client_for(world, "admin", enforce_csrf_checks=True)
    response = client.post(case.url(world), case.data(world))
    assert response.status_code == 403, _outcome(response)


def test_the_notify_url_needs_no_csrf_token(world: World) -> None:
    client = Client(enforce_csrf_checks=True)
    body = json.dumps(_notification(world))
    assert (
        client.post(world.integration.notify_path, body, content_type="application/json").status_code == 200
    )


def test_metrics_with_a_token(world: World, settings: Any) -> None:
    settings.METRICS_TOKEN = "metrics-token-1234567890"
    expected = roles(401, 403, 403, 200, 200)
    for role in ROLES:
        assert _check(client_for(world, role).get("/metrics"), expected[role]), role
    bearer = {"HTTP_AUTHORIZATION": "Bearer metrics-token-1234567890"}
    assert Client().get("/metrics", **bearer).status_code == 200
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert Client().post("/metrics", **bearer).status_code == 405


def test_an_inactive_user_is_logged_out(world: World) -> None:
    operator = world.users["operator"]
    client = client_for(world, "operator")
    operator.is_active = False
    operator.save()
    assert LOGIN.matches(client.get("/contacts/"))
    assert client.get("/calls/active.json").status_code == 401


# --- WebSockets ----------------------------------------------------------------------------------------
# Through the whole ASGI stack (origin check, session auth, consumers) with channels' test communicator,
# as tests/calls/test_realtime.py drives it; one socket per test, so that each stays well inside
# own_loop's time limit even on a loaded machine.


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("path", "role"), [(path, role) for path in sorted(WS_MATRIX) for role in ROLES])
def test_the_websocket_matrix(integration: Any, path: str, role: str) -> None:
    user = build_world(integration).users[role]
    expected = WS_MATRIX[path][role]

    @own_loop
    async def run() -> None:
        comm = await socket(user, path="/" + path)
        ok, _ = await comm.connect(timeout=TIMEOUT)
        assert ok, "handshake refused"
        try:
            if expected:
                assert await comm.receive_output(timeout=TIMEOUT) == {
                    "type": "websocket.close",
                    "code": expected,
                }
            else:
                assert await comm.receive_nothing(timeout=0.2), "expected to stay open"
        finally:
            await comm.disconnect()

    run()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", sorted(WS_MATRIX))
def test_no_websocket_for_a_foreign_origin(integration: Any, path: str) -> None:
    # Whoever the user, a page of another site cannot open the socket (mttcrm/wsorigin.py).
    admin = build_world(integration).users["admin"]

    @own_loop
    async def run() -> None:
        comm = await socket(admin, path="/" + path, origin=b"https://evil.example")
        ok, _ = await comm.connect(timeout=TIMEOUT)
        assert not ok

    run()


def test_debug_is_off_in_tests() -> None:
    # The static route (only_when_debug) is then absent, and the matrix above is the production one.
    assert not django_settings.DEBUG

"""The permission matrix over HTTP: every URL pattern has an entry in MATRIX (tests/mttcrm/permission_table.py,
which says who may do what and why), and every page and endpoint answers each persona (tests/personas.py)
as it says, in both visibility modes; the admin's pages, CSRF, the notify URL and /metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from django.conf import settings as django_settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from calls.realtime.urls import websocket_urlpatterns
from contacts.models import AccessSettings
from tests.conftest import load_fixture
from tests.mttcrm.permission_table import (
    ADMIN_LOGIN,
    ADMIN_PAGES,
    LOGIN,
    MATRIX,
    WS_MATRIX,
    ByMode,
    Expect,
    Redirect,
    notification_body,
    roles,
)
from tests.personas import MODES, ROLES, World, build_world, rolled_back, set_visibility

pytestmark = pytest.mark.django_db


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
    body = json.dumps(notification_body(world))
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


def test_debug_is_off_in_tests() -> None:
    # The static route (only_when_debug) is then absent, and the matrix above is the production one.
    assert not django_settings.DEBUG

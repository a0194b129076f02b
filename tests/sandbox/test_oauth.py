"""The sandbox's OAuth server behaves like guide §8: login page, code redirect, token shapes, rotation."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from sandbox.testing import RunningSandbox, running_sandbox

from .helpers import api_get, load_fixture

REDIRECT = "https://crm.example.test/mtt/hook/abc123/"
SCOPE = "https://mtt.ru/auth.tokens.readwrite"


def _authorize_params(sandbox: RunningSandbox, **overrides: str) -> dict[str, str]:
    params = {
        "client_id": sandbox.config.client_id,
        "redirect_uri": REDIRECT,
        "scope": SCOPE,
        "response_type": "code",
        "state": "st-42",
    }
    params.update(overrides)
    return params


def _token(sandbox: RunningSandbox, data: dict[str, str], **kwargs: Any) -> requests.Response:
    return requests.post(f"{sandbox.url}/oauth/token", data=data, timeout=10, **kwargs)


def _refresh(sandbox: RunningSandbox, refresh_token: str) -> requests.Response:
    return _token(
        sandbox,
        {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": sandbox.config.client_id,
            "client_secret": sandbox.config.client_secret,
        },
    )


def test_authorize_renders_login_page_with_oauth_params_kept(sandbox: RunningSandbox) -> None:
    response = requests.get(f"{sandbox.url}/oauth/authorize", params=_authorize_params(sandbox), timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    html = response.text
    assert "<form" in html and "name='password'" in html
    assert f"value='{REDIRECT}'" in html  # carried in a hidden field to the POST
    assert "value='st-42'" in html
    assert "<code>demo</code>" in html  # the demo login hint


def test_authorize_unknown_client_is_an_error_page(sandbox: RunningSandbox) -> None:
    params = _authorize_params(sandbox, client_id="nobody")
    response = requests.get(f"{sandbox.url}/oauth/authorize", params=params, timeout=10)
    assert response.status_code == 400
    form = {**params, "login": "demo", "password": "demo"}
    response = requests.post(f"{sandbox.url}/oauth/authorize", data=form, allow_redirects=False, timeout=10)
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_bad_login_shows_the_form_again(sandbox: RunningSandbox) -> None:
    form = {**_authorize_params(sandbox), "login": "demo", "password": "wrong"}
    response = requests.post(f"{sandbox.url}/oauth/authorize", data=form, allow_redirects=False, timeout=10)
    assert response.status_code == 200
    assert "Location" not in response.headers
    assert "Wrong login or password" in response.text
    assert "value='st-42'" in response.text
    assert sandbox.state.codes == {}


def test_good_login_redirects_with_code_and_state_and_remembers_notify_url(sandbox: RunningSandbox) -> None:
    form = {**_authorize_params(sandbox), "login": "demo", "password": "demo"}
    response = requests.post(f"{sandbox.url}/oauth/authorize", data=form, allow_redirects=False, timeout=10)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["st-42"]
    assert query["code"][0] in sandbox.state.codes
    # The portal's one Redirect URI also receives notifications.
    assert sandbox.state.notify_url() == REDIRECT


def test_code_exchange_returns_the_guides_shape_with_another_scope(sandbox: RunningSandbox) -> None:
    code = sandbox.authorize(REDIRECT)
    token = sandbox.exchange(code, REDIRECT)
    expected = load_fixture("api/oauth_token_authorization_code.json")
    assert list(token) == list(expected)
    assert token["scope"] == expected["scope"] != SCOPE
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 7200
    assert token["access_token"] != token["refresh_token"]
    assert api_get(sandbox, "/workplacesInfo", {"Authorization": f"Bearer {token['access_token']}"}).ok


def test_code_cannot_be_used_twice(sandbox: RunningSandbox) -> None:
    code = sandbox.authorize(REDIRECT)
    sandbox.exchange(code, REDIRECT)
    response = _token(
        sandbox,
        {
            "grant_type": "authorization_code",
            "client_id": sandbox.config.client_id,
            "client_secret": sandbox.config.client_secret,
            "code": code,
            "redirect_uri": REDIRECT,
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_code_exchange_with_another_redirect_uri_is_refused(sandbox: RunningSandbox) -> None:
    code = sandbox.authorize(REDIRECT)
    data = {
        "grant_type": "authorization_code",
        "client_id": sandbox.config.client_id,
        "client_secret": sandbox.config.client_secret,
        "code": code,
        "redirect_uri": "https://evil.example.test/",
    }
    response = _token(sandbox, data)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_http_basic_client_auth_is_accepted_and_bad_secret_refused(sandbox: RunningSandbox) -> None:
    code = sandbox.authorize(REDIRECT)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    bad = base64.b64encode(b"demo-client:wrong").decode()
    response = _token(sandbox, data, headers={"Authorization": f"Basic {bad}"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    response = _token(sandbox, data, auth=("demo-client", "demo-secret"))
    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"


def test_refresh_rotates_both_tokens_and_kills_the_old_refresh_token(sandbox: RunningSandbox) -> None:
    first = sandbox.exchange(sandbox.authorize(REDIRECT), REDIRECT)
    response = _refresh(sandbox, first["refresh_token"])
    assert response.status_code == 200
    second = response.json()
    expected = load_fixture("api/oauth_token_refresh.json")
    assert list(second) == list(expected)
    assert second["scope"] == " https://mtt.ru/auth.tokens.readwrite "  # the guide's padded quirk
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert api_get(sandbox, "/workplacesInfo", {"Authorization": f"Bearer {second['access_token']}"}).ok

    again = _refresh(sandbox, first["refresh_token"])
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert _refresh(sandbox, second["refresh_token"]).status_code == 200


def test_refresh_with_a_wrong_secret_is_refused(sandbox: RunningSandbox) -> None:
    refresh_token = sandbox.tokens()["refresh_token"]
    data = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": sandbox.config.client_id,
        "client_secret": "nope",
    }
    response = _token(sandbox, data)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    # The failed attempt did not burn the refresh token.
    assert _refresh(sandbox, refresh_token).status_code == 200


def test_expired_refresh_token_is_invalid_grant() -> None:
    with running_sandbox(refresh_token_lifetime=1) as sandbox:
        refresh_token = sandbox.tokens()["refresh_token"]
        time.sleep(1.1)
        response = _refresh(sandbox, refresh_token)
        assert response.status_code == 400
        assert response.json() == {"error": "invalid_grant"}


def test_refuse_refresh_switch(sandbox: RunningSandbox) -> None:
    refresh_token = sandbox.tokens()["refresh_token"]
    sandbox.control("POST", "config", {"refuse_refresh": True})
    response = _refresh(sandbox, refresh_token)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    sandbox.control("POST", "config", {"refuse_refresh": False})
    assert _refresh(sandbox, refresh_token).status_code == 200


def test_access_token_expires_after_its_lifetime() -> None:
    with running_sandbox(access_token_lifetime=1) as sandbox:
        token = sandbox.exchange(sandbox.authorize(REDIRECT), REDIRECT)
        assert token["expires_in"] == 1
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        assert api_get(sandbox, "/workplacesInfo", headers).status_code == 200
        time.sleep(1.1)
        response = api_get(sandbox, "/workplacesInfo", headers)
        assert response.status_code == 401
        assert response.json() == {"error": {"code": 401, "message": "Unauthorized"}}


def test_token_requests_are_logged_by_grant_type_without_secrets(sandbox: RunningSandbox) -> None:
    token = sandbox.exchange(sandbox.authorize(REDIRECT), REDIRECT)
    _refresh(sandbox, token["refresh_token"])
    _refresh(sandbox, token["refresh_token"])  # refused: rotated away
    log = sandbox.control("GET", "requests")
    token_log = [r for r in log if r["path"] == "/oauth/token"]
    assert [(r["json"], r["status"]) for r in token_log] == [
        ({"grant_type": "authorization_code"}, 200),
        ({"grant_type": "refresh_token"}, 200),
        ({"grant_type": "refresh_token"}, 400),
    ]
    dumped = json.dumps(log)
    assert sandbox.config.client_secret not in dumped
    assert token["refresh_token"] not in dumped


def test_unsupported_response_type_redirects_back_with_an_error(sandbox: RunningSandbox) -> None:
    params = _authorize_params(sandbox, response_type="token")
    response = requests.get(
        f"{sandbox.url}/oauth/authorize", params=params, allow_redirects=False, timeout=10
    )
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["error"] == ["unsupported_response_type"]
    assert query["state"] == ["st-42"]


def test_pkce_is_honoured_when_the_client_uses_it(sandbox: RunningSandbox) -> None:
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    form = {
        **_authorize_params(sandbox, code_challenge=challenge, code_challenge_method="S256"),
        "login": "demo",
        "password": "demo",
    }
    response = requests.post(f"{sandbox.url}/oauth/authorize", data=form, allow_redirects=False, timeout=10)
    code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    auth = (sandbox.config.client_id, sandbox.config.client_secret)
    assert _token(sandbox, data, auth=auth).status_code == 400  # no verifier
    assert _token(sandbox, {**data, "code_verifier": verifier}, auth=auth).status_code == 200
